"""Row locks that precede a ledger append never deadlock with a grant's deferred foreign-key check (PostgreSQL).

A grant's foreign keys are checked at commit, after its transaction took the
ledger's head lock. The check takes a KEY SHARE lock on the rows it names: the
device token and the employee. A service that locks one of those rows and then
appends to the ledger would deadlock with it if its lock were FOR UPDATE;
FOR NO KEY UPDATE (what an UPDATE itself takes) does not conflict with KEY SHARE.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import EventType
from audit.services import record
from conftest import SYSTEM, make_employee
from consent.services import consent_withdraw
from consentry.tests.locks import wait_for_a_lock_waiter
from decisions.models import CaptureGrant
from decisions.tests.conftest import PURPOSE, build_decision_policy, grant_consent
from people.models import ApiToken
from people.tokens import token_issue, token_revoke

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _grant_then_commit_while(change) -> None:
    """Hold the head lock in a grant-like transaction, let ``change`` lock its row and queue for the ledger, commit."""
    employee = ApiToken.objects.get(kind="device").employee
    assert employee is not None
    token = ApiToken.objects.get(kind="device")
    failures: list[BaseException] = []
    head_held = threading.Event()

    def other() -> None:
        try:
            head_held.wait(10)
            change()
        except BaseException as exc:  # noqa: BLE001 - asserted below
            failures.append(exc)
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    with transaction.atomic():
        record(event_type=EventType.GRANT_ISSUED, actor=Actor.system("test"), subject=employee.hr_id)
        head_held.set()
        wait_for_a_lock_waiter(what="the other transaction")
        now = timezone.now()
        # Its foreign keys (token, employee) are checked at this commit, under the head lock.
        CaptureGrant.objects.create(
            id="g_lockorder",
            employee=employee,
            token=token,
            device_id=token.device_id,
            purpose_id=PURPOSE,
            categories=["keystrokes"],
            subject="s",
            country="US",
            subdivision="US-WA",
            policy_version="test",
            consent_version=1,
            issued_at=now,
            expires_at=now + timedelta(seconds=60),
        )
    thread.join(15)
    assert not failures, failures
    assert CaptureGrant.objects.filter(pk="g_lockorder").exists()


@pytest.fixture
def device():
    build_decision_policy()
    employee = make_employee(country="US", subdivision="US-WA")
    grant_consent(employee, "keystrokes")
    token_issue(kind="device", name="laptop", employee=employee, device_id="laptop", actor=SYSTEM)
    return employee


def test_revoking_a_token_while_a_grant_under_it_commits(device):
    _grant_then_commit_while(lambda: token_revoke(token=ApiToken.objects.get(kind="device"), actor=SYSTEM))
    assert ApiToken.objects.get(kind="device").revoked_at is not None


def test_withdrawing_while_a_grant_for_the_employee_commits(device):
    _grant_then_commit_while(
        lambda: consent_withdraw(employee=device, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)
    )
