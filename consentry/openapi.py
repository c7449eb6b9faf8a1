"""Shared OpenAPI pieces: the problem+json error shape and its documented responses.

Every view documents its errors with ``problem_responses(...)`` so clients see
one error format (RFC 9457, ``consentry.problems``) with the stable codes they
can branch on.
"""

from __future__ import annotations

from typing import Any

from django.urls import Resolver404, resolve
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers

from consentry.errors import ProblemErrors
from consentry.problems import PROBLEM_CONTENT_TYPE


@extend_schema_field(
    {
        "oneOf": [
            {"type": "object", "additionalProperties": {}, "description": "Messages by field name."},
            {
                "type": "array",
                "description": "Messages by row of an uploaded file (CSV import); the header is row 1.",
                "items": {
                    "type": "object",
                    "properties": {
                        "row": {"type": "integer"},
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                    },
                    "required": ["row", "field", "message"],
                },
            },
        ]
    }
)
class ProblemErrorsField(serializers.JSONField):
    """Per-field messages for invalid input; for an uploaded file, one entry per invalid row."""


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, as every error is answered."""

    type = serializers.CharField(help_text="URI naming the kind of problem.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="For humans; do not parse.")
    code = serializers.CharField(help_text="Stable machine-readable code.")
    # The serializer metaclass moves declared fields off the class, so this does not
    # shadow Serializer.errors at run time; the stubs cannot see that.
    errors = ProblemErrorsField(  # type: ignore[assignment]
        required=False, help_text="Per-field (or, for a file, per-row) messages."
    )


def _example(status: int, code: str, title: str, detail: str, errors: ProblemErrors | None = None) -> OpenApiExample:
    value = {
        "type": f"https://consentry.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        value["errors"] = errors
    return OpenApiExample(code, value=value, response_only=True, status_codes=[str(status)])


_STANDARD = {
    400: ("Malformed request", _example(400, "parse_error", "Malformed request.", "JSON parse error.")),
    401: (
        "Not signed in, or the token is unknown, expired or revoked",
        _example(401, "not_authenticated", "Authentication credentials were not provided.", "Sign in."),
    ),
    403: (
        "Signed in, but not allowed (wrong role, token kind or region scope)",
        _example(403, "permission_denied", "You do not have permission to perform this action.", "Not allowed."),
    ),
    404: ("Unknown, or outside what the caller may see", _example(404, "not_found", "Not found", "Not found.")),
    409: (
        "Conflicts with the current state",
        _example(409, "conflict", "Conflict with the current state", "Only a draft can be approved."),
    ),
    413: (
        "Request body too large",
        _example(413, "payload_too_large", "Request body too large.", "The body exceeds 2621440 bytes."),
    ),
    415: (
        "The body is not in a media type this endpoint reads",
        _example(415, "unsupported_media_type", "Unsupported Media Type", 'Unsupported media type "text/plain".'),
    ),
    422: (
        "Invalid input, or an Idempotency-Key reused with another body",
        _example(
            422,
            "invalid",
            "Invalid input",
            "The request has invalid fields; see errors.",
            {"notice_version": ["A valid integer is required."]},
        ),
    ),
    429: (
        "Rate limited; retry after the Retry-After header's seconds",
        _example(429, "throttled", "Request was throttled.", "Request was throttled. Expected available in 7 seconds."),
    ),
}


def problem_responses(*statuses: int, examples: dict[int, list[OpenApiExample]] | None = None) -> dict:
    """OpenAPI responses for the given error statuses, as problem+json, with examples."""
    extra = examples or {}
    responses = {}
    for status in statuses:
        description, standard = _STANDARD[status]
        responses[(status, PROBLEM_CONTENT_TYPE)] = OpenApiResponse(
            ProblemSerializer, description=description, examples=extra.get(status) or [standard]
        )
    return responses


def problem_example(status: int, code: str, detail: str, errors: ProblemErrors | None = None) -> OpenApiExample:
    """An example problem for one specific code, e.g. ``stale_notice``."""
    return _example(status, code, code.replace("_", " ").capitalize(), detail, errors)


# Statuses every authenticated write can answer, whatever it does.
WRITE_ERRORS = (400, 401, 403, 413, 422, 429)
READ_ERRORS = (401, 403, 429)

# consentry.pagination.ApiPagination's query parameters, for lists whose paginator the schema cannot see.
PAGINATION = [
    OpenApiParameter("limit", int, description="Page size, at least 1 (default 100); above 1000 it is cut to 1000."),
    OpenApiParameter("offset", int, description="How many to skip, at least 0 (default 0)."),
]

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes the write safe to retry: a retry with the same key and body returns the first response "
        "(with Idempotent-Replayed: true); the same key with another body is a 422. Keys are kept at least "
        "24 hours, per caller. 1 to 255 printable ASCII characters."
    ),
)


# Plain Django views (no DRF, so no generated schema) that clients still call: documented here.
_JWK = {
    "type": "object",
    "description": "An Ed25519 public key (RFC 8037), as JWK (RFC 7517).",
    "properties": {
        "kty": {"type": "string", "enum": ["OKP"]},
        "crv": {"type": "string", "enum": ["Ed25519"]},
        "x": {"type": "string", "description": "The public key, base64url without padding."},
        "kid": {"type": "string", "description": "RFC 7638 thumbprint; the `kid` of what it signed."},
        "alg": {"type": "string", "enum": ["EdDSA"]},
        "use": {"type": "string", "enum": ["sig"]},
    },
    "required": ["kty", "crv", "x", "kid", "alg", "use"],
}
_JWK_SET = {
    "type": "object",
    "properties": {"keys": {"type": "array", "items": {"$ref": "#/components/schemas/JsonWebKey"}}},
    "required": ["keys"],
}
_HEALTH = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]}},
    "required": ["status"],
}
_PLAIN_PATHS = {
    "/.well-known/jwks.json": {
        "get": {
            "operationId": "jwks",
            "summary": "Public keys of grants, receipts and audit checkpoints",
            "description": (
                "Every Ed25519 public key a verifier may need, current and retired, as a JWK Set (RFC 7517). "
                "Public and cacheable for five minutes; verify a token by the `kid` in its header."
            ),
            "tags": ["keys"],
            "security": [],
            "responses": {
                "200": {
                    "description": "The key set.",
                    "content": {"application/jwk-set+json": {"schema": {"$ref": "#/components/schemas/JsonWebKeySet"}}},
                }
            },
        }
    },
    "/health": {
        "get": {
            "operationId": "health",
            "summary": "Liveness and a database round trip",
            "description": "For load balancers and orchestrators: public, never rate limited.",
            "tags": ["operations"],
            "security": [],
            "responses": {
                "200": {
                    "description": "Serving, and the database answers.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                },
                "503": {
                    "description": "The database does not answer: take this instance out of rotation.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                },
            },
        }
    },
}


def document_plain_views(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular postprocessing hook: add the public JWKS and the health check (``consentry.views``).

    Only to a schema of the whole URL map that serves them, not to one generated for a few apps' patterns.
    """
    if generator.patterns is not None:
        return result
    served = {}
    for route, item in _PLAIN_PATHS.items():
        try:
            resolve(route, urlconf=generator.urlconf)
        except Resolver404:
            continue
        served[route] = item
    if not served:
        return result
    result.setdefault("paths", {}).update(served)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(JsonWebKey=_JWK, JsonWebKeySet=_JWK_SET, Health=_HEALTH)
    return result
