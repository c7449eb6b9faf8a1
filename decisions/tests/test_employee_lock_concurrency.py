"""Every flow that locks one employee, at once, on PostgreSQL with real connections: no deadlock, one story.

HR updates (the SCIM write path), consent withdrawals and grants, capture
decisions, device enrolment and data-key destruction all take the employee's
row lock from people.locks; most then append to the ledger, and each inserts
rows whose foreign key to the employee is checked at commit. Run together,
round after round, none may fail, and the end state must read as if they had
run one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_employee
from consent.models import ConsentEvent, ConsentEventKind, ConsentState
from consent.services import consent_withdraw
from decisions import engine
from decisions.datakeys import destroy_employee_keys
from decisions.models import CaptureGrant, DataKey, DestroyedKey, DestructionReason
from decisions.services import capture_decide
from decisions.tests.conftest import PURPOSE, build_decision_policy, grant_consent
from people.locks import employee_lock
from people.models import ApiToken, Employee
from people.services import HRRecord, employee_apply_hr_record
from people.tokens import token_issue

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROUNDS = 8


def test_every_flow_that_locks_one_employee_runs_at_once_without_a_deadlock():
    build_decision_policy()
    employee = make_employee(country="US", subdivision="US-WA", hr_id="E-LOCK")
    grant_consent(employee, "keystrokes")
    device, _ = token_issue(kind="device", name="laptop", employee=employee, device_id="laptop", actor=SYSTEM)

    def hr_update(round_: int) -> None:
        # What a SCIM PUT does: lock, then apply the HR record (details, login) in one transaction.
        with transaction.atomic():
            locked = employee_lock(employee_id=employee.pk)
            employee_apply_hr_record(
                hr_record=HRRecord(
                    hr_id=locked.hr_id,
                    country="US",
                    subdivision="US-WA",
                    display_name=locked.display_name,
                    department=f"Round {round_}",
                ),
                employee=locked,
                actor=SYSTEM,
            )

    def consent_change(round_: int) -> None:
        consent_withdraw(employee=employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)
        grant_consent(employee, "keystrokes")

    def capture(round_: int) -> None:
        token = ApiToken.objects.select_related("employee").get(pk=device.pk)
        capture_decide(token=token, request=engine.CaptureRequest(PURPOSE, ("keystrokes",)))

    def enrol(round_: int) -> None:
        token_issue(
            kind="device", name=f"tablet {round_}", employee=employee, device_id=f"tablet-{round_}", actor=SYSTEM
        )

    def forget_keys(round_: int) -> None:
        destroy_employee_keys(employee=employee, reason=DestructionReason.ERASURE, actor=SYSTEM)

    flows: list[Callable[[int], None]] = [hr_update, consent_change, capture, enrol, forget_keys]
    errors: list[tuple[str, BaseException]] = []
    start = threading.Barrier(len(flows))

    def run(flow: Callable[[int], None]) -> None:
        try:
            for round_ in range(ROUNDS):
                start.wait(timeout=60)
                flow(round_)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append((flow.__name__, exc))
            start.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(flow,)) for flow in flows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    employee = Employee.objects.get(pk=employee.pk)
    assert employee.department == f"Round {ROUNDS - 1}"
    assert employee.user is not None and employee.user.get_username() == "E-LOCK"
    # One gapless consent version per change, and the projection ends where the events do.
    events = list(ConsentEvent.objects.filter(employee=employee).order_by("version"))
    assert [event.version for event in events] == list(range(1, 2 * ROUNDS + 2))
    state = ConsentState.objects.get(employee=employee, purpose_id=PURPOSE, category_id="keystrokes")
    assert (state.state, state.version, state.last_event_id) == (
        ConsentEventKind.GRANTED,
        events[-1].version,
        events[-1].pk,
    )
    # Every grant was issued while the consent it names stood granted.
    kinds = {event.version: event.kind for event in events}
    for grant in CaptureGrant.objects.filter(employee=employee):
        assert kinds[grant.consent_version] == ConsentEventKind.GRANTED
    # A destroyed day never gets a key again.
    destroyed = set(DestroyedKey.objects.filter(employee=employee).values_list("category", "day"))
    assert not destroyed & set(DataKey.objects.filter(employee=employee).values_list("category", "day"))
    assert ApiToken.objects.filter(employee=employee).count() == ROUNDS + 1
    assert AuditEntry.objects.filter(event_type=EventType.TOKEN_ISSUED).count() == ROUNDS + 1
    assert AuditEntry.objects.filter(event_type=EventType.EMPLOYEE_UPDATED, subject="E-LOCK").count() >= ROUNDS
