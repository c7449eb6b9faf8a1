"""OpenAPI documentation of the policy administration API: one place for its shapes and examples.

The views are alike (collection, item, approve), so their schema is built
here from a resource name, its serializers and an example, instead of
repeating the same ``extend_schema`` blocks on every class.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view

from consentry.openapi import (
    IDEMPOTENCY_KEY,
    PAGINATION,
    READ_ERRORS,
    WRITE_ERRORS,
    problem_example,
    problem_responses,
)
from governance.serializers import ApprovalSerializer

TAG = "Policy administration"

# One realistic request body per resource (what legal sends to create one).
REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "regions": {"code": "US-TX", "name": "Texas"},
    "data-categories": {
        "slug": "keystroke_timing",
        "name": "Keystroke timing",
        "description": "When keys go down and up; identifies a person (biometric).",
        "sensitive": True,
        "biometric": True,
    },
    "purposes": {
        "slug": "ai_agent_training",
        "name": "AI agent training",
        "description": "Train agents that operate computers.",
        "categories": ["keystrokes", "mouse_movement", "screenshots"],
        "consent_validity_days": 365,
        "prohibited": False,
    },
    "notices": {
        "title": "Activity capture for AI training",
        "summary": "We would like to record how you use your computer to train AI agents.",
        "body": "…",
        "retention_statement": "Raw data is kept 90 days.",
        "access_statement": "Only the research team's training pipelines.",
        "no_evaluation_statement": "Never used to evaluate you.",
        "material": True,
        "items": [
            {"purpose": "ai_agent_training", "category": "screenshots", "description": "Pictures of your screen."}
        ],
    },
    "jurisdiction-rules": {
        "region": "US-IL",
        "status": "conditional",
        "preconditions": ["company_written_policy", "biometric_release"],
        "blocked_categories": [],
        "max_retention_days": {"keystroke_timing": 30},
        "effective_from": "2027-01-01T00:00:00Z",
        "effective_to": None,
        "notes": "BIPA: written release before any biometric capture.",
        "supersedes": 12,
    },
    "legal-instruments": {
        "kind": "company_written_policy",
        "title": "US electronic monitoring policy 2027",
        "region": "US",
        "entity": "Acme US Inc.",
        "site": "",
        "employee": None,
        "valid_from": "2027-01-01",
        "valid_to": None,
        "document_ref": "dms://legal/policies/monitoring-2027.pdf",
    },
    "retention-policies": {
        "category": "screenshots",
        "region": "US-CA",
        "purpose": None,
        "raw_retention_days": 30,
        "delete_on_withdrawal_days": 7,
        "delete_on_termination_days": 30,
    },
    "exclusions": {
        "kind": "app",
        "pattern": "com.1password.*",
        "label": "1Password",
        "reason": "password_manager",
        "categories": [],
    },
}

_IMMUTABLE = problem_example(
    409, "immutable", "Rule 12 is approved and immutable; draft a successor with supersedes=12."
)
_EXISTS = problem_example(409, "exists", "Purpose 'ai_agent_training' already exists; change it with PUT or PATCH.")
_OUT_OF_SCOPE = problem_example(403, "out_of_scope", "You may not draft rules for region US.")
_FOUR_EYES = problem_example(403, "four_eyes", "A rule must be approved by someone other than its author.")
_NOT_A_DRAFT = problem_example(409, "not_a_draft", "Only a draft can be approved.")
_UNKNOWN = problem_example(422, "invalid", "Unknown data categories: dreams.", {"categories": "['dreams']"})


def _filters(names: tuple[str, ...]) -> list[OpenApiParameter]:
    descriptions = {
        "region": "Only this region code.",
        "state": "Only this approval state: draft, approved or superseded.",
    }
    return [OpenApiParameter(name, OpenApiTypes.STR, description=descriptions[name]) for name in names]


def collection_schema(name: str, output, input_, *, scoped: bool = False, filters: tuple[str, ...] = ()):
    """Schema for GET (list) and POST (create) on ``/api/v1/<name>/``."""
    noun = name.replace("-", " ")
    scope_note = " Lists only the regions the caller may see." if scoped else ""
    operation = name.replace("-", "_")
    return extend_schema_view(
        get=extend_schema(
            tags=[TAG],
            operation_id=f"{operation}_list",
            summary=f"List {noun}",
            description=f"Paginated (limit, offset).{scope_note}",
            parameters=[*_filters(filters), *PAGINATION],
            responses={200: output(many=True), **problem_responses(*READ_ERRORS, 422)},
        ),
        post=extend_schema(
            tags=[TAG],
            operation_id=f"{operation}_create",
            summary=f"Create one of the {noun}" + (" as a draft" if name in ("notices", "jurisdiction-rules") else ""),
            parameters=[IDEMPOTENCY_KEY],
            request=input_,
            examples=[OpenApiExample(f"new {noun}", value=REQUEST_EXAMPLES[name], request_only=True)],
            responses={
                201: output,
                **problem_responses(
                    *WRITE_ERRORS,
                    409,
                    examples={403: [_OUT_OF_SCOPE], 409: [_EXISTS], 422: [_UNKNOWN]},
                ),
            },
        ),
    )


def item_schema(name: str, output, input_, *, lookup: str, deletable: bool = True, drafts_only: bool = False):
    """Schema for GET, PUT, PATCH (and DELETE) on ``/api/v1/<name>/<lookup>``."""
    noun = name.replace("-", " ")
    operation = name.replace("-", "_")
    note = " Drafts only, by their author: approved ones answer 409 immutable." if drafts_only else ""
    conflicts = {409: [_IMMUTABLE]} if drafts_only else {}
    write = problem_responses(*WRITE_ERRORS, 404, 409, examples={403: [_OUT_OF_SCOPE], **conflicts})
    views = {
        "get": extend_schema(
            tags=[TAG],
            operation_id=f"{operation}_read",
            summary=f"Read one of the {noun}",
            responses={200: output, **problem_responses(*READ_ERRORS, 404)},
        ),
        "put": extend_schema(
            tags=[TAG],
            operation_id=f"{operation}_replace",
            summary=f"Replace one of the {noun}",
            description=f"Identity fields ({lookup} and the like) cannot change.{note}",
            parameters=[IDEMPOTENCY_KEY],
            request=input_,
            examples=[OpenApiExample("replacement", value=REQUEST_EXAMPLES[name], request_only=True)],
            responses={200: output, **write},
        ),
        "patch": extend_schema(
            tags=[TAG],
            operation_id=f"{operation}_update",
            summary=f"Change some fields of one of the {noun}",
            description=f"Fields left out keep their value.{note}",
            parameters=[IDEMPOTENCY_KEY],
            request=input_,
            examples=[OpenApiExample("change", value=_first_field(REQUEST_EXAMPLES[name]), request_only=True)],
            responses={200: output, **write},
        ),
    }
    if deletable:
        views["delete"] = extend_schema(
            tags=[TAG],
            operation_id=f"{operation}_delete",
            summary=f"Remove one of the {noun}" + (" (drafts only)" if drafts_only else ""),
            parameters=[IDEMPOTENCY_KEY],
            request=None,
            responses={204: None, **problem_responses(400, 401, 403, 404, 409, 413, 422, 429, examples=conflicts)},
        )
    return extend_schema_view(**views)


def _first_field(example: dict[str, Any]) -> dict[str, Any]:
    key = next(k for k in example if k not in ("slug", "code", "region", "kind", "pattern", "category"))
    return {key: example[key]}


def approve_schema(name: str, output, *, lookup: str):
    """Schema for POST ``/api/v1/<name>/<lookup>/approve`` (four eyes)."""
    noun = name.replace("-", " ").rstrip("s")
    return extend_schema_view(
        post=extend_schema(
            tags=[TAG],
            operation_id=f"{name.replace('-', '_')}_approve",
            summary=f"Approve a draft {noun} (a different person with the approve permission)",
            description=(
                "Needs governance.approve_region_policy: globally, or on the rule's region. Notices apply "
                "everywhere and need it globally. The author can never approve their own draft (403 four_eyes). "
                "Approving a material notice marks the changed purpose × category pairs for re-consent."
            ),
            parameters=[IDEMPOTENCY_KEY],
            request=ApprovalSerializer,
            examples=[OpenApiExample("approve now", value={}, request_only=True)],
            responses={
                200: OpenApiResponse(output, description=f"The approved {noun}."),
                **problem_responses(
                    *WRITE_ERRORS, 404, 409, examples={403: [_FOUR_EYES, _OUT_OF_SCOPE], 409: [_NOT_A_DRAFT]}
                ),
            },
        )
    )
