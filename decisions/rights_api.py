"""Rights requests over the API: an employee's own under /api/v1/me/, and staff's read-only view.

``/api/v1/me/rights-requests`` acts on the signed-in person's own employee
record only: nothing in a request names the employee, and another
employee's request id answers 404, never 403, so its existence does not
leak. Only the owner downloads a copy. HR administrators, and auditors for
the regions they cover, read requests (not copies) at
``/api/v1/rights-requests``; nobody else sees anyone's.
"""

from __future__ import annotations

import base64
from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.access import access_for
from audit.actors import Actor
from consentry.errors import Conflict, Forbidden, NotFound
from consentry.idempotency import idempotent
from consentry.openapi import IDEMPOTENCY_KEY, READ_ERRORS, WRITE_ERRORS, problem_example, problem_responses
from consentry.pagination import ApiPagination
from decisions.models import RightsKind, RightsRequest, RightsStatus
from decisions.rights import (
    rights_access_downloaded,
    rights_request_access,
    rights_request_erasure,
    rights_request_of,
    rights_requests_of,
    rights_requests_visible,
)
from decisions.serializers import RightsRequestInputSerializer, RightsRequestSerializer, StaffRightsRequestSerializer
from people.models import Employee

TAG = "Employee self-service"
STAFF_TAG = "Rights requests (HR and audit)"
_NO_RECORD = problem_example(404, "no_employee_record", "You have no employee record, so no data to ask about.")
_NOT_YOURS = problem_example(404, "not_found", "No such request.")

_ACCESS_EXAMPLE = {
    "id": "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f",
    "kind": "access",
    "status": "completed",
    "progress": 100,
    "requested_at": "2026-11-21T09:30:00Z",
    "completed_at": "2026-11-21T09:30:04Z",
    "message": "Your copy is ready to download.",
    "download": "/api/v1/me/rights-requests/6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f/download",
    "byte_size": 18342,
    "sha256": "9b1c…",
    "contents": {"consent_events": 4, "receipts": 4, "capture_grants": 120, "audit_entries": 131},
    "erasure": None,
    "error": "",
}
_ERASURE_EXAMPLE = {
    "id": "0a7e9c55-2f4b-4d1e-9a3c-7b6d5e4f3a21",
    "kind": "erasure",
    "status": "completed",
    "progress": 100,
    "requested_at": "2026-11-21T10:00:00Z",
    "completed_at": "2026-11-21T10:00:02Z",
    "message": "Your data was erased: the keys to your recorded activity were destroyed …",
    "download": None,
    "byte_size": None,
    "sha256": "",
    "contents": None,
    "erasure": {
        "summary": "Your data was erased: the keys to your recorded activity were destroyed …",
        "stopped": [{"item": "consent", "what": "Your consents", "detail": "Every opt-in …", "count": 2}],
        "deleted": [
            {
                "item": "data_keys",
                "what": "Encryption keys for your recorded activity",
                "detail": "Every key that encrypted recordings of your activity was destroyed …",
                "count": 14,
            }
        ],
        "retained": [
            {
                "item": "consent_events",
                "what": "Your consent choices and signed receipts",
                "why": "Kept as proof of what you agreed to and when you withdrew …",
                "count": 6,
            }
        ],
    },
    "error": "",
}


def _employee(request: Request) -> Employee:
    """The caller's own employee record; the only one these endpoints touch."""
    user = request.user
    assert user.is_authenticated  # IsPersonAuthenticated, the default permission
    employee = Employee.objects.filter(user_id=user.pk).first()
    if employee is None:
        raise NotFound("You have no employee record, so no data to ask about.", code="no_employee_record")
    return employee


def _own(request: Request, pk: Any) -> RightsRequest:
    found = rights_request_of(employee=_employee(request), request_id=pk)
    if found is None:
        raise NotFound("No such request.")
    return found


