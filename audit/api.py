"""The audit API: auditors search and export the ledger; anyone verifies it.

Every list is scoped by the caller's audit access (``audit.access``):
auditors see the regions they hold, employees never see entries but may
fetch the inclusion proof of an entry about themselves, machine tokens see
nothing. Entries and exports outside the caller's reach are 404, not 403, so
their existence does not leak.
"""

from __future__ import annotations

import base64
from typing import Any

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from audit import selectors, services
from audit.access import AuditAccess, access_for
from audit.models import AuditEntry, ExportStatus
from audit.proofs import inclusion_proof
from audit.serializers import (
    CheckpointSerializer,
    EntryQuerySerializer,
    EntrySerializer,
    ExportRequestSerializer,
    ExportSerializer,
    ProofSerializer,
)
from audit.statements import AUDIT_RING
from consentry.errors import Conflict, NotFound
from consentry.idempotency import idempotent
from consentry.pagination import ApiPagination
from consentry.signing import keyring, public_jwk

PROBLEM = OpenApiResponse(description="Problem details (RFC 9457).")
NOT_AN_AUDITOR = "Only auditors read the audit ledger."


def _access(request: Request) -> AuditAccess:
    # Cached on the request, which the permission check and the view both ask; the stubs cannot know the attribute.
    if not hasattr(request, "_audit_access"):
        request._audit_access = access_for(request.user)  # type: ignore[attr-defined]
    return request._audit_access  # type: ignore[attr-defined]


class IsAuditor(BasePermission):
    message = NOT_AN_AUDITOR

    def has_permission(self, request: Request, view: Any) -> bool:
        return _access(request).can_audit


# The project default (a signed-in person; machine tokens refused) comes first.
# api_settings imports the classes the setting names; its stubs keep the setting's strings.
PEOPLE: list[type[BasePermission]] = list(api_settings.DEFAULT_PERMISSION_CLASSES)  # type: ignore[arg-type]
AUDITORS: list[type[BasePermission]] = [*PEOPLE, IsAuditor]

ENTRY_EXAMPLE = {
    "seq": 42,
    "at": "2026-11-21T09:30:00.000000Z",
    "event_type": "consent.withdrawn",
    "actor": "user:nina",
    "subject": "E1001",
    "object_type": "consent_event",
    "object_id": "7",
    "region": "US-NY",
    "payload": {"purpose": "ai_agent_training", "categories": ["screenshots"]},
    "prev_hash": "5d41…",
    "hash": "9b1c…",
    "proof": "/api/v1/audit/entries/42/proof",
}


