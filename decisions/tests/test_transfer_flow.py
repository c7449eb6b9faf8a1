"""End to end: an HR system provisions over SCIM, the employee consents, HR moves them to Germany.

Crosses every layer on purpose (people → governance → consent → decisions):
it is the HR-provisioning issue's acceptance scenario, ending in a real
capture decision on the default policy pack.
"""

from __future__ import annotations

import pytest

from audit.models import AuditEntry, EventType
from conftest import SYSTEM
from decisions.tests.conftest import acknowledge, bearer, capture, codes, device_client, grant_consent, relay
from people.models import Employee
from people.tokens import token_issue

pytestmark = pytest.mark.django_db
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_a_transfer_to_germany_over_scim_blocks_capture_from_the_next_decision(default_pack):
    _, raw = token_issue(kind="hr", name="workday", actor=SYSTEM)
    hr = bearer(raw)
    created = hr.post(
        "/scim/v2/Users",
        {
            "schemas": [SCIM_USER, ENTERPRISE],
            "userName": "carla@example.com",
            "active": True,
            "name": {"givenName": "Carla", "familyName": "Diaz"},
            "addresses": [{"type": "work", "country": "US", "region": "CA"}],
            ENTERPRISE: {"employeeNumber": "E3001"},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    employee = Employee.objects.get(hr_id="E3001")
    assert employee.region_code == "US-CA"
    grant_consent(employee, "keystrokes", "screenshots")
    acknowledge(employee)
    agent = device_client(employee)
    before = capture(agent, "keystrokes", "screenshots")
    assert before["categories"]["keystrokes"]["allowed"], before
    cursor = before["revocation_cursor"]

    moved = hr.patch(
        f"/scim/v2/Users/{created.json()['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": 'addresses[type eq "work"].country', "value": "DE"}],
        },
        format="json",
    )
    assert moved.status_code == 200, moved.content

    # The device following the feed from its decision's cursor learns of the move.
    relay()
    feed = agent.api.get(f"/api/v1/revocations?after={cursor}&wait=0").json()
    assert [event["type"] for event in feed["events"]] == ["jurisdiction_blocked"]
    assert feed["events"][0]["subject"] == before["grant"]["subject"]

    after = capture(agent, "keystrokes", "screenshots")
    assert after["grant"] is None
    assert "jurisdiction_blocked" in codes(after, "keystrokes")
    transfer = AuditEntry.objects.get(event_type=EventType.EMPLOYEE_TRANSFERRED, subject="E3001")
    assert transfer.payload["to"] == {"country": "DE", "subdivision": ""}
    # The ledger names the HR system that made the change.
    assert transfer.actor == "hr:workday"
