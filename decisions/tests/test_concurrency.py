"""Decisions against real concurrent connections on PostgreSQL (a live server answering in its own threads)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.utils import timezone

from conftest import SYSTEM, make_employee
from consent.services import consent_withdraw, pause_start
from decisions.tests.conftest import PURPOSE, build_decision_policy, grant_consent
from people.services import employee_transfer
from people.tokens import token_issue

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CLIENTS = 4


def _post(url: str, raw: str, body: dict) -> dict:
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        url,
        data=json.dumps(body).encode(),
        # The live server runs production middleware: say the proxy terminated TLS.
        headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json", "X-Forwarded-Proto": "https"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def _hammer(url: str, raw: str, change) -> tuple[list[tuple[float, float, bool]], float]:
    """Capture decisions from several clients while ``change`` commits.

    Returns (start, end, allowed) of each decision relative to the moment
    ``change`` returned (after its commit), and when ``change`` began on that
    same scale (negative): a decision that ends between the two may rightly
    see either state.
    """
    seen: list[tuple[float, float, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        try:
            while not stop.is_set():
                start = time.monotonic()
                decision = _post(url, raw, {"purpose": PURPOSE, "categories": ["keystrokes"]})
                end = time.monotonic()
                with lock:
                    seen.append((start, end, decision["categories"]["keystrokes"]["allowed"]))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + 30
        while not condition() and not errors:
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        # However slow the machine, let some decisions finish before the change
        # and enough start after its commit.
        wait_for(lambda: len(seen) >= CLIENTS, "decisions before the change")
        began = time.monotonic()
        change()
        committed = time.monotonic()
        wait_for(lambda: sum(1 for start, _, _ in list(seen) if start > committed) >= 2 * CLIENTS, "later ones")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        close_old_connections()
    assert not errors, errors
    return [(start - committed, end - committed, allowed) for start, end, allowed in seen], began - committed


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    # Several clients hammer one token: the decision rate limit is not under test here.
    settings.CONSENTRY_RATE_LIMITS = {**settings.CONSENTRY_RATE_LIMITS, "decisions": None}


def test_after_a_withdrawal_commits_every_later_capture_decision_denies(live_server):
    build_decision_policy()
    employee = make_employee(country="US", subdivision="US-WA")
    grant_consent(employee, "keystrokes")
    _, raw = token_issue(kind="device", name="laptop", employee=employee, device_id="laptop-7", actor=SYSTEM)

    seen, began = _hammer(
        f"{live_server.url}/api/v1/decisions/capture",
        raw,
        lambda: consent_withdraw(employee=employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM),
    )

    before = [allowed for start, end, allowed in seen if end < began]
    after = [allowed for start, end, allowed in seen if start > 0]
    # Timings in the messages: a failure must say which decision, not just that one failed.
    assert before and all(before), ("a decision finished before the withdrawal began was denied", began, seen)
    assert after and not any(after), ("a decision that started after the commit was allowed", began, seen)


def test_after_a_pause_commits_every_later_capture_decision_denies(live_server):
    build_decision_policy()
    employee = make_employee(country="US", subdivision="US-WA")
    grant_consent(employee, "keystrokes")
    _, raw = token_issue(kind="device", name="laptop", employee=employee, device_id="laptop-7", actor=SYSTEM)

    seen, _began = _hammer(
        f"{live_server.url}/api/v1/decisions/capture",
        raw,
        lambda: pause_start(employee=employee, until=timezone.now() + timedelta(hours=1), actor=SYSTEM),
    )

    # A pause is compared by time: decisions waiting for the lock while it commits must see it too.
    after = [allowed for start, _end, allowed in seen if start > 0]
    assert after and not any(after), seen


def test_after_a_transfer_commits_every_later_capture_decision_denies(live_server):
    build_decision_policy()
    employee = make_employee(country="US", subdivision="US-CA")
    grant_consent(employee, "keystrokes")
    _, raw = token_issue(kind="device", name="laptop", employee=employee, device_id="laptop-7", actor=SYSTEM)

    seen, _began = _hammer(
        f"{live_server.url}/api/v1/decisions/capture",
        raw,
        lambda: employee_transfer(employee=employee, country="FR", actor=SYSTEM),
    )

    after = [allowed for start, _end, allowed in seen if start > 0]
    assert after and not any(after)
