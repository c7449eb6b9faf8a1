"""State changes for employees: provisioning, transfers, status and termination."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import EventType
from audit.services import record
from consentry.errors import Conflict, DomainError
from people.iso3166 import location_errors
from people.models import Employee, EmployeeStatus

_DETAIL_FIELDS = ("display_name", "email", "entity", "site", "department")


def _validate_location(country: str, subdivision: str) -> None:
    errors = location_errors(country, subdivision)
    if errors:
        raise DomainError("The work location is not a valid ISO 3166 code.", code="invalid_location", errors=errors)


def employee_provision(
    *,
    hr_id: str,
    display_name: str,
    country: str,
    subdivision: str = "",
    email: str = "",
    entity: str = "",
    site: str = "",
    department: str = "",
    user: AbstractBaseUser | None = None,
    actor: Actor,
) -> Employee:
    """Create an employee record from HR data.

    The work location is validated against ISO 3166 first: an unknown code
    would otherwise fall through to ``jurisdiction_unknown`` silently.
    """
    hr_id = hr_id.strip()
    if not hr_id:
        raise DomainError("An employee needs an HR id.", code="invalid", errors={"hr_id": "This field is required."})
    _validate_location(country, subdivision)
    with transaction.atomic():
        if Employee.objects.filter(hr_id=hr_id).exists():
            raise Conflict(f"An employee with HR id {hr_id!r} already exists.", code="employee_exists")
        employee = Employee.objects.create(
            hr_id=hr_id,
            display_name=display_name or hr_id,
            email=email,
            country=country,
            subdivision=subdivision,
            entity=entity,
            site=site,
            department=department,
            user=user,
        )
        record(
            event_type=EventType.EMPLOYEE_PROVISIONED,
            actor=actor,
            subject=employee.hr_id,
            object_type="employee",
            object_id=employee.pk,
            region=employee.region_code,
            payload={"country": country, "subdivision": subdivision, "entity": entity, "site": site},
        )
    return employee


def employee_update_details(*, employee: Employee, actor: Actor, **details: Any) -> Employee:
    """Change non-location details (name, email, entity, site, department)."""
    unknown = set(details) - set(_DETAIL_FIELDS)
    if unknown:
        raise DomainError(f"Unknown employee fields: {sorted(unknown)}.", code="invalid")
    with transaction.atomic():
        employee = Employee.objects.select_for_update().get(pk=employee.pk)
        changed = {name: value for name, value in details.items() if getattr(employee, name) != value}
        if not changed:
            return employee
        for name, value in changed.items():
            setattr(employee, name, value)
        employee.save(update_fields=[*changed, "updated_at"])
        record(
            event_type=EventType.EMPLOYEE_UPDATED,
            actor=actor,
            subject=employee.hr_id,
            object_type="employee",
            object_id=employee.pk,
            region=employee.region_code,
            payload={"changed": changed},
        )
    return employee


def employee_transfer(*, employee: Employee, country: str, subdivision: str = "", actor: Actor) -> Employee:
    """Move an employee's work location; the next decision uses the new region."""
    _validate_location(country, subdivision)
    with transaction.atomic():
        employee = Employee.objects.select_for_update().get(pk=employee.pk)
        before = {"country": employee.country, "subdivision": employee.subdivision}
        if before == {"country": country, "subdivision": subdivision}:
            return employee
        employee.country, employee.subdivision = country, subdivision
        employee.save(update_fields=["country", "subdivision", "updated_at"])
        record(
            event_type=EventType.EMPLOYEE_TRANSFERRED,
            actor=actor,
            subject=employee.hr_id,
            object_type="employee",
            object_id=employee.pk,
            region=employee.region_code,
            payload={"from": before, "to": {"country": country, "subdivision": subdivision}},
        )
    return employee


def employee_set_status(*, employee: Employee, status: str, actor: Actor) -> Employee:
    """Put an employee on leave, back to active, or terminate them.

    Termination is final here: a rehire is a new HR record. Any status but
    active makes every capture decision deny at once.
    """
    if status not in EmployeeStatus.values:
        raise DomainError(f"{status!r} is not an employee status.", code="invalid", errors={"status": "Unknown."})
    with transaction.atomic():
        employee = Employee.objects.select_for_update().get(pk=employee.pk)
        if employee.status == status:
            return employee
        if employee.status == EmployeeStatus.TERMINATED:
            raise Conflict("A terminated employee cannot be reactivated; provision a new record.", code="terminated")
        previous = employee.status
        employee.status = status
        employee.terminated_at = timezone.now() if status == EmployeeStatus.TERMINATED else None
        employee.save(update_fields=["status", "terminated_at", "updated_at"])
        record(
            event_type=(
                EventType.EMPLOYEE_TERMINATED
                if status == EmployeeStatus.TERMINATED
                else EventType.EMPLOYEE_STATUS_CHANGED
            ),
            actor=actor,
            subject=employee.hr_id,
            object_type="employee",
            object_id=employee.pk,
            region=employee.region_code,
            payload={"from": previous, "to": status},
        )
    return employee


def employee_terminate(*, employee: Employee, actor: Actor) -> Employee:
    return employee_set_status(employee=employee, status=EmployeeStatus.TERMINATED, actor=actor)