class EntryList(APIView):
    permission_classes = AUDITORS
    # Named on the view so the schema documents the page, not a bare list.
    pagination_class = ApiPagination

    @extend_schema(
        operation_id="audit_entries_list",
        summary="Search the audit ledger",
        parameters=[
            EntryQuerySerializer,
            OpenApiParameter("limit", int, description="Page size (default 100)."),
            OpenApiParameter("offset", int),
        ],
        responses={200: EntrySerializer(many=True), 401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 429: PROBLEM},
        examples=[OpenApiExample("A page", value=ENTRY_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        query = EntryQuerySerializer.from_query(request.query_params)
        query.is_valid(raise_exception=True)
        entries = selectors.entries_visible(access=_access(request), filters=query.filters())
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(EntrySerializer(page, many=True).data)


class EntryDetail(APIView):
    permission_classes = AUDITORS

    @extend_schema(
        operation_id="audit_entries_retrieve",
        summary="One audit entry",
        responses={200: EntrySerializer, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 429: PROBLEM},
    )
    def get(self, request: Request, seq: int) -> Response:
        entry = selectors.entry_visible(access=_access(request), seq=seq)
        if entry is None:
            raise NotFound(f"No audit entry #{seq} in your scope.")
        return Response(EntrySerializer(entry).data)


class EntryProof(APIView):
    """Auditors in scope, and the employee the entry is about (their own consent receipts)."""

    permission_classes = PEOPLE

    @extend_schema(
        operation_id="audit_entries_proof",
        summary="Inclusion proof of one entry against the latest signed checkpoint",
        description=(
            "RFC 9162 audit path from the entry to the Merkle root of the latest signed checkpoint. "
            "Verify offline with `consentry-verify proof FILE --keys jwks.json`. 409 until a "
            "checkpoint covers the entry (checkpoints are signed every few minutes)."
        ),
        responses={200: ProofSerializer, 401: PROBLEM, 404: PROBLEM, 409: PROBLEM, 429: PROBLEM},
    )
    def get(self, request: Request, seq: int) -> Response:
        entry = AuditEntry.objects.filter(seq=seq).first()
        if entry is None or not _access(request).may_prove(entry):
            raise NotFound(f"No audit entry #{seq} you may see.")
        proof = inclusion_proof(seq)
        if proof is None:
            raise Conflict(
                f"Entry #{seq} is not yet covered by a signed checkpoint; retry shortly.", code="not_yet_checkpointed"
            )
        return Response(ProofSerializer(proof).data)


class CheckpointPagination(ApiPagination):
    """Pages of checkpoints, newest first, with the public keys that verify them."""

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        response.data["keys"] = [public_jwk(key) for key in keyring(AUDIT_RING).public_keys()]
        return response

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["keys"] = {
            "type": "array",
            "description": "Audit public keys (JWK, OKP Ed25519), current and retired.",
            "items": {"type": "object"},
        }
        return paginated


class CheckpointList(APIView):
    """Any signed-in person: checkpoints reveal sizes and hashes, nothing about anyone."""

    permission_classes = PEOPLE
    pagination_class = CheckpointPagination

    @extend_schema(
        operation_id="audit_checkpoints_list",
        summary="Signed checkpoints, newest first, and the audit public keys",
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses={200: CheckpointSerializer(many=True), 401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 429: PROBLEM},
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.checkpoints().order_by("-number"), request, view=self)
        return paginator.get_paginated_response(CheckpointSerializer(page, many=True).data)


class CheckpointDetail(APIView):
    permission_classes = PEOPLE

    @extend_schema(
        operation_id="audit_checkpoints_retrieve",
        summary="One signed checkpoint",
        responses={200: CheckpointSerializer, 401: PROBLEM, 404: PROBLEM, 429: PROBLEM},
    )
    def get(self, request: Request, number: int) -> Response:
        checkpoint = selectors.checkpoints().filter(number=number).first()
        if checkpoint is None:
            raise NotFound(f"No checkpoint #{number}.")
        return Response(CheckpointSerializer(checkpoint).data)


class ExportList(APIView):
    permission_classes = AUDITORS
    pagination_class = ApiPagination

    @extend_schema(
        operation_id="audit_exports_list",
        summary="Your export jobs, newest first",
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses={200: ExportSerializer(many=True), 401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 429: PROBLEM},
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.exports_of(user=request.user), request, view=self)
        return paginator.get_paginated_response(ExportSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="audit_exports_create",
        summary="Start an export job",
        description=(
            "Builds a zip bundle (entries as JSON Lines or CSV, the signed checkpoints covering them, "
            "the public keys and a signed manifest) in the background; poll the job for `status` and "
            "`progress`, then follow `download`. Accepts an `Idempotency-Key` header."
        ),
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        request=ExportRequestSerializer,
        responses={
            202: ExportSerializer,
            400: PROBLEM,
            401: PROBLEM,
            403: PROBLEM,
            413: PROBLEM,
            422: PROBLEM,
            429: PROBLEM,
        },
        examples=[
            OpenApiExample(
                "Withdrawals in November",
                value={
                    "format": "jsonl",
                    "since": "2026-11-01T00:00:00Z",
                    "until": "2026-12-01T00:00:00Z",
                    "event_types": ["consent.withdrawn"],
                },
                request_only=True,
            )
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        body = ExportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        export = services.export_request(
            user=request.user, access=_access(request), filters=body.filters(), format=body.validated_data["format"]
        )
        data = ExportSerializer(export, context={"request": request}).data
        return Response(
            data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": reverse("audit:export-detail", kwargs={"pk": export.pk})},
        )


def _own_export(request: Request, pk: Any):
    return get_object_or_404(selectors.exports_of(user=request.user), pk=pk)


class ExportDetail(APIView):
    permission_classes = AUDITORS

    @extend_schema(
        operation_id="audit_exports_retrieve",
        summary="An export job: status, progress, download link",
        responses={200: ExportSerializer, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 429: PROBLEM},
    )
    def get(self, request: Request, pk: Any) -> Response:
        return Response(ExportSerializer(_own_export(request, pk), context={"request": request}).data)


class ExportDownload(APIView):
    permission_classes = AUDITORS

    @extend_schema(
        operation_id="audit_exports_download",
        summary="Download a finished export bundle (zip)",
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            401: PROBLEM,
            403: PROBLEM,
            404: PROBLEM,
            409: PROBLEM,
            429: PROBLEM,
        },
    )
    def get(self, request: Request, pk: Any) -> FileResponse:
        export = _own_export(request, pk)
        if export.status != ExportStatus.DONE or not export.file:
            raise Conflict(f"The export is {export.status}, not done.", code="export_not_ready")
        # Streams from storage in chunks; the bundle is never held in memory.
        response = FileResponse(
            export.file.open("rb"),
            as_attachment=True,
            filename=f"consentry-audit-{export.pk}.zip",
            content_type="application/zip",
        )
        response["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(export.sha256)).decode()}:"
        response["Cache-Control"] = "private, no-store"
        return response
