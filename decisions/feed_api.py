"""The revocation feed over HTTP: a long poll and Server-Sent Events (API.md, Revocations)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from decisions.api import DecisionUnavailable, problems
from decisions.feedwait import waiter_slots
from decisions.revocations import (
    BadCursor,
    Scope,
    event_json,
    feed_head,
    format_cursor,
    parse_cursor,
    scope_for,
    wait_for_events,
)
from people.authentication import token_of
from people.models import ApiToken, TokenKind

MAX_WAIT = 30
MAX_LIMIT = 1000
# An event stream says something at least this often, so proxies and clients know it is alive.
HEARTBEAT_SECONDS = 15
EVENT_STREAM = "text/event-stream"


class IsDeviceOrPipelineToken(permissions.BasePermission):
    """Devices read their own employee's events; pipelines their purposes' (scoped in the query)."""

    message = "Only device and pipeline tokens may read the revocation feed."

    def has_permission(self, request: Request, view) -> bool:
        token = token_of(request)
        return token is not None and token.kind in (TokenKind.DEVICE, TokenKind.PIPELINE)

    def has_object_permission(self, request: Request, view, obj) -> bool:
        return self.has_permission(request, view)


class FeedBusy(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Too many event streams are open on this server; reconnect shortly."
    default_code = "feed_busy"
    # DRF turns this into Retry-After.
    wait = 1


class FeedQuerySerializer(serializers.Serializer):
    after = serializers.CharField(
        required=False, max_length=18, help_text="A cursor from this feed or a capture decision; omit to start now."
    )
    wait = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=MAX_WAIT, help_text="Seconds to wait for an event."
    )
    limit = serializers.IntegerField(required=False, default=500, min_value=1, max_value=MAX_LIMIT)


class StreamQuerySerializer(serializers.Serializer):
    after = serializers.CharField(
        required=False, max_length=18, help_text="Where to start when there is no Last-Event-ID header."
    )


class RevocationEventSerializer(serializers.Serializer):
    cursor = serializers.CharField()
    type = serializers.ChoiceField(
        choices=[
            "consent_withdrawn",
            "consent_expired",
            "paused",
            "employee_inactive",
            "jurisdiction_blocked",
            "policy_changed",
            "grant_revoked",
            "erasure",
            "keys_destroyed",
        ]
    )
    subject = serializers.CharField(help_text="The employee's pseudonym for this purpose.")
    categories = serializers.ListField(child=serializers.CharField(), help_text="The categories that stop.")
    purpose = serializers.CharField()
    at = serializers.DateTimeField(help_text="When the change happened.")
    grants = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="grant_revoked only: the grants that stop (other devices of the employee keep theirs).",
    )
    keys = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="keys_destroyed only: the data key ids destroyed; data encrypted with them is unreadable for good.",
    )


class RevocationFeedSerializer(serializers.Serializer):
    events = RevocationEventSerializer(many=True)
    cursor = serializers.CharField(help_text="Resume from here with ?after=.")


FEED_EXAMPLE = {
    "events": [
        {
            "cursor": "c_2a",
            "type": "consent_withdrawn",
            "subject": "p_4c1e…",
            "categories": ["screenshots"],
            "purpose": "ai_agent_training",
            "at": "2026-11-21T09:30:02Z",
        }
    ],
    "cursor": "c_2a",
}


def _start(token: ApiToken, cursor: str | None, field: str) -> int:
    """Where reading starts: the given cursor (checked), or the feed's head now."""
    try:
        if cursor is None:
            return feed_head()
        position = parse_cursor(cursor)
        if position > feed_head():
            raise BadCursor("The cursor is ahead of this feed; take a new one from a capture decision.")
    except BadCursor as exc:
        raise exceptions.ValidationError({field: str(exc)}) from exc
    except DatabaseError as exc:
        raise DecisionUnavailable() from exc
    return position