class MeRightsRequestListView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        operation_id="me_rights_requests_list",
        summary="Your access and erasure requests, newest first",
        responses={
            200: OpenApiResponse(
                RightsRequestSerializer(many=True),
                examples=[OpenApiExample("requests", value=[_ACCESS_EXAMPLE, _ERASURE_EXAMPLE])],
            ),
            **problem_responses(*READ_ERRORS, 404, examples={404: [_NO_RECORD]}),
        },
    )
    def get(self, request: Request) -> Response:
        requests = rights_requests_of(employee=_employee(request))
        return Response(RightsRequestSerializer(requests, many=True).data)

    @extend_schema(
        tags=[TAG],
        operation_id="me_rights_requests_create",
        summary="Ask for a copy of your data, or for its erasure",
        description=(
            "`access` prepares a zip with `data.json` and a readable `index.html` of everything Consentry "
            "holds about you (docs/rights-requests.md); poll the request for `status` and `progress`, then "
            "follow `download`. `erasure` stops every use of data captured before it at once, destroys your "
            "data keys and deletes what Consentry may delete; `erasure` in the answer says what is deleted "
            "and what is kept as evidence, and why. Asking again while a request of the same kind is pending "
            "answers 200 with that request; a new request answers 202."
        ),
        parameters=[IDEMPOTENCY_KEY],
        request=RightsRequestInputSerializer,
        responses={
            202: OpenApiResponse(
                RightsRequestSerializer,
                description="Received; the work runs in the background.",
                examples=[
                    OpenApiExample(
                        "access received",
                        value={
                            **_ACCESS_EXAMPLE,
                            "status": "received",
                            "progress": 0,
                            "completed_at": None,
                            "message": "Your request is received; preparing your copy starts in a moment.",
                            "download": None,
                            "byte_size": None,
                            "sha256": "",
                            "contents": None,
                        },
                    )
                ],
            ),
            200: OpenApiResponse(
                RightsRequestSerializer,
                description="A request of this kind was already pending: that one.",
                examples=[OpenApiExample("erasure already pending", value={**_ERASURE_EXAMPLE, "status": "running"})],
            ),
            **problem_responses(
                *WRITE_ERRORS,
                404,
                examples={
                    404: [_NO_RECORD],
                    422: [
                        problem_example(
                            422,
                            "invalid",
                            "The request has invalid fields; see errors.",
                            {"kind": ['"everything" is not a valid choice.']},
                        )
                    ],
                },
            ),
        },
        examples=[
            OpenApiExample("a copy of my data", request_only=True, value={"kind": "access"}),
            OpenApiExample("erase my data", request_only=True, value={"kind": "erasure"}),
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        employee = _employee(request)
        body = RightsRequestInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ask = rights_request_access if body.validated_data["kind"] == RightsKind.ACCESS else rights_request_erasure
        rights, created = ask(employee=employee, user=request.user, actor=Actor.for_user(request.user))
        return Response(
            RightsRequestSerializer(rights).data,
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
            headers={"Location": reverse("me-rights-request", kwargs={"pk": rights.pk})},
        )


class MeRightsRequestDetailView(APIView):
    @extend_schema(
        tags=[TAG],
        operation_id="me_rights_request_read",
        summary="One of your requests: status, progress, and what came of it",
        responses={
            200: OpenApiResponse(
                RightsRequestSerializer,
                examples=[
                    OpenApiExample("access, ready", value=_ACCESS_EXAMPLE),
                    OpenApiExample("erasure, done", value=_ERASURE_EXAMPLE),
                ],
            ),
            **problem_responses(*READ_ERRORS, 404, examples={404: [_NOT_YOURS]}),
        },
    )
    def get(self, request: Request, pk: Any) -> Response:
        return Response(RightsRequestSerializer(_own(request, pk)).data)


def download_response(rights: RightsRequest) -> FileResponse:
    """The copy as an attachment, streamed from storage, never cached anywhere."""
    if rights.kind != RightsKind.ACCESS or rights.status != RightsStatus.COMPLETED:
        raise Conflict(f"The copy is not ready: the request is {rights.status}.", code="export_not_ready")
    if not rights.file:
        raise Conflict("This copy was deleted when you asked for erasure; ask for a new copy.", code="export_deleted")
    response = FileResponse(
        rights.file.open("rb"),
        as_attachment=True,
        filename=f"consentry-my-data-{rights.requested_at:%Y-%m-%d}.zip",
        content_type="application/zip",
    )
    response["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(rights.sha256)).decode()}:"
    response["Cache-Control"] = "private, no-store"
    return response


class MeRightsRequestDownloadView(APIView):
    @extend_schema(
        tags=[TAG],
        operation_id="me_rights_request_download",
        summary="Download the copy of your data (zip)",
        description="Only the employee who asked downloads it; the answer is never cached (no-store).",
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            **problem_responses(
                *READ_ERRORS,
                404,
                409,
                examples={
                    404: [_NOT_YOURS],
                    409: [
                        problem_example(409, "export_not_ready", "The copy is not ready: the request is running."),
                        problem_example(409, "export_deleted", "This copy was deleted when you asked for erasure."),
                    ],
                },
            ),
        },
    )
    def get(self, request: Request, pk: Any) -> FileResponse:
        rights = _own(request, pk)
        response = download_response(rights)
        rights_access_downloaded(rights=rights, actor=Actor.for_user(request.user))
        return response


# Staff: HR administrators and auditors in scope ------------------------------------------


def _visible(request: Request) -> QuerySet[RightsRequest]:
    user = request.user
    access = access_for(user)
    if not (user.has_perm("people.view_employee") or access.can_audit):
        raise Forbidden("Only HR administrators and auditors see rights requests.", code="permission_denied")
    return rights_requests_visible(user=user, access=access)


class RightsRequestListView(APIView):
    # Named on the view so the schema documents the page, not a bare list.
    pagination_class = ApiPagination

    @extend_schema(
        tags=[STAFF_TAG],
        operation_id="rights_requests_list",
        summary="Employees' rights requests in your scope, newest first",
        description=(
            "HR administrators see every request; auditors those of employees who worked, when asking, in "
            "the regions they audit. The copies themselves are never served here."
        ),
        parameters=[
            OpenApiParameter("employee", str, description="Only this employee's (HR id)."),
            OpenApiParameter("kind", str, enum=RightsKind.values),
            OpenApiParameter("limit", int, description="Page size (default 100)."),
            OpenApiParameter("offset", int),
        ],
        responses={200: StaffRightsRequestSerializer(many=True), **problem_responses(*READ_ERRORS, 422)},
    )
    def get(self, request: Request) -> Response:
        requests = _visible(request)
        if hr_id := request.query_params.get("employee"):
            requests = requests.filter(employee__hr_id=hr_id)
        if (kind := request.query_params.get("kind")) in RightsKind.values:
            requests = requests.filter(kind=kind)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(requests, request, view=self)
        return paginator.get_paginated_response(StaffRightsRequestSerializer(page, many=True).data)


class RightsRequestDetailView(APIView):
    @extend_schema(
        tags=[STAFF_TAG],
        operation_id="rights_requests_retrieve",
        summary="One employee's rights request, if in your scope",
        responses={200: StaffRightsRequestSerializer, **problem_responses(*READ_ERRORS, 404)},
    )
    def get(self, request: Request, pk: Any) -> Response:
        found = _visible(request).filter(pk=pk).first()
        if found is None:
            raise NotFound("No such request in your scope.")
        return Response(StaffRightsRequestSerializer(found).data)
