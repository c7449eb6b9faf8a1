"""Employee self-service API (API.md, Employee self-service): always the caller's own record.

Nothing in a request names the employee: the record is the signed-in
person's (session or user token), so no request can reach anyone else's
choices. Machine tokens are refused by the default permission.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.actors import Actor
from consent.models import Channel, Receipt
from consent.selectors import consent_overview, receipt_inclusion, receipt_of, receipts_of
from consent.serializers import (
    AcknowledgementInputSerializer,
    AcknowledgementSerializer,
    ConsentChangeSerializer,
    ConsentOverviewSerializer,
    ConsentUpdateSerializer,
    PauseInputSerializer,
    PauseSerializer,
    ReceiptSerializer,
    ReceiptSummarySerializer,
)
from consent.services import (
    Choice,
    consent_apply_choices,
    consent_withdraw_all,
    consent_withdraw_pairs,
    notice_acknowledge,
    pause_end,
    pause_start,
)
from consentry.errors import Conflict, NotFound
from consentry.idempotency import idempotent
from consentry.openapi import (
    IDEMPOTENCY_KEY,
    READ_ERRORS,
    WRITE_ERRORS,
    problem_example,
    problem_responses,
)
from governance.models import ApprovalState, Notice
from people.models import Employee

TAG = "Employee self-service"

_OVERVIEW_EXAMPLE = {
    "employee": "E1001",
    "region": {
        "code": "US-NY",
        "status": "conditional",
        "rule_region": "US-NY",
        "preconditions": [
            {"type": "notice_acknowledgement", "met": False, "label": "Employee acknowledged the current notice"}
        ],
        "blocked_categories": [],
    },
    "notice": {
        "version": 3,
        "title": "Activity capture for AI training",
        "material": True,
        "published_at": "2026-11-01T09:00:00Z",
        "summary": "We would like to record how you use your computer to train AI agents.",
        "body": "…",
        "retention_statement": "Raw data is kept 90 days.",
        "access_statement": "Only the research team's training pipelines.",
        "no_evaluation_statement": "Never used to evaluate you.",
    },
    "acknowledged": False,
    "paused_until": None,
    "items": [
        {
            "purpose": "ai_agent_training",
            "category": "keystrokes",
            "state": "granted",
            "since": "2026-11-02T10:00:00Z",
            "expires_at": "2027-11-02T10:00:00Z",
            "notice_version": 3,
            "description": "The keys you type.",
        },
        {
            "purpose": "ai_agent_training",
            "category": "screenshots",
            "state": "not_asked",
            "since": None,
            "expires_at": None,
            "notice_version": None,
            "description": "Pictures of your screen.",
        },
    ],
}
_STALE = problem_example(
    409, "stale_notice", "Notice version 2 is not the current notice; read version 3 and try again."
)
_BLOCKED = problem_example(
    409, "unavailable_in_region", "Capture is not available where you work, so consent cannot be given here."
)
_NO_RECORD = problem_example(404, "no_employee_record", "You have no employee record, so no consent to manage.")


class _MeView(APIView):
    # JSON bodies only: anything else is a 415, never a half-parsed form.
    parser_classes = [JSONParser]


def _employee(request: Request) -> Employee:
    """The caller's own employee record; the only one these endpoints ever touch."""
    user = request.user
    assert user.is_authenticated  # IsPersonAuthenticated, the default permission
    employee = Employee.objects.filter(user_id=user.pk).first()
    if employee is None:
        raise NotFound("You have no employee record, so no consent to manage.", code="no_employee_record")
    return employee


def _actor(request: Request) -> Actor:
    return Actor.for_user(request.user)


def _published_notice(version: int) -> Notice:
    notice = Notice.objects.filter(version=version).exclude(state=ApprovalState.DRAFT).first()
    if notice is None:
        raise Conflict(
            f"Notice version {version} has not been published; read the current notice.", code="stale_notice"
        )
    return notice


def _overview(employee: Employee, **extra) -> dict:
    data = ConsentOverviewSerializer(consent_overview(employee=employee, at=timezone.now())).data
    return {**data, **extra}


