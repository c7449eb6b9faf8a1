"""Concurrency on PostgreSQL with real connections (SQLite ignores select_for_update)."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import close_old_connections, connection

from audit.actors import Actor
from audit.chain import entry_hash
from audit.models import AuditEntry
from conftest import build_small_policy, make_employee
from consent.models import ConsentEvent
from consent.services import consent_grant, consent_withdraw
from consent.tests.test_services import assert_projection_matches_replay

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 20
ROUNDS = 5


def test_twenty_threads_granting_and_withdrawing_lose_no_event():
    policy = build_small_policy()
    employee = make_employee(country="US", subdivision="US-CA")
    categories = ["keystrokes", "screenshots", "mouse_movement", "keystroke_timing"]
    errors: list[BaseException] = []
    written: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        category = categories[index % len(categories)]
        actor = Actor(kind="user", ref=f"thread{index}")
        try:
            start.wait()
            for _ in range(ROUNDS):
                events = consent_grant(
                    employee=employee,
                    notice=policy["notice"],
                    choices=[("ai_agent_training", category)],
                    actor=actor,
                )
                events += consent_withdraw(
                    employee=employee, purpose="ai_agent_training", categories=[category], actor=actor
                )
                with lock:
                    written.extend(event.pk for event in events)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    close_old_connections()

    assert not errors, errors
    stored = set(ConsentEvent.objects.filter(employee=employee).values_list("pk", flat=True))
    assert stored == set(written), "every event a caller was told about is stored, and nothing else"
    # Each round grants then withdraws: at least one real toggle per category per round.
    assert len(written) >= 2 * ROUNDS * len(categories)
    assert_projection_matches_replay(employee)
    # One audit entry per consent event, on one unforked chain.
    entries = list(AuditEntry.objects.order_by("seq"))
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert all(e.hash == entry_hash(e.content()) for e in entries)
    assert sum(1 for e in entries if e.object_type == "consent_event") == len(written)
