"""State changes for employees: provisioning, logins, transfers, status and termination."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Field
from django.db.models.functions import Lower
from django.utils import timezone

from audit.actors import Actor
from audit.models import EventType
from audit.services import record
from consentry.errors import Conflict, DomainError
from consentry.outbox import EmployeeRevoked, Location, Topic, Transferred, publish
from people.iso3166 import location_errors
from people.locks import employee_lock, employees_lock
from people.models import Employee, EmployeeStatus
from people.roles import Role, ensure_roles

if TYPE_CHECKING:
    from django.contrib.auth.models import User

_DETAIL_FIELDS = ("display_name", "email", "entity", "site", "department", "user_name", "external_id")


def _audit_employee(employee: Employee, event_type: str, actor: Actor, payload: dict) -> None:
    """The audit entry of a change to one employee, named by HR id and filed under their region."""
    record(
        event_type=event_type,
        actor=actor,
        subject=employee.hr_id,
        object_type="employee",
        object_id=employee.pk,
        region=employee.region_code,
        payload=payload,
    )


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
    user: User | None = None,
    user_name: str = "",
    external_id: str = "",
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
        _check_user_name_free(user_name)
        employee = Employee.objects.create(
            hr_id=hr_id,
            user_name=user_name,
            external_id=external_id,
            display_name=display_name or hr_id,
            email=email,
            country=country,
            subdivision=subdivision,
            entity=entity,
            site=site,
            department=department,
            user=user,
        )
        _audit_employee(
            employee,
            EventType.EMPLOYEE_PROVISIONED,
            actor,
            {"country": country, "subdivision": subdivision, "entity": entity, "site": site},
        )
    return employee


def employee_update_details(*, employee: Employee, actor: Actor, **details: Any) -> Employee:
    """Change non-location details (name, email, entity, site, department)."""
    unknown = set(details) - set(_DETAIL_FIELDS)
    if unknown:
        raise DomainError(f"Unknown employee fields: {sorted(unknown)}.", code="invalid")
    with transaction.atomic():
        employee = employee_lock(employee_id=employee.pk)
        changed = {name: value for name, value in details.items() if getattr(employee, name) != value}
        if not changed:
            return employee
        if "user_name" in changed:
            _check_user_name_free(changed["user_name"], exclude=employee)
        for name, value in changed.items():
            setattr(employee, name, value)
        employee.save(update_fields=[*changed, "updated_at"])
        _audit_employee(employee, EventType.EMPLOYEE_UPDATED, actor, {"changed": changed})
    return employee


def employee_transfer(*, employee: Employee, country: str, subdivision: str = "", actor: Actor) -> Employee:
    """Move an employee's work location; the next decision uses the new region.

    Decisions read the live work location, so a move into a blocked or unknown
    region denies from the next decision on. Devices that hold a grant learn it
    from the revocation feed: the outbox message written here becomes
    ``jurisdiction_blocked`` (or ``policy_changed`` when the new region only
    takes some categories away) once the feed has compared both locations.
    """
    _validate_location(country, subdivision)
    with transaction.atomic():
        employee = employee_lock(employee_id=employee.pk)
        before = {"country": employee.country, "subdivision": employee.subdivision}
        if before == {"country": country, "subdivision": subdivision}:
            return employee
        employee.country, employee.subdivision = country, subdivision
        employee.save(update_fields=["country", "subdivision", "updated_at"])
        _audit_employee(
            employee,
            EventType.EMPLOYEE_TRANSFERRED,
            actor,
            {"from": before, "to": {"country": country, "subdivision": subdivision}},
        )
        publish(
            topic=Topic.JURISDICTION_BLOCKED,
            payload=Transferred(
                employee=employee.pk,
                at=timezone.now(),
                from_=Location(**before),
                to=Location(country=country, subdivision=subdivision),
            ),
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
        employee = employee_lock(employee_id=employee.pk)
        if employee.status == status:
            return employee
        if employee.status == EmployeeStatus.TERMINATED:
            raise Conflict("A terminated employee cannot be reactivated; provision a new record.", code="terminated")
        previous = employee.status
        employee.status = status
        employee.terminated_at = timezone.now() if status == EmployeeStatus.TERMINATED else None
        employee.save(update_fields=["status", "terminated_at", "updated_at"])
        _sync_login_active(employee)
        _audit_employee(
            employee,
            (
                EventType.EMPLOYEE_TERMINATED
                if status == EmployeeStatus.TERMINATED
                else EventType.EMPLOYEE_STATUS_CHANGED
            ),
            actor,
            {"from": previous, "to": status},
        )
        if status != EmployeeStatus.ACTIVE:
            # Leave and termination stop every capture: devices hear it from the feed after commit.
            publish(topic=Topic.EMPLOYEE_INACTIVE, payload=EmployeeRevoked(employee=employee.pk, at=timezone.now()))
    return employee


def employee_terminate(*, employee: Employee, actor: Actor) -> Employee:
    return employee_set_status(employee=employee, status=EmployeeStatus.TERMINATED, actor=actor)


def _check_user_name_free(user_name: str, *, exclude: Employee | None = None) -> None:
    """userName is unique without regard to case (RFC 7643 §4.1.1); the database enforces it too."""
    if not user_name:
        return
    taken = Employee.objects.annotate(lowered=Lower("user_name")).filter(lowered=user_name.lower())
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise Conflict(f"The user name {user_name!r} is already taken.", code="user_name_taken")


@dataclass(frozen=True, slots=True)
class HRRecord:
    """One employee as the HR system of record states it (a SCIM User or a CSV row)."""

    hr_id: str
    country: str
    subdivision: str = ""
    user_name: str = ""
    external_id: str = ""
    display_name: str = ""
    email: str = ""
    entity: str = ""
    site: str = ""
    department: str = ""
    status: str = EmployeeStatus.ACTIVE

    def errors(self) -> dict[str, str]:
        """Field errors found without touching the database (CSV validates every row first)."""
        errors: dict[str, str] = {}
        if not self.hr_id.strip():
            errors["hr_id"] = "This field is required."
        if self.status not in EmployeeStatus.values:
            errors["status"] = f"{self.status!r} is not one of {', '.join(EmployeeStatus.values)}."
        errors.update(location_errors(self.country, self.subdivision))
        if self.email:
            try:
                validate_email(self.email)
            except ValidationError:
                errors["email"] = f"{self.email!r} is not an e-mail address."
        for field in fields(self):
            column = Employee._meta.get_field(field.name)
            # Every HR record field is one of the employee's own columns, never a relation.
            assert isinstance(column, Field)
            limit = column.max_length
            value = getattr(self, field.name)
            if limit and len(value) > limit and field.name not in errors:
                errors[field.name] = f"At most {limit} characters."
        return errors


def employee_apply_hr_record(*, hr_record: HRRecord, actor: Actor, employee: Employee | None = None) -> Employee:
    """Create an employee from an HR record, or bring an existing one in line with it.

    This is the one write path of SCIM and CSV provisioning. It goes through
    the named services (provision, details, transfer, status), so each kind of
    change keeps its own audit entry, all inside one transaction: a record that
    fails half-way changes nothing. The HR id is the employee's identity and
    never changes; termination stays final (a rehire is a new HR record).
    """
    errors = hr_record.errors()
    if errors:
        raise DomainError("The HR record is not valid.", code="invalid", errors=errors)
    try:
        with transaction.atomic():
            if employee is None:
                employee = employee_provision(
                    hr_id=hr_record.hr_id,
                    user_name=hr_record.user_name,
                    external_id=hr_record.external_id,
                    display_name=hr_record.display_name,
                    email=hr_record.email,
                    country=hr_record.country,
                    subdivision=hr_record.subdivision,
                    entity=hr_record.entity,
                    site=hr_record.site,
                    department=hr_record.department,
                    actor=actor,
                )
            else:
                if hr_record.hr_id != employee.hr_id:
                    raise DomainError(
                        "The HR id of an employee never changes.",
                        code="immutable",
                        errors={"hr_id": f"Stays {employee.hr_id!r}."},
                    )
                employee = employee_update_details(
                    employee=employee,
                    actor=actor,
                    **{name: getattr(hr_record, name) for name in _DETAIL_FIELDS},
                )
                employee = employee_transfer(
                    employee=employee, country=hr_record.country, subdivision=hr_record.subdivision, actor=actor
                )
            if hr_record.status != employee.status:
                employee = employee_set_status(employee=employee, status=hr_record.status, actor=actor)
            # Last, so the login takes the record's final user name and status.
            employee_login_ensure(employee=employee, actor=actor)
            employee.refresh_from_db()
    except IntegrityError as exc:
        # A concurrent request took the same HR id or user name between our check and our write.
        raise Conflict("Another record with the same HR id or user name was saved meanwhile.") from exc
    return employee


def employee_deprovision(*, employee: Employee, actor: Actor) -> Employee:
    """The HR system deleted the person (SCIM DELETE): terminate them and stop provisioning the record.

    Nothing is erased: consent history and audit entries about the person are
    evidence, and data deletion follows the retention policy for terminated
    employees. Idempotent for an already deprovisioned employee.
    """
    with transaction.atomic():
        employee = employee_set_status(employee=employee, status=EmployeeStatus.TERMINATED, actor=actor)
        employee = employee_lock(employee_id=employee.pk)
        if employee.deprovisioned_at is not None:
            return employee
        employee.deprovisioned_at = timezone.now()
        employee.save(update_fields=["deprovisioned_at", "updated_at"])
        _audit_employee(
            employee, EventType.EMPLOYEE_DEPROVISIONED, actor, {"deprovisioned_at": employee.deprovisioned_at}
        )
    return employee


@dataclass(frozen=True, slots=True)
class ImportSummary:
    created: int
    updated: int
    unchanged: int
    # Rows that terminated an employee; each is counted as created or updated too.
    terminated: int = 0


def employees_import(*, records: list[HRRecord], actor: Actor, source: str, digest: str) -> ImportSummary:
    """Apply a validated HR export in one transaction: all rows or none.

    Each employee change keeps its own audit entry (through
    ``employee_apply_hr_record``); one more entry summarises the file (its
    name and SHA-256) so an auditor can tie every change to the upload.
    """
    created = updated = unchanged = terminated = 0
    with transaction.atomic():
        existing = employees_lock(hr_ids=[r.hr_id for r in records])
        for hr_record in records:
            current = existing.get(hr_record.hr_id)
            before = current.updated_at if current else None
            status_before = current.status if current else None
            employee = employee_apply_hr_record(hr_record=hr_record, employee=current, actor=actor)
            if employee.status == EmployeeStatus.TERMINATED and status_before != EmployeeStatus.TERMINATED:
                terminated += 1
            if current is None:
                created += 1
            elif employee.updated_at != before:
                updated += 1
            else:
                unchanged += 1
        record(
            event_type=EventType.EMPLOYEES_IMPORTED,
            actor=actor,
            object_type="employee_import",
            object_id=digest[:16],
            payload={
                "source": source,
                "sha256": digest,
                "rows": len(records),
                "created": created,
                "updated": updated,
                "unchanged": unchanged,
                "terminated": terminated,
            },
        )
    return ImportSummary(created=created, updated=updated, unchanged=unchanged, terminated=terminated)


def login_name_of(employee: Employee) -> str:
    """The user name an employee signs in with: their SCIM userName, or the HR id when HR sent none."""
    return employee.user_name or employee.hr_id


def employee_login_ensure(*, employee: Employee, actor: Actor) -> User:
    """Create or link the portal account an employee signs in with, named after their login name.

    The one create-or-link path of HR provisioning (SCIM, CSV) and of single
    sign-on, so both agree on which account is whose. A new account has no
    usable password: the person signs in by SSO, or sets a password through a
    set-password link (``people.passwords``). An existing account of that name
    is linked unless it already belongs to another employee, or is a staff or
    superuser account (an HR record must never hand an administrator's login
    to whoever the identity provider vouches for). A linked account is
    renamed when the login name changes; a clash is a conflict.
    """
    User = get_user_model()
    with transaction.atomic():
        employee = employee_lock(employee_id=employee.pk)
        login = login_name_of(employee)
        user = employee.user
        if user is not None:
            if user.get_username() != login:
                _login_rename(user, login, employee=employee, actor=actor)
            return user
        user = User.objects.select_for_update().filter(username__iexact=login).first()
        if user is None:
            # No password given: create_user stores an unusable one.
            user = User.objects.create_user(username=login, email=employee.email)
            action = "created"
        else:
            holder = Employee.objects.filter(user=user).exclude(pk=employee.pk).first()
            if holder is not None:
                raise Conflict(f"The login {login!r} belongs to employee {holder.hr_id}.", code="user_name_taken")
            if user.is_staff or user.is_superuser:
                raise Conflict(f"The login {login!r} is an administrator account.", code="user_name_taken")
            action = "linked"
        user.groups.add(ensure_roles()[Role.EMPLOYEE])
        employee.user = user
        employee.save(update_fields=["user", "updated_at"])
        if employee.status == EmployeeStatus.TERMINATED:
            # Never the other way: linking must not re-enable an account someone disabled.
            _sync_login_active(employee)
        _audit_employee(employee, EventType.EMPLOYEE_UPDATED, actor, {"changed": {"user": login}, "login": action})
    return user


def _login_rename(user: User, login: str, *, employee: Employee, actor: Actor) -> None:
    """A userName change renames the login; user names are unique without regard to case."""
    User = get_user_model()
    if User.objects.filter(username__iexact=login).exclude(pk=user.pk).exists():
        raise Conflict(f"The login {login!r} is already taken.", code="user_name_taken")
    before = user.get_username()
    user.username = login
    user.save(update_fields=["username"])
    _audit_employee(employee, EventType.EMPLOYEE_UPDATED, actor, {"changed": {"user": login}, "login_from": before})


def _sync_login_active(employee: Employee) -> None:
    """A terminated employee's login is disabled (sessions and user tokens stop); reinstatement enables it.

    Leave keeps the login: an employee on leave may still read and withdraw
    their consent, and nothing is captured meanwhile anyway.
    """
    if employee.user_id is None:
        return
    enabled = employee.status != EmployeeStatus.TERMINATED
    get_user_model().objects.filter(pk=employee.user_id).exclude(is_active=enabled).update(is_active=enabled)
