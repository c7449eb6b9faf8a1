"""End to end: an HR system provisions, the employee consents, the HR system moves them to Germany.

This crosses layers on purpose (people → governance → consent): it is the
issue's acceptance scenario, driven through the SCIM endpoint.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEntry, EventType
from consent.models import ConsentState
from consent.services import consent_grant
from governance.selectors import current_notice, rule_for_employee
from people.models import Employee
from people.tests.conftest import patch_op, scim_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def default_policy(db):
    call_command("load_policy_pack", verbosity=0)


def test_a_transfer_to_germany_over_scim_blocks_capture_from_the_next_decision(hr_client, default_policy):
    created = hr_client.post("/scim/v2/Users", scim_user("E3001", country="US", region="CA"), format="json").json()
    employee = Employee.objects.get(hr_id="E3001")
    assert employee.region_code == "US-CA"
    assert rule_for_employee(employee=employee, at=timezone.now()).status == "conditional"

    notice = current_notice(at=timezone.now())
    consent_grant(
        employee=employee,
        notice=notice,
        choices=[("ai_agent_training", "keystrokes"), ("ai_agent_training", "screenshots")],
        actor=Actor.system("employee-portal"),
    )
    assert ConsentState.objects.filter(employee=employee).count() == 2

    response = hr_client.patch(
        f"/scim/v2/Users/{created['id']}",
        patch_op({"op": "replace", "path": 'addresses[type eq "work"].country', "value": "DE"}),
        format="json",
    )
    assert response.status_code == 200, response.content

    employee.refresh_from_db()
    assert employee.region_code == "DE"
    # The rule the next capture decision evaluates: Germany's block in the default policy pack.
    rule = rule_for_employee(employee=employee, at=timezone.now())
    assert rule.region_id == "DE" and rule.status == "block"
    transfer = AuditEntry.objects.get(event_type=EventType.EMPLOYEE_TRANSFERRED, subject="E3001")
    assert transfer.payload == {
        "from": {"country": "US", "subdivision": "US-CA"},
        "to": {"country": "DE", "subdivision": ""},
    }