class RevocationFeedView(APIView):
    """GET /api/v1/revocations: the long poll."""

    permission_classes = [IsDeviceOrPipelineToken]
    throttle_scope = "decisions"

    @extend_schema(
        operation_id="revocations_list",
        summary="Revocation feed (long poll)",
        description=(
            "Device tokens see their own employee's events, pipeline tokens the events of their purposes. "
            "Answers as soon as an event after `after` exists, or after `wait` seconds with none. Resume from "
            "the returned `cursor` (it also moves past events the caller may not see). Without `after`, reading "
            "starts now. An unknown cursor, or one ahead of the feed, is a 422: take a fresh one from a capture "
            "decision. When too many requests already wait on this server, the answer comes at once with "
            "`Retry-After`. Any error means: stop capturing what the grant allowed until a new decision."
        ),
        parameters=[FeedQuerySerializer],
        responses={(200, "application/json"): RevocationFeedSerializer, **problems(401, 403, 422, 429, 503)},
        examples=[OpenApiExample("One withdrawal", value=FEED_EXAMPLE, response_only=True)],
        tags=["revocations"],
    )
    def get(self, request: Request) -> Response:
        query = FeedQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        token = token_of(request)
        assert token is not None  # IsDeviceOrPipelineToken
        after = _start(token, query.validated_data.get("after"), "after")
        wait = query.validated_data["wait"]
        waiting = wait > 0 and waiter_slots.acquire()
        try:
            events, position = wait_for_events(
                scope=scope_for(token), after=after, limit=query.validated_data["limit"], wait=wait if waiting else 0
            )
        except BadCursor as exc:
            # The feed shrank under the cursor (a restored database): start again from a decision.
            raise exceptions.ValidationError({"after": str(exc)}) from exc
        except DatabaseError as exc:
            raise DecisionUnavailable() from exc
        finally:
            if waiting:
                waiter_slots.release()
        response = Response({"events": [event_json(event) for event in events], "cursor": format_cursor(position)})
        response["Cache-Control"] = "no-store"
        if wait > 0 and not waiting:
            # Every waiting slot is taken: answered without waiting; come back in a second.
            response["Retry-After"] = "1"
        return response


def _sse(fields: dict[str, str]) -> bytes:
    return ("".join(f"{name}: {value}\n" for name, value in fields.items()) + "\n").encode()


def _still_valid(token: ApiToken) -> bool:
    return ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True, expires_at__gt=timezone.now()).exists()


def _stream(token: ApiToken, scope: Scope, after: int, duration: float) -> Iterator[bytes]:
    """SSE frames until ``duration`` passes, the client leaves, or the token stops being valid."""
    try:
        # Reconnect a second after a dropped stream; the first frame tells the client where it stands.
        yield b"retry: 1000\n" + _sse({"id": format_cursor(after)})
        deadline = time.monotonic() + duration
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                events, position = wait_for_events(
                    scope=scope, after=after, limit=MAX_LIMIT, wait=min(HEARTBEAT_SECONDS, remaining)
                )
                valid = _still_valid(token)
            except BadCursor:
                yield _sse({"event": "error", "data": json.dumps({"code": "cursor_unknown"})})
                return
            except DatabaseError:
                yield _sse({"event": "error", "data": json.dumps({"code": "unavailable"})})
                return
            for event in events:
                body = event_json(event)
                yield _sse({"id": body["cursor"], "data": json.dumps(body, separators=(",", ":"))})
            if not events:
                # An id alone moves the client's Last-Event-ID past others' events without an event.
                yield _sse({"id": format_cursor(position)}) if position != after else b": keep-alive\n\n"
            after = position
            if not valid:
                yield _sse({"event": "end", "data": json.dumps({"code": "token_invalid"})})
                return
    finally:
        waiter_slots.release()
        if not connection.in_atomic_block:
            connection.close()


class RevocationStreamView(APIView):
    """GET /api/v1/revocations/stream: the same feed as Server-Sent Events."""

    permission_classes = [IsDeviceOrPipelineToken]
    throttle_scope = "decisions"

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # Clients send Accept: text/event-stream; errors before the stream are problem+json all the same.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="revocations_stream",
        summary="Revocation feed (Server-Sent Events)",
        description=(
            "The long poll's events as `text/event-stream`: each event's `id` is its cursor and its `data` the "
            "event as JSON. Resumable: reconnect with `Last-Event-ID` (or `?after=`). A frame with only an `id` "
            "moves the cursor past events the caller may not see; comments are heartbeats "
            f"(at least every {HEARTBEAT_SECONDS} s). The server ends a stream after a few minutes, and at once with "
            "an `end` event when the token is revoked or expires; reconnect. 503 with `Retry-After` when the "
            "server has no room for another stream."
        ),
        parameters=[
            StreamQuerySerializer,
            OpenApiParameter("Last-Event-ID", str, location=OpenApiParameter.HEADER, required=False),
        ],
        responses={
            (200, EVENT_STREAM): OpenApiResponse(OpenApiTypes.STR, description="Server-Sent Events."),
            **problems(401, 403, 422, 429, 503),
        },
        tags=["revocations"],
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        query = StreamQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        token = token_of(request)
        assert token is not None  # IsDeviceOrPipelineToken
        header = request.headers.get("Last-Event-ID")
        after = _start(token, header or query.validated_data.get("after"), "Last-Event-ID" if header else "after")
        if not waiter_slots.acquire():
            raise FeedBusy()
        response = StreamingHttpResponse(
            _stream(token, scope_for(token), after, settings.CONSENTRY_FEED_STREAM_SECONDS), content_type=EVENT_STREAM
        )
        response["Cache-Control"] = "no-store"
        # Proxies must pass frames on as they come.
        response["X-Accel-Buffering"] = "no"
        return response
