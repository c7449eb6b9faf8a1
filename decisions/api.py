"""The decision API: capture decisions, use decisions, simulation, and token management (API.md)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from guardian.shortcuts import get_objects_for_user
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.actors import Actor
from consentry.errors import Forbidden, NotFound
from consentry.idempotency import idempotent
from consentry.openapi import IDEMPOTENCY_KEY
from consentry.outages import is_database_outage
from decisions import engine
from decisions.datakeys import b64, data_keys_release
from decisions.parsers import (
    BoundedJSONParser,
    PayloadTooLarge,
    UseBatchJSONParser,
    content_length,
    ensure_body_within,
)
from decisions.revocations import format_cursor
from decisions.selectors import capture_reads
from decisions.serializers import (
    CaptureDecisionSerializer,
    CaptureRequestSerializer,
    SimulateRequestSerializer,
    SimulationSerializer,
    TokenSerializer,
    UseQuerySerializer,
    UseRequestDocSerializer,
    UseRequestSerializer,
    UseResponseSerializer,
    plain_capture_request,
)
from decisions.services import (
    SIMULATION_ASSUMPTIONS,
    CaptureOutcome,
    capture_decide,
    capture_simulate,
    use_batch_record,
)
from decisions.snapshot import current_policy
from decisions.usebatch import (
    MAX_JSON_RECORDS,
    InvalidRecord,
    UseEvaluator,
    chunked,
    ndjson_lines,
    parse_line,
    parse_record,
    reason_json,
    result_blocks,
)
from governance.models import Region
from people.authentication import IsDeviceToken, IsPipelineToken, token_of
from people.models import ApiToken, Employee
from people.tokens import token_may_revoke, token_revoke, tokens_visible_to

logger = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
PROBLEM = OpenApiResponse(OpenApiTypes.OBJECT, description="RFC 9457 problem details.")


def problems(*codes: int) -> dict[tuple[int, str], OpenApiResponse]:
    """Error responses, documented with their real media type."""
    return {(code, "application/problem+json"): PROBLEM for code in codes}


SIMULATE_PERMISSIONS = ["governance.manage_region_policy", "governance.approve_region_policy"]


class DecisionUnavailable(exceptions.APIException):
    """A dependency failed: clients treat it as deny (fail closed)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Decisions are unavailable right now; treat this as a denial and retry later."
    default_code = "dependency_unavailable"


def _context(data: dict[str, Any] | None) -> engine.Context:
    data = data or {}
    flags = set(data.get("flags") or ())
    if data.get("private_browsing"):
        flags.add("private_browsing")
    return engine.Context(app=data.get("app", ""), domain=data.get("domain", ""), flags=frozenset(flags))


def _capture_request(data: dict[str, Any]) -> engine.CaptureRequest:
    return engine.CaptureRequest(
        purpose=data["purpose"], categories=tuple(data["categories"]), context=_context(data.get("context"))
    )


def _decision_body(outcome: CaptureOutcome, *, revocation_cursor: str | None = None) -> dict[str, Any]:
    decision = outcome.decision
    body: dict[str, Any] = {
        "decision_id": outcome.decision_id,
        "employee": outcome.employee,
        "evaluated_at": decision.at,
        "policy_version": decision.policy_version,
        "consent_version": decision.consent_version,
        "categories": {
            result.category: {
                "allowed": result.allowed,
                "reasons": [reason_json(reason) for reason in result.reasons],
            }
            for result in decision.categories
        },
        "grant": None,
        # Where this device starts following the revocation feed.
        "revocation_cursor": revocation_cursor,
    }
    if outcome.grant is not None:
        grant = outcome.grant.grant
        body["grant"] = {
            "id": grant.id,
            "token": outcome.grant.jws,
            "categories": grant.categories,
            "purpose": grant.purpose_id,
            "subject": grant.subject,
            "issued_at": grant.issued_at,
            "expires_at": grant.expires_at,
            "data_keys": {
                category: {"key_id": key.key_id, "key": b64(key.key)}
                for category, key in outcome.grant.data_keys.items()
            },
        }
    return body


