"""GET /api/v1/revocations (long poll) and /api/v1/revocations/stream (Server-Sent Events)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import SYSTEM, make_employee, make_user
from consent.services import consent_withdraw, pause_start
from decisions.feedwait import waiter_slots
from decisions.pseudonyms import pseudonym
from decisions.revocations import feed_head, format_cursor
from decisions.tests.conftest import (
    PURPOSE,
    bearer,
    build_decision_policy,
    capture,
    device_client,
    grant_consent,
    pipeline_client,
    relay,
)
from governance import services as gov
from people.tokens import token_issue, token_revoke

FEED = "/api/v1/revocations"
STREAM = "/api/v1/revocations/stream"
OTHER_PURPOSE = "ux_research"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world(policy):
    gov.purpose_save(
        slug=OTHER_PURPOSE, name="UX research", description="Study", categories=["mouse_movement"], actor=SYSTEM
    )
    # A second notice version declares the second purpose too.
    items = [(PURPOSE, slug, f"We capture your {slug}.") for slug in ("keystrokes", "screenshots")]
    gov.notice_approve(
        notice=gov.notice_draft(
            title="Activity capture",
            summary="Training and research.",
            body="Full text.",
            retention_statement="Kept 30 days.",
            access_statement="Pipelines only.",
            no_evaluation_statement="Never used to evaluate you.",
            items=[*items, (OTHER_PURPOSE, "mouse_movement", "We record mouse movement for research.")],
            material=False,
            actor=SYSTEM,
        ),
        actor=SYSTEM,
        via="tests",
    )
    nina = make_employee(country="US", subdivision="US-WA")
    omar = make_employee(country="US", subdivision="US-WA")
    for employee in (nina, omar):
        grant_consent(employee, "keystrokes", "screenshots")
    grant_consent(nina, "mouse_movement", purpose=OTHER_PURPOSE)
    relay()
    return {"nina": nina, "omar": omar, "start": format_cursor(feed_head())}


def _withdraw(employee, *categories, purpose=PURPOSE):
    consent_withdraw(employee=employee, purpose=purpose, categories=categories, actor=SYSTEM)
    relay()


def _poll(client, **params):
    response = client.api.get(FEED, params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
class TestLongPoll:
    def test_a_device_reads_its_own_employees_withdrawal(self, world):
        nina = world["nina"]
        device = device_client(nina)
        _withdraw(nina, "screenshots")

        body = _poll(device, after=world["start"])

        (event,) = body["events"]
        assert event == {
            "cursor": event["cursor"],
            "type": "consent_withdrawn",
            "subject": pseudonym(purpose=PURPOSE, hr_id=nina.hr_id),
            "categories": ["screenshots"],
            "purpose": PURPOSE,
            "at": event["at"],
        }
        assert event["cursor"].startswith("c_") and body["cursor"] == event["cursor"]
        assert nina.hr_id not in json.dumps(body)

    def test_a_device_never_sees_another_employees_events(self, world):
        _withdraw(world["omar"], "screenshots")
        body = _poll(device_client(world["nina"]), after=world["start"])
        assert body["events"] == []
        # The cursor still moves past what the device may not see.
        assert body["cursor"] == format_cursor(feed_head()) != world["start"]

    def test_a_pipeline_sees_every_subject_of_its_purposes_and_no_other_purpose(self, world):
        _withdraw(world["omar"], "keystrokes")
        # A pause concerns every purpose: one event per purpose, each with its own pseudonym.
        pause_start(employee=world["nina"], until=timezone.now() + timedelta(minutes=5), actor=SYSTEM)
        relay()

        trainer = _poll(pipeline_client(PURPOSE), after=world["start"])
        research = _poll(pipeline_client(OTHER_PURPOSE, name="research"), after=world["start"])

        assert [(e["type"], e["purpose"], e["subject"]) for e in trainer["events"]] == [
            ("consent_withdrawn", PURPOSE, pseudonym(purpose=PURPOSE, hr_id=world["omar"].hr_id)),
            ("paused", PURPOSE, pseudonym(purpose=PURPOSE, hr_id=world["nina"].hr_id)),
        ]
        assert [(e["type"], e["subject"], e["categories"]) for e in research["events"]] == [
            ("paused", pseudonym(purpose=OTHER_PURPOSE, hr_id=world["nina"].hr_id), ["mouse_movement"])
        ]

    def test_reading_resumes_from_the_returned_cursor_without_repeats(self, world):
        device = device_client(world["nina"])
        _withdraw(world["nina"], "screenshots")
        first = _poll(device, after=world["start"])
        _withdraw(world["nina"], "keystrokes")

        second = _poll(device, after=first["cursor"])
        third = _poll(device, after=second["cursor"])

        assert [e["categories"] for e in second["events"]] == [["keystrokes"]]
        assert third == {"events": [], "cursor": second["cursor"]}

    def test_limit_pages_through_the_events(self, world):
        device = device_client(world["nina"])
        _withdraw(world["nina"], "screenshots")
        _withdraw(world["nina"], "keystrokes")
        page = _poll(device, after=world["start"], limit=1)
        rest = _poll(device, after=page["cursor"], limit=1)
        assert [e["categories"] for e in page["events"] + rest["events"]] == [["screenshots"], ["keystrokes"]]

    def test_without_a_cursor_reading_starts_now(self, world):
        _withdraw(world["nina"], "screenshots")
        body = _poll(device_client(world["nina"]))
        assert body == {"events": [], "cursor": format_cursor(feed_head())}

    def test_the_capture_decisions_cursor_is_where_later_revocations_start(self, world):
        nina = world["nina"]
        _withdraw(nina, "screenshots")
        device = device_client(nina)
        decision = capture(device, "keystrokes")
        assert decision["grant"] is not None

        pause_start(employee=nina, until=timezone.now() + timedelta(minutes=5), actor=SYSTEM)
        relay()
        body = _poll(device, after=decision["revocation_cursor"])

        assert [(e["type"], e["purpose"]) for e in body["events"]] == [("paused", PURPOSE), ("paused", OTHER_PURPOSE)]

    def test_a_wait_with_nothing_new_answers_empty_after_the_wait(self, world):
        started = time.monotonic()
        body = _poll(device_client(world["nina"]), after=world["start"], wait=1)
        assert body["events"] == [] and time.monotonic() - started >= 1

    def test_when_every_waiting_slot_is_taken_the_answer_comes_at_once_with_retry_after(self, world, settings):
        settings.CONSENTRY_FEED_MAX_WAITERS = 1
        assert waiter_slots.acquire()
        try:
            started = time.monotonic()
            response = device_client(world["nina"]).api.get(FEED, {"after": world["start"], "wait": 20})
        finally:
            waiter_slots.release()
        assert response.status_code == 200 and response["Retry-After"] == "1"
        assert time.monotonic() - started < 10

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"after": "nonsense"}, "after"),
            ({"after": "c_"}, "after"),
            ({"after": "c_zz"}, "after"),
            ({"after": "c_0001"}, "after"),
            ({"after": "c_-1"}, "after"),
            ({"after": "c_" + "f" * 30}, "after"),
            ({"wait": "31"}, "wait"),
            ({"wait": "-1"}, "wait"),
            ({"wait": "soon"}, "wait"),
            ({"limit": "0"}, "limit"),
            ({"limit": "5000"}, "limit"),
        ],
    )
    def test_bad_parameters_are_a_422_problem(self, world, params, field):
        response = device_client(world["nina"]).api.get(FEED, params)
        assert response.status_code == 422
        assert response["Content-Type"] == "application/problem+json"
        assert field in response.json()["errors"]

    def test_a_cursor_ahead_of_the_feed_is_a_422(self, world):
        response = device_client(world["nina"]).api.get(FEED, {"after": format_cursor(feed_head() + 10)})
        assert response.status_code == 422 and "after" in response.json()["errors"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", [FEED, STREAM])
def test_only_device_and_pipeline_tokens_read_the_feed(world, path):
    user = make_user()
    _, user_raw = token_issue(kind="user", name="me", user=user, actor=SYSTEM)
    _, hr_raw = token_issue(kind="hr", name="workday", actor=SYSTEM)
    revoked = device_client(world["nina"], "old-laptop")
    token_revoke(token=revoked.token, actor=SYSTEM)
    session = APIClient()
    session.force_login(user)

    answers = {
        "anonymous": APIClient().get(path).status_code,
        "session": session.get(path).status_code,
        "user token": bearer(user_raw).get(path).status_code,
        "hr token": bearer(hr_raw).get(path).status_code,
        "revoked device": revoked.api.get(path).status_code,
        "device": device_client(world["nina"]).api.get(FEED).status_code,
        "pipeline": pipeline_client(PURPOSE).api.get(FEED).status_code,
    }

    assert answers == {
        "anonymous": 401,
        "session": 403,
        "user token": 403,
        "hr token": 403,
        "revoked device": 401,
        "device": 200,
        "pipeline": 200,
    }


def _frames(response) -> list[dict[str, str]]:
    """Every SSE frame of a (short) stream, as field dicts; comments skipped."""
    text = b"".join(response.streaming_content).decode()
    frames = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if fields:
            frames.append(fields)
    return frames


@pytest.mark.django_db
class TestEventStream:
    @pytest.fixture(autouse=True)
    def _short_streams(self, settings):
        # Streams end by themselves after a second, so a test reads one whole.
        settings.CONSENTRY_FEED_STREAM_SECONDS = 1

    def test_the_stream_sends_the_events_after_last_event_id(self, world):
        _withdraw(world["nina"], "screenshots")
        _withdraw(world["nina"], "keystrokes")
        device = device_client(world["nina"])

        response = device.api.get(STREAM, HTTP_LAST_EVENT_ID=world["start"], HTTP_ACCEPT="text/event-stream")

        assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
        hello, first, second, *_heartbeats = _frames(response)
        assert hello["retry"] == "1000" and hello["id"] == world["start"]
        assert json.loads(first["data"])["categories"] == ["screenshots"]
        assert second["id"] == json.loads(second["data"])["cursor"]
        assert json.loads(second["data"])["categories"] == ["keystrokes"]

    def test_resuming_with_last_event_id_skips_what_was_seen(self, world):
        _withdraw(world["nina"], "screenshots")
        device = device_client(world["nina"])
        seen = _frames(device.api.get(STREAM, {"after": world["start"]}))[1]["id"]
        _withdraw(world["nina"], "keystrokes")

        frames = _frames(device.api.get(STREAM, HTTP_LAST_EVENT_ID=seen))

        assert json.loads(frames[1]["data"])["categories"] == ["keystrokes"]

    def test_a_bad_last_event_id_is_a_422_problem(self, world):
        response = device_client(world["nina"]).api.get(STREAM, HTTP_LAST_EVENT_ID="c_nope")
        assert response.status_code == 422 and "Last-Event-ID" in response.json()["errors"]

    def test_the_stream_ends_when_its_token_is_revoked(self, world, settings):
        settings.CONSENTRY_FEED_STREAM_SECONDS = 5
        device = device_client(world["nina"])
        response = device.api.get(STREAM)
        token_revoke(token=device.token, actor=SYSTEM)
        relay()
        frames = _frames(response)
        assert frames[-1]["event"] == "end" and json.loads(frames[-1]["data"]) == {"code": "token_invalid"}

    def test_with_no_room_for_another_stream_the_answer_is_503_with_retry_after(self, world, settings):
        settings.CONSENTRY_FEED_MAX_WAITERS = 1
        assert waiter_slots.acquire()
        try:
            response = device_client(world["nina"]).api.get(STREAM)
        finally:
            waiter_slots.release()
        assert response.status_code == 503 and response["Retry-After"] == "1"
        assert response.json()["code"] == "feed_busy"


def _get(url: str, raw: str, timeout: float = 40) -> dict:
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        url, headers={"Authorization": f"Bearer {raw}", "X-Forwarded-Proto": "https"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_waiting_long_poll_returns_as_soon_as_a_withdrawal_commits(live_server, settings):
    # Polling is slowed right down: only the relay's wake-up (NOTIFY on
    # PostgreSQL, the in-process signal on SQLite) can answer in time.
    settings.CONSENTRY_FEED_POLL_MS = 10000
    build_decision_policy()
    employee = make_employee(country="US", subdivision="US-WA")
    grant_consent(employee, "keystrokes")
    relay()
    _, raw = token_issue(kind="device", name="laptop", employee=employee, device_id="laptop", actor=SYSTEM)
    start = format_cursor(feed_head())
    answer: dict = {}

    def poll() -> None:
        answer["body"] = _get(f"{live_server.url}{FEED}?after={start}&wait=25", raw)
        answer["at"] = time.monotonic()

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(1.0)  # the poll is waiting
    assert "body" not in answer
    consent_withdraw(employee=employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)
    committed = time.monotonic()
    waiter.join(timeout=30)

    assert [e["type"] for e in answer["body"]["events"]] == ["consent_withdrawn"]
    # Well inside the 10 s poll interval: something woke the waiter.
    assert answer["at"] - committed < 5
