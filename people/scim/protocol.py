"""SCIM's wire conventions: its media type and its error responses (RFC 7644 §3.1, §3.12).

SCIM clients (Okta, Entra ID, Workday) parse ``urn:ietf:params:scim:api:messages:2.0:Error``
bodies, not problem+json, so the SCIM endpoints have their own exception
handler. Like the API's, it never lets bad input become a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from pydantic import ValidationError
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from scim2_models import Context, Error, SCIMException

from consentry.errors import Conflict, DomainError, NotFound
from consentry.idempotency import KeyReused

SCIM_MEDIA_TYPE = "application/scim+json"
logger = logging.getLogger(__name__)


class ScimJSONRenderer(JSONRenderer):
    media_type = SCIM_MEDIA_TYPE


class ScimJSONParser(JSONParser):
    media_type = SCIM_MEDIA_TYPE


# SCIM's own media type first; plain JSON is accepted too (RFC 7644 §3.1 "SHOULD").
RENDERERS = [ScimJSONRenderer, JSONRenderer]
PARSERS = [ScimJSONParser, JSONParser]


def scim_response(body: dict[str, Any] | None, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status=status, headers=headers, content_type=SCIM_MEDIA_TYPE if body is not None else None)


def error_response(*, status: int, detail: str, scim_type: str | None = None, headers=None) -> Response:
    error = Error(status=status, scim_type=scim_type, detail=detail)
    return scim_response(error.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE), status=status, headers=headers)


def _domain_error(exc: DomainError) -> Response:
    detail = exc.detail
    if exc.errors:
        detail = f"{detail} " + " ".join(f"{field}: {message}" for field, message in exc.errors.items())
    if isinstance(exc, NotFound):
        return error_response(status=404, detail=detail)
    if isinstance(exc, KeyReused):
        # API.md: the same Idempotency-Key with another request is a 422, in SCIM's error format here.
        return error_response(status=422, detail=detail)
    if isinstance(exc, Conflict):
        # RFC 7644 §3.3: a taken userName or employeeNumber is 409 "uniqueness".
        scim_type = "uniqueness" if exc.code in ("employee_exists", "user_name_taken", "conflict") else None
        return error_response(status=409, detail=detail, scim_type=scim_type)
    if exc.code == "immutable":
        return error_response(status=400, detail=detail, scim_type="mutability")
    return error_response(status=400, detail=detail, scim_type="invalidValue")


def scim_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every failure as a SCIM Error body with the matching status and scimType."""
    if isinstance(exc, SCIMException):
        error = exc.to_error()
        return error_response(status=int(error.status or 400), detail=error.detail or "", scim_type=error.scim_type)
    if isinstance(exc, ValidationError):
        errors = Error.from_validation_errors(exc)
        first = errors[0]
        return error_response(status=int(first.status or 400), detail=first.detail or "", scim_type=first.scim_type)
    if isinstance(exc, DomainError):
        return _domain_error(exc)
    if isinstance(exc, Http404):
        return error_response(status=404, detail="No such resource.")
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        headers: dict[str, str] = {}
        # Only some exceptions carry these (handle_exception adds auth_header; Throttled has wait), as DRF reads them.
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
        scim_type = "invalidSyntax" if isinstance(exc, exceptions.ParseError) else None
        return error_response(status=exc.status_code, detail=str(exc.detail), scim_type=scim_type, headers=headers)
    return None
