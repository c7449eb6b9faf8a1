"""The capture gate against a live server: grants, revocations, contexts, and failing closed."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from consentry_client import CaptureGate, Context, InvalidToken, Transport
from django.utils import timezone

from conftest import SYSTEM
from consent.services import consent_withdraw, pause_start
from decisions.pseudonyms import pseudonym
from people.tokens import token_revoke
from tests.live.conftest import BEHIND_TLS_PROXY, DEVICE, PURPOSE, eventually, transport

pytestmark = pytest.mark.slow

CATEGORIES = ["keystrokes", "mouse_movement", "screenshots"]
EDITOR = Context(app="com.microsoft.VSCode")
PASSWORDS = Context(app="com.1password.1password")


def _gate(url: str, token: str, **options) -> CaptureGate:
    options.setdefault("device_id", DEVICE)
    options.setdefault("transport", transport(url, token))
    gate = CaptureGate(url, token, purpose=PURPOSE, categories=CATEGORIES, **options)
    gate.set_context(EDITOR)
    return gate.start()


@pytest.fixture
def gate(world):
    gate = _gate(world.url, world.device_token)
    eventually(lambda: gate.may_capture("keystrokes", EDITOR), explain=gate.status)
    yield gate
    gate.stop()


def test_a_gate_allows_exactly_the_consented_categories_under_a_verified_grant(world, gate):
    grant = gate.allows("keystrokes", EDITOR)

    assert grant is not None and grant.id.startswith("g_")
    assert grant.subject == pseudonym(purpose=PURPOSE, hr_id=world.employee.hr_id)
    assert grant.categories == {"keystrokes", "mouse_movement"}
    assert gate.may_capture("mouse_movement", EDITOR)
    assert not gate.may_capture("screenshots", EDITOR)
    assert not gate.may_capture("app_usage", EDITOR)
    status = gate.status()
    assert status.state == "capturing" and status.feed_connected
    assert status.denied == {"screenshots": ["no_consent"]}


def test_a_withdrawal_stops_its_category_within_a_second_and_leaves_the_others(world, gate):
    consent_withdraw(employee=world.employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)

    eventually(lambda: not gate.may_capture("keystrokes", EDITOR), within=1.0, every=0.005)
    # The event's reason, or the next decision's (no_consent when it started before the withdrawal's moment).
    assert gate.status().denied["keystrokes"][0] in ("consent_withdrawn", "no_consent")
    # The gate asks again at once; mouse movement stays allowed under the new grant.
    eventually(lambda: gate.may_capture("mouse_movement", EDITOR))


def test_a_pause_stops_everything_and_says_paused(world, gate):
    pause_start(employee=world.employee, until=timezone.now() + timedelta(minutes=5), actor=SYSTEM)

    eventually(lambda: not gate.may_capture("mouse_movement", EDITOR), within=1.0, every=0.005)
    eventually(lambda: gate.status().state == "paused")


def test_an_excluded_app_is_denied_at_once_and_decided_again_on_the_way_back(gate):
    # The new context is a no before any answer arrives.
    assert gate.allows("keystrokes", PASSWORDS) is None
    eventually(lambda: gate.status().context == PASSWORDS)
    assert not gate.may_capture("keystrokes", PASSWORDS)
    assert gate.status().denied["keystrokes"] == ["excluded_context"]

    assert gate.allows("keystrokes", EDITOR) is None
    eventually(lambda: gate.may_capture("keystrokes", EDITOR))


def test_revoking_the_device_token_stops_everything(world, gate):
    from people.models import ApiToken

    token_revoke(token=ApiToken.objects.get(device_id=DEVICE), actor=SYSTEM)

    eventually(lambda: not gate.may_capture("mouse_movement", EDITOR), within=1.0, every=0.005)
    eventually(lambda: gate.status().detail.startswith("refused"))


def test_a_grant_for_another_device_is_refused(world):
    gate = _gate(world.url, world.device_token, device_id="someone-elses-laptop")
    try:
        eventually(lambda: gate.status().state == "error")
        assert "aud" in gate.status().detail
        assert not gate.may_capture("keystrokes", EDITOR)
    finally:
        gate.stop()


def test_a_clock_further_off_than_allowed_refuses_every_grant(world):
    gate = _gate(world.url, world.device_token, max_clock_skew=-1)
    try:
        eventually(lambda: gate.status().state == "error")
        assert "clock" in gate.status().detail
        assert not gate.may_capture("keystrokes", EDITOR)
    finally:
        gate.stop()


class TamperingTransport(Transport):
    """A real transport whose decisions have one signature byte changed on the way (a man in the middle)."""

    def post_json(self, path, body, **kwargs):
        decision = super().post_json(path, body, **kwargs)
        if decision.get("grant"):
            token = decision["grant"]["token"]
            decision["grant"]["token"] = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
        return decision


def test_a_grant_whose_signature_does_not_verify_is_refused(world):
    gate = _gate(
        world.url,
        world.device_token,
        transport=TamperingTransport(world.url, world.device_token, headers=BEHIND_TLS_PROXY),
    )
    try:
        eventually(lambda: gate.status().state == "error")
        assert "signature" in gate.status().detail
        assert not gate.may_capture("keystrokes", EDITOR)
    finally:
        gate.stop()
    with pytest.raises(InvalidToken):
        gate.keys.verify("not.a.token")


def test_with_the_server_unreachable_capture_stops_no_later_than_the_grants_expiry(world, network, settings):
    settings.CONSENTRY_GRANT_LIFETIME_SECONDS = 3
    gate = _gate(network.url, world.device_token)
    try:
        eventually(lambda: gate.may_capture("keystrokes", EDITOR))
        expires = gate.allows("keystrokes", EDITOR).expires_at

        network.cut()

        eventually(lambda: not gate.may_capture("keystrokes", EDITOR), within=4.0, every=0.01)
        assert timezone.now() <= expires + timedelta(milliseconds=100)
        assert gate.status().state == "offline"
        network.restore()
        eventually(lambda: gate.may_capture("keystrokes", EDITOR), within=15.0)
    finally:
        gate.stop()


def test_a_renewed_grant_replaces_the_old_one_before_it_expires(world, settings):
    settings.CONSENTRY_GRANT_LIFETIME_SECONDS = 3
    gate = _gate(world.url, world.device_token)
    try:
        eventually(lambda: gate.may_capture("keystrokes", EDITOR))
        first = gate.allows("keystrokes", EDITOR).id
        allowed_throughout = True
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            allowed_throughout &= gate.may_capture("keystrokes", EDITOR)
            time.sleep(0.02)
        assert allowed_throughout
        assert gate.allows("keystrokes", EDITOR).id != first
    finally:
        gate.stop()


def test_stop_returns_only_once_the_gate_has_stopped_talking_to_the_server(world):
    gate = _gate(world.url, world.device_token)
    eventually(lambda: gate.may_capture("keystrokes", EDITOR), explain=gate.status)
    gate.stop()
    assert not gate.may_capture("keystrokes", EDITOR)
    assert gate.status().state == "stopped"
    # No decision or long poll is left in flight: a caller may tear down what the gate talked to.
    assert not any(thread.is_alive() for thread in gate._threads)


class CutFeedTransport(Transport):
    """A real transport whose first revocation-feed answer arrives cut short, as over a connection that broke."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cut_answers = 0

    def request(self, method, path, **kwargs):
        response = super().request(method, path, **kwargs)
        if path.endswith("/revocations") and not self.cut_answers:
            self.cut_answers += 1
            return type(response)(response.status, response.headers, response.body[: len(response.body) // 2])
        return response


def test_a_feed_answer_cut_short_is_retried_and_the_feed_recovers(world):
    cutting = CutFeedTransport(world.url, world.device_token, headers=BEHIND_TLS_PROXY)
    gate = _gate(world.url, world.device_token, transport=cutting)
    try:
        eventually(lambda: gate.may_capture("keystrokes", EDITOR) and gate.status().feed_connected)
        assert cutting.cut_answers == 1
        # The feed still follows: a withdrawal stops capture.
        consent_withdraw(employee=world.employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)
        eventually(lambda: not gate.may_capture("keystrokes", EDITOR), within=2.0, every=0.005)
    finally:
        gate.stop()