class MeConsentView(_MeView):
    @extend_schema(
        tags=[TAG],
        operation_id="me_consent_read",
        summary="Where the caller stands, per purpose × category",
        responses={
            200: OpenApiResponse(
                ConsentOverviewSerializer, examples=[OpenApiExample("overview", value=_OVERVIEW_EXAMPLE)]
            ),
            **problem_responses(*READ_ERRORS, 404, examples={404: [_NO_RECORD]}),
        },
    )
    def get(self, request: Request) -> Response:
        return Response(_overview(_employee(request)))

    @extend_schema(
        tags=[TAG],
        operation_id="me_consent_update",
        summary="Grant or withdraw consent against the notice version shown",
        description=(
            "Grants need the current notice version (409 stale_notice otherwise) and an open region "
            "(409 unavailable_in_region). A request that only withdraws is accepted under any published "
            "version: withdrawing never depends on the notice. Answers with the new state and the ids of "
            "the receipts the change produced."
        ),
        parameters=[IDEMPOTENCY_KEY],
        request=ConsentUpdateSerializer,
        responses={
            200: OpenApiResponse(
                ConsentChangeSerializer,
                examples=[OpenApiExample("changed", value={**_OVERVIEW_EXAMPLE, "receipts": ["rcpt_Zk1…"]})],
            ),
            **problem_responses(
                *WRITE_ERRORS,
                404,
                409,
                examples={
                    404: [_NO_RECORD],
                    409: [_STALE, _BLOCKED],
                    422: [
                        problem_example(
                            422,
                            "purpose_prohibited",
                            "Some choices cannot be granted.",
                            {"choices[0]": "'performance_evaluation' is a prohibited purpose."},
                        ),
                        problem_example(
                            422, "invalid", "The request has invalid fields; see errors.", {"choices": [{}]}
                        ),
                    ],
                },
            ),
        },
        examples=[
            OpenApiExample(
                "grant and withdraw",
                request_only=True,
                value={
                    "notice_version": 3,
                    "choices": [
                        {"purpose": "ai_agent_training", "category": "keystrokes", "granted": True},
                        {"purpose": "ai_agent_training", "category": "screenshots", "granted": False},
                    ],
                },
            )
        ],
    )
    @idempotent
    def put(self, request: Request) -> Response:
        employee = _employee(request)
        serializer = ConsentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        choices = [Choice(c["purpose"], c["category"], c["granted"]) for c in data["choices"]]
        if any(choice.granted for choice in choices):
            events = consent_apply_choices(
                employee=employee,
                notice=_published_notice(data["notice_version"]),
                choices=choices,
                actor=_actor(request),
                channel=Channel.API,
            )
        else:
            events = consent_withdraw_pairs(
                employee=employee,
                pairs=[(c.purpose, c.category) for c in choices],
                actor=_actor(request),
                channel=Channel.API,
            )
        return Response(_overview(employee, receipts=[event.receipt_id for event in events]))