CAPTURE_EXAMPLE = {
    "purpose": "ai_agent_training",
    "categories": ["keystrokes", "mouse_movement", "screenshots"],
    "context": {"app": "com.microsoft.VSCode", "domain": "github.com"},
}
DECISION_EXAMPLE = {
    "decision_id": "0b9e6c1d4f0a4e7e9d1c2b3a4f5e6d7c",
    "employee": "E1001",
    "evaluated_at": "2026-11-21T09:30:00Z",
    "policy_version": "a3f1c2…",
    "consent_version": 17,
    "categories": {
        "keystrokes": {"allowed": True, "reasons": []},
        "mouse_movement": {"allowed": True, "reasons": []},
        "screenshots": {
            "allowed": False,
            "reasons": [
                {
                    "code": "no_consent",
                    "detail": "No consent for screenshots under ai_agent_training.",
                    "missing_configuration": False,
                }
            ],
        },
    },
    "grant": {
        "id": "g_7QkX2c9vHq1LzP0aB3dE4w",
        "token": "eyJhbGciOiJFZERTQSIs…",
        "categories": ["keystrokes", "mouse_movement"],
        "purpose": "ai_agent_training",
        "subject": "p_4c1e…",
        "issued_at": "2026-11-21T09:30:00Z",
        "expires_at": "2026-11-21T09:31:00Z",
        "data_keys": {
            "keystrokes": {"key_id": "k_Vd3q9mZk1xR8wLp0sT2yAg", "key": "q8Bz…base64 of 32 bytes…="},
            "mouse_movement": {"key_id": "k_3JfQw0a9PzX1c5Lr7uYb2Q", "key": "Zm9v…base64 of 32 bytes…="},
        },
    },
    "revocation_cursor": "c_29",
}


# One bound output serializer for every answer: building a serializer deep-copies
# its fields, which cost a tenth of a capture decision. to_representation keeps no state.
CAPTURE_OUTPUT = CaptureDecisionSerializer()


class CaptureDecisionView(APIView):
    """POST /api/v1/decisions/capture: may this device capture these categories now?"""

    permission_classes = [IsDeviceToken]
    # Agents ask before every capture: their own, higher rate bucket.
    throttle_scope = "decisions"
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="decisions_capture",
        summary="Capture decision",
        description=(
            "Device token only; the employee is the token's employee. Answers 200 with a decision per category "
            "even when everything is denied; `grant` is null when no category is allowed. Reasons are in SPEC.md "
            "order. `grant.data_keys` holds, per allowed category, today's (UTC) data key: encrypt what is captured "
            "with it (AES-256, standard base64) and keep the `key_id` with the record; a category whose key for "
            "today was destroyed has none, so capture nothing for it. The answer is `Cache-Control: no-store`. "
            "Follow `GET /api/v1/revocations?after=` "
            "from `revocation_cursor`: every change after this decision that takes a category away appears there. "
            "Any 4xx or 5xx answer means: capture nothing."
        ),
        request=CaptureRequestSerializer,
        responses={
            (200, "application/json"): CaptureDecisionSerializer,
            **problems(400, 401, 403, 413, 415, 422, 429, 503),
        },
        examples=[
            OpenApiExample("Request", value=CAPTURE_EXAMPLE, request_only=True),
            OpenApiExample("Partly allowed", value=DECISION_EXAMPLE, response_only=True),
        ],
        tags=["decisions"],
    )
    def post(self, request: Request) -> Response:
        ensure_body_within(request, BoundedJSONParser.max_bytes)
        token = token_of(request)
        assert token is not None  # IsDeviceToken
        employee = token.employee
        assert employee is not None  # token_device_bound: a device token always has its employee
        try:
            # The feed head is read with the facts the decision starts from: a change
            # they do not show commits later, so its feed event lands after this cursor.
            reads = capture_reads(employee=employee, at=timezone.now())
            policy = current_policy(reads.policy_marker)
            data = plain_capture_request(request.data, policy.categories)
            if data is None:
                serializer = CaptureRequestSerializer(
                    data=request.data, context={"known_categories": set(policy.categories)}
                )
                serializer.is_valid(raise_exception=True)
                data = serializer.validated_data
            cursor = format_cursor(reads.feed_head)
            # No moment passed: a grant is decided at a moment taken under the employee's lock.
            outcome = capture_decide(token=token, request=_capture_request(data), policy=policy, reads=reads)
        except DatabaseError as exc:
            if is_database_outage(exc):
                raise  # consentry.problems answers it: 503 dependency_unavailable, logged in one line
            logger.exception("capture decision failed")
            raise DecisionUnavailable() from exc
        response = Response(CAPTURE_OUTPUT.to_representation(_decision_body(outcome, revocation_cursor=cursor)))
        # It may carry data keys: no cache anywhere may keep a copy.
        response["Cache-Control"] = "no-store"
        return response


