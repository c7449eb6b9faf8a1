"""Rights requests under real concurrent connections (PostgreSQL): one pending request per kind."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from audit.actors import Actor
from audit.models import AuditEntry, EventType
from conftest import make_employee, make_user
from decisions import rights
from decisions.models import RightsKind, RightsRequest
from decisions.tests.conftest import build_decision_policy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CLIENTS = 4


def test_simultaneous_erasure_requests_record_one_request_and_all_get_it(monkeypatch):
    monkeypatch.setattr(rights, "_enqueue", lambda kind, request_id: None)
    build_decision_policy()
    employee = make_employee(country="US", subdivision="US-WA", user=make_user("wanda"))
    actor = Actor.for_user(employee.user)
    start = threading.Barrier(CLIENTS)
    answers: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            start.wait()
            found, created = rights.rights_request_erasure(employee=employee, user=employee.user, actor=actor)
            answers.append((str(found.id), created))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len({request_id for request_id, _ in answers}) == 1
    assert sorted(created for _, created in answers) == [False] * (CLIENTS - 1) + [True]
    assert RightsRequest.objects.filter(employee=employee, kind=RightsKind.ERASURE).count() == 1
    assert AuditEntry.objects.filter(event_type=EventType.RIGHTS_ERASURE_REQUESTED).count() == 1
