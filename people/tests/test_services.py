from __future__ import annotations

import pytest

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_employee
from consentry.errors import Conflict, DomainError
from people.models import Employee
from people.services import employee_provision, employee_set_status, employee_terminate, employee_transfer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("country", "subdivision", "field"),
    [("XX", "", "country"), ("US", "US-ZZ", "subdivision"), ("US", "DE-BE", "subdivision"), ("us", "", "country")],
)
def test_unknown_or_mismatched_locations_are_refused(country, subdivision, field):
    with pytest.raises(DomainError) as caught:
        employee_provision(hr_id="E1", display_name="x", country=country, subdivision=subdivision, actor=SYSTEM)
    assert field in caught.value.errors
    assert not Employee.objects.exists() and not AuditEntry.objects.exists()


def test_duplicate_hr_ids_are_a_conflict():
    make_employee(hr_id="E1")
    with pytest.raises(Conflict):
        make_employee(hr_id="E1")


def test_a_transfer_is_audited_with_both_locations():
    employee = make_employee(country="US", subdivision="US-CA")
    employee_transfer(employee=employee, country="FR", actor=SYSTEM)
    entry = AuditEntry.objects.get(event_type=EventType.EMPLOYEE_TRANSFERRED)
    assert entry.payload == {
        "from": {"country": "US", "subdivision": "US-CA"},
        "to": {"country": "FR", "subdivision": ""},
    }
    assert entry.region == "FR"


def test_termination_is_final():
    employee = make_employee()
    employee_terminate(employee=employee, actor=SYSTEM)
    employee.refresh_from_db()
    assert employee.status == "terminated" and employee.terminated_at is not None
    with pytest.raises(Conflict):
        employee_set_status(employee=employee, status="active", actor=SYSTEM)