class SimulateView(APIView):
    """POST /api/v1/simulate: what the policy decides for an employee, without a grant."""

    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="simulate",
        summary="Simulate a capture decision",
        description=(
            "For legal and approvers: a capture decision request plus an employee HR id and an optional time. "
            "Allowed with manage or approve permission on a region of the employee's region chain (or globally). "
            "The employee's own consent choices and pauses are private, so the simulation assumes consent under "
            "the notice in force and no pause (listed in `assumptions`); everything else (status, location, rule "
            "in force at `at`, preconditions, acknowledgements, purposes, exclusions) is evaluated for real."
        ),
        parameters=[IDEMPOTENCY_KEY],
        request=SimulateRequestSerializer,
        responses={(200, "application/json"): SimulationSerializer, **problems(400, 401, 403, 404, 413, 422, 429, 503)},
        examples=[
            OpenApiExample(
                "Request",
                value={**CAPTURE_EXAMPLE, "employee": "E1001", "at": "2026-11-21T09:30:00Z"},
                request_only=True,
            )
        ],
        tags=["decisions"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        ensure_body_within(request, BoundedJSONParser.max_bytes)
        user = request.user
        # Refuse people with no policy role before revealing whether an employee exists.
        if not get_objects_for_user(user, SIMULATE_PERMISSIONS, klass=Region, any_perm=True).exists():
            raise Forbidden("Simulation is for legal and approvers.", code="not_legal")
        try:
            policy = current_policy()
            serializer = SimulateRequestSerializer(
                data=request.data, context={"known_categories": set(policy.categories)}
            )
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            employee = Employee.objects.filter(hr_id=data["employee"]).first()
            if employee is None:
                raise NotFound(f"No employee with HR id {data['employee']!r}.", code="unknown_employee")
            chain = policy.chain(employee.country, employee.subdivision)
            in_scope = get_objects_for_user(
                user, SIMULATE_PERMISSIONS, klass=Region.objects.filter(code__in=chain), any_perm=True
            )
            if not in_scope.exists():
                raise Forbidden("The employee works outside the regions you cover.", code="out_of_scope")
            at = data.get("at") or timezone.now()
            outcome = capture_simulate(employee=employee, request=_capture_request(data), at=at)
        except DatabaseError as exc:
            if is_database_outage(exc):
                raise  # consentry.problems answers it: 503 dependency_unavailable, logged in one line
            logger.exception("simulation failed")
            raise DecisionUnavailable() from exc
        body = _decision_body(outcome)
        body.pop("consent_version")
        body.pop("revocation_cursor")
        body.update(simulated=True, assumptions=list(SIMULATION_ASSUMPTIONS))
        return Response(SimulationSerializer(body).data)


USE_EXAMPLE = {
    "purpose": "ai_agent_training",
    "records": [
        {
            "id": "r1",
            "subject": "p_4c1e…",
            "category": "keystrokes",
            "captured_at": "2026-11-20T14:02:11Z",
            "grant_id": "g_7Qk…",
        }
    ],
}
USE_RESPONSE_EXAMPLE = {
    "evaluated_at": "2026-11-21T09:30:00Z",
    "policy_version": "a3f1c2…",
    "batch_id": "5d0c…",
    "results": [
        {
            "id": "r1",
            "allowed": False,
            "reasons": [
                {
                    "code": "consent_withdrawn",
                    "detail": "Consent for keystrokes under ai_agent_training was withdrawn.",
                    "missing_configuration": False,
                }
            ],
        }
    ],
    "summary": {"allowed": 0, "denied": 1, "by_reason": {"consent_withdrawn": 1}},
}


class UseDecisionView(APIView):
    """POST /api/v1/decisions/use: which of these records may be used for this purpose now?"""

    permission_classes = [IsPipelineToken]
    throttle_scope = "decisions"
    parser_classes = [UseBatchJSONParser]

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # NDJSON clients may send Accept: application/x-ndjson; answers that are
        # not the stream (errors, JSON batches) are JSON whatever they accept.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="decisions_use",
        summary="Use decision",
        description=(
            "Pipeline token only, for a purpose within the token's purposes (403 otherwise).\n\n"
            f"`application/json`: 1 to {MAX_JSON_RECORDS} records (413 beyond, 422 when empty).\n\n"
            "`application/x-ndjson`: one record per line, `purpose` and `release_keys` in the query string; "
            'the answer streams back one result per line in input order, then `{"summary": …}`. A line that is '
            "not a valid record gets `invalid_record`. Send the body while reading the answer: results start "
            "before the upload ends. A stream that ends without its summary line (the last line is then "
            '`{"error": …}` or nothing) must be treated as denying every record.\n\n'
            'With `release_keys` (JSON body `"release_keys": true`; NDJSON `?release_keys=true`) the answer also '
            'holds `keys`: `{"<key_id>": "<base64 AES-256 key>"}` for the data keys of the allowed records only, '
            "each key once (a record maps to the key of its employee, category and UTC day of `captured_at`). "
            'With NDJSON, `keys` is a member of the final `{"summary": …}` line. A record whose key was destroyed '
            "is denied with `data_key_destroyed`; a key destroyed while the batch is answered is left out. Every "
            "release is audited (key ids, or a digest and the count). Answers are `Cache-Control: no-store`."
        ),
        parameters=[
            OpenApiParameter("purpose", str, description="NDJSON only: the purpose of the use."),
            OpenApiParameter(
                "release_keys",
                bool,
                description="NDJSON only: add the allowed records' data keys to the summary line as `keys`.",
            ),
            OpenApiParameter(
                "Idempotency-Key",
                str,
                location=OpenApiParameter.HEADER,
                required=False,
                description=(
                    "Send the same key when retrying a batch: the retry is decided afresh (a withdrawal in between "
                    "counts) and the audit entry of each attempt names the key."
                ),
            ),
        ],
        request={"application/json": UseRequestDocSerializer, NDJSON: OpenApiTypes.STR},
        responses={
            (200, "application/json"): OpenApiResponse(UseResponseSerializer, description="The JSON batch answer."),
            (200, NDJSON): OpenApiResponse(
                OpenApiTypes.STR, description='One UseResult per line, then {"summary": UseSummary, …}.'
            ),
            **problems(400, 401, 403, 413, 415, 422, 429, 503),
        },
        examples=[
            OpenApiExample("Request", value=USE_EXAMPLE, request_only=True, media_type="application/json"),
            OpenApiExample("Answer", value=USE_RESPONSE_EXAMPLE, response_only=True),
        ],
        tags=["decisions"],
    )
    def post(self, request: Request):
        token = token_of(request)
        assert token is not None  # IsPipelineToken
        self._retry_key(request)
        if request.content_type.split(";")[0].strip().lower() == NDJSON:
            return self._stream(request, token)
        ensure_body_within(request, UseBatchJSONParser().limit())
        data = request.data
        if isinstance(data, dict) and isinstance(data.get("records"), list) and len(data["records"]) > MAX_JSON_RECORDS:
            raise PayloadTooLarge(f"At most {MAX_JSON_RECORDS} records per JSON batch; stream larger sets as NDJSON.")
        serializer = UseRequestSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        purpose = serializer.validated_data["purpose"]
        self._check_scope(token, purpose)
        at = timezone.now()
        release_keys = serializer.validated_data["release_keys"]
        try:
            policy = current_policy()
            evaluator = UseEvaluator(policy=policy, purpose=purpose, at=at, release_keys=release_keys)
            results: list[dict[str, Any]] = []
            for chunk in chunked(map(parse_record, serializer.validated_data["records"])):
                results.extend(map(evaluator.result_json, evaluator.evaluate(chunk)))
            batch_id = uuid.uuid4().hex
            self._audit(token, evaluator, batch_id=batch_id, media_type="application/json", complete=True)
            keys = dict(data_keys_release(sorted(evaluator.released))) if release_keys else None
        except DatabaseError as exc:
            if is_database_outage(exc):
                raise  # consentry.problems answers it: 503 dependency_unavailable, logged in one line
            logger.exception("use decision failed")
            raise DecisionUnavailable() from exc
        body: dict[str, Any] = {
            "evaluated_at": at,
            "policy_version": policy.version,
            "batch_id": batch_id,
            "results": results,
            "summary": evaluator.summary(),
        }
        if keys is not None:
            body["keys"] = keys
        # Built by hand, not through UseResponseSerializer: 10,000 results through
        # serializer fields would cost more than deciding them.
        response = Response(body)
        # It may carry data keys: no cache anywhere may keep a copy.
        response["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def _check_scope(token: ApiToken, purpose: str) -> None:
        if purpose not in token.purposes:
            raise Forbidden(f"This pipeline token may not ask about {purpose!r}.", code="purpose_out_of_scope")

    @staticmethod
    def _retry_key(request: Request) -> str:
        """The client's Idempotency-Key, kept with the batch's audit entry (a retry is decided afresh)."""
        key = request.headers.get("Idempotency-Key", "")
        if key and not (len(key) <= 255 and all(32 < ord(ch) < 127 for ch in key)):
            raise exceptions.ValidationError({"Idempotency-Key": "1 to 255 printable ASCII characters."})
        return key

    def _audit(
        self, token: ApiToken, evaluator: UseEvaluator, *, batch_id: str, media_type: str, complete: bool
    ) -> None:
        use_batch_record(
            token=token,
            batch_id=batch_id,
            purpose=evaluator.purpose,
            media_type=media_type,
            evaluated_at=evaluator.at,
            policy_version=evaluator.policy.version,
            allowed=evaluator.allowed,
            denied=evaluator.denied,
            by_reason=evaluator.by_reason,
            records_digest=evaluator.records_digest,
            complete=complete,
            idempotency_key=self._retry_key(self.request),
            # Only a complete answer releases keys.
            released_keys=evaluator.released if evaluator.release_keys and complete else None,
        )

    def _stream(self, request: Request, token: ApiToken) -> StreamingHttpResponse:
        query = UseQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        purpose = query.validated_data["purpose"]
        self._check_scope(token, purpose)
        if content_length(request) == 0:
            raise exceptions.ValidationError({"body": "The NDJSON body holds no records."})
        at = timezone.now()
        try:
            policy = current_policy()
        except DatabaseError as exc:
            if is_database_outage(exc):
                raise  # consentry.problems answers it: 503 dependency_unavailable, logged in one line
            logger.exception("use decision failed")
            raise DecisionUnavailable() from exc
        release_keys = query.validated_data["release_keys"]
        evaluator = UseEvaluator(policy=policy, purpose=purpose, at=at, release_keys=release_keys)
        batch_id = uuid.uuid4().hex
        # The unread Django request: read block by block, never as a whole body.
        raw = request._request

        def lines():
            audited = False
            try:
                items = (line if type(line) is InvalidRecord else parse_line(line) for line in ndjson_lines(raw))
                yield from result_blocks(evaluator, items)
                # No summary without its audit entry: a client that sees the summary knows it is on record.
                self._audit(token, evaluator, batch_id=batch_id, media_type=NDJSON, complete=True)
                audited = True
                summary: dict[str, Any] = {
                    "summary": evaluator.summary(),
                    "evaluated_at": at.isoformat().replace("+00:00", "Z"),
                    "policy_version": policy.version,
                    "batch_id": batch_id,
                }
                if not release_keys:
                    yield json.dumps(summary) + "\n"
                    return
                # The summary line ends with the keys, written a batch at a time: the
                # server holds only the released ids, never all the keys at once.
                yield json.dumps(summary)[:-1] + ', "keys": {'
                separator = ""
                for batch in chunked(data_keys_release(sorted(evaluator.released)), 1000):
                    yield separator + ", ".join(f'"{key_id}": "{key}"' for key_id, key in batch)
                    separator = ", "
                yield "}}\n"
            except Exception:
                logger.exception("use decision stream failed")
                yield (
                    json.dumps({"error": {"code": "unavailable", "detail": DecisionUnavailable.default_detail}}) + "\n"
                )
            finally:
                if not audited:
                    # The client went away or the stream failed: record what was answered.
                    try:
                        self._audit(token, evaluator, batch_id=batch_id, media_type=NDJSON, complete=False)
                    except Exception:
                        logger.exception("could not audit an incomplete use stream")

        response = StreamingHttpResponse(lines(), content_type=NDJSON)
        # Proxies must pass results on as they come, not collect the whole answer.
        response["X-Accel-Buffering"] = "no"
        response["Cache-Control"] = "no-store"
        return response


class TokenViewMixin(generics.GenericAPIView[ApiToken]):
    serializer_class = TokenSerializer

    def get_queryset(self) -> QuerySet[ApiToken]:
        return tokens_visible_to(self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}


@extend_schema(tags=["tokens"])
class TokenListView(TokenViewMixin, generics.ListAPIView):
    """GET /api/v1/tokens/: staff with view permission see every token; others their own user tokens."""

    @extend_schema(
        operation_id="tokens_list",
        parameters=[
            OpenApiParameter("kind", str, enum=["device", "pipeline", "user", "hr"]),
            OpenApiParameter("state", str, enum=["active", "expired", "revoked"]),
        ],
        responses={(200, "application/json"): TokenSerializer(many=True), **problems(401, 403, 422, 429)},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[ApiToken]:
        tokens = super().get_queryset()
        params = self.request.query_params
        if params.get("kind"):
            tokens = tokens.filter(kind=params["kind"])
        now = timezone.now()
        state = params.get("state")
        if state == "revoked":
            tokens = tokens.filter(revoked_at__isnull=False)
        elif state == "expired":
            tokens = tokens.filter(revoked_at__isnull=True, expires_at__lte=now)
        elif state == "active":
            tokens = tokens.filter(revoked_at__isnull=True, expires_at__gt=now)
        return tokens


@extend_schema(tags=["tokens"])
class TokenDetailView(TokenViewMixin, generics.RetrieveDestroyAPIView):
    """GET /api/v1/tokens/<id>; DELETE revokes it (the row stays, as evidence)."""

    @extend_schema(
        operation_id="tokens_retrieve",
        responses={(200, "application/json"): TokenSerializer, **problems(401, 404, 429)},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="tokens_revoke",
        description="Revoke the token at once: its next request gets 401. Idempotent; honours `Idempotency-Key` "
        "(a retry replays the first answer; the same key for another token or body is 422).",
        parameters=[IDEMPOTENCY_KEY],
        responses={(204, "application/json"): None, **problems(400, 401, 403, 404, 413, 422, 429)},
    )
    @idempotent
    def delete(self, request: Request, *args, **kwargs) -> Response:
        request.data  # noqa: B018 - no body is expected, but a malformed or oversized one is refused
        return super().delete(request, *args, **kwargs)

    def perform_destroy(self, instance: ApiToken) -> None:
        user = self.request.user
        if not token_may_revoke(user, instance):
            raise Forbidden("You may revoke only your own tokens.", code="not_your_token")
        token_revoke(token=instance, actor=Actor.for_user(user))