class MeWithdrawAllView(_MeView):
    @extend_schema(
        tags=[TAG],
        operation_id="me_consent_withdraw_all",
        summary="Withdraw every consent at once",
        parameters=[IDEMPOTENCY_KEY],
        request=None,
        responses={
            200: OpenApiResponse(
                ConsentChangeSerializer,
                examples=[OpenApiExample("withdrawn", value={**_OVERVIEW_EXAMPLE, "receipts": ["rcpt_Zk1…"]})],
            ),
            **problem_responses(*WRITE_ERRORS, 404, examples={404: [_NO_RECORD]}),
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        request.data  # noqa: B018 - no body is expected, but a malformed or oversized one is refused
        employee = _employee(request)
        events = consent_withdraw_all(employee=employee, actor=_actor(request), channel=Channel.API)
        return Response(_overview(employee, receipts=[event.receipt_id for event in events]))


class MeAcknowledgementView(_MeView):
    @extend_schema(
        tags=[TAG],
        operation_id="me_acknowledgement_create",
        summary="Acknowledge the current monitoring notice",
        description="Separate from consent (New York Civil Rights Law §52-c, Delaware). Repeating it is harmless.",
        parameters=[IDEMPOTENCY_KEY],
        request=AcknowledgementInputSerializer,
        responses={
            201: OpenApiResponse(
                AcknowledgementSerializer,
                examples=[
                    OpenApiExample(
                        "acknowledged", value={"notice_version": 3, "acknowledged_at": "2026-11-21T09:30:00Z"}
                    )
                ],
            ),
            **problem_responses(*WRITE_ERRORS, 404, 409, examples={404: [_NO_RECORD], 409: [_STALE]}),
        },
        examples=[OpenApiExample("acknowledge", request_only=True, value={"notice_version": 3})],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        employee = _employee(request)
        serializer = AcknowledgementInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        notice = _published_notice(serializer.validated_data["notice_version"])
        ack = notice_acknowledge(employee=employee, notice=notice, actor=_actor(request), channel=Channel.API)
        return Response(AcknowledgementSerializer(ack).data, status=status.HTTP_201_CREATED)


class MePauseView(_MeView):
    @extend_schema(
        tags=[TAG],
        operation_id="me_pause_start",
        summary="Pause all capture for a while (at most 7 days)",
        parameters=[IDEMPOTENCY_KEY],
        request=PauseInputSerializer,
        responses={
            201: OpenApiResponse(
                PauseSerializer,
                examples=[
                    OpenApiExample(
                        "paused",
                        value={"started_at": "2026-11-21T09:30:00Z", "paused_until": "2026-11-21T10:00:00Z"},
                    )
                ],
            ),
            **problem_responses(*WRITE_ERRORS, 404, examples={404: [_NO_RECORD]}),
        },
        examples=[
            OpenApiExample("for 30 minutes", request_only=True, value={"minutes": 30}),
            OpenApiExample("until a time", request_only=True, value={"until": "2026-11-21T17:00:00Z"}),
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        employee = _employee(request)
        serializer = PauseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        now = timezone.now()
        data = serializer.validated_data
        until = data["until"] if "until" in data else now + timedelta(minutes=data["minutes"])
        pause = pause_start(employee=employee, until=until, actor=_actor(request), at=now)
        return Response(PauseSerializer(pause).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        operation_id="me_pause_end",
        summary="Resume capture now (harmless when nothing is paused)",
        parameters=[IDEMPOTENCY_KEY],
        request=None,
        responses={204: None, **problem_responses(400, 401, 403, 404, 413, 422, 429, examples={404: [_NO_RECORD]})},
    )
    @idempotent
    def delete(self, request: Request) -> Response:
        request.data  # noqa: B018 - no body is expected, but a malformed or oversized one is refused
        pause_end(employee=_employee(request), actor=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeReceiptListView(ListAPIView):
    parser_classes = [JSONParser]
    serializer_class = ReceiptSummarySerializer
    # API.md: "a list". One employee's receipts stay few (a grant or withdrawal each).
    pagination_class = None

    def get_queryset(self):
        return receipts_of(employee=_employee(self.request))

    @extend_schema(
        tags=[TAG],
        operation_id="me_receipts_list",
        summary="The caller's consent receipts, newest first",
        responses={200: ReceiptSummarySerializer(many=True), **problem_responses(*READ_ERRORS, 404)},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class MeReceiptDetailView(_MeView):
    @extend_schema(
        tags=[TAG],
        operation_id="me_receipt_read",
        summary="One signed receipt: the compact JWS and its decoded claims",
        description=(
            "Verify `jws` with the keys at /.well-known/jwks.json (EdDSA, Ed25519; JWS typ "
            "consent-receipt+jwt). `inclusion` proves the receipt's audit entry is in the ledger under a "
            "signed checkpoint; it is null, with `inclusion_status` pending, until the next checkpoint "
            "(due within a poll interval of the change). Another employee's receipt id answers 404."
        ),
        responses={
            200: OpenApiResponse(
                ReceiptSerializer,
                examples=[
                    OpenApiExample(
                        "receipt",
                        value={
                            "id": "rcpt_Zk1…",
                            "jws": "eyJhbGciOiJFZERTQSIs…",
                            "receipt": {
                                "version": "KI-CR-v1.1.0",
                                "consentReceiptID": "rcpt_Zk1…",
                                "jurisdiction": "US-NY",
                                "piiPrincipalId": "E1001",
                                "policyUrl": "urn:consentry:notice:3",
                                "record": {"event": {"type": "given"}},
                            },
                            "issued_at": "2026-11-21T09:30:00Z",
                            "kind": "granted",
                            "inclusion": None,
                            "inclusion_status": "pending",
                            "inclusion_detail": "pending: the next checkpoint is due by 2026-11-21T09:30:30.000000Z; "
                            "fetch this again after that to get the proof that audit entry #812 is in the ledger.",
                        },
                    )
                ],
            ),
            **problem_responses(*READ_ERRORS, 404),
        },
    )
    def get(self, request: Request, receipt_id: str) -> Response:
        receipt: Receipt | None = receipt_of(employee=_employee(request), receipt_id=receipt_id)
        if receipt is None:
            raise NotFound("No such receipt.", code="not_found")
        return Response(ReceiptSerializer(receipt, context={"inclusion": receipt_inclusion(receipt=receipt)}).data)
