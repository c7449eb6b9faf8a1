"""Between SCIM Users and employees: what each SCIM attribute means to Consentry.

| SCIM attribute | employee field |
| --- | --- |
| ``id`` | primary key (server-assigned) |
| ``externalId`` | ``external_id`` |
| ``userName`` | ``user_name`` (the HR id when the record has none) |
| ``displayName`` | ``display_name`` |
| ``active`` | ``status``: false terminates; true keeps "on leave" |
| ``emails[type eq "work"].value`` | ``email`` |
| ``addresses[type eq "work"].country`` / ``.region`` | ``country`` / ``subdivision`` (ISO 3166) |
| enterprise ``employeeNumber`` | ``hr_id`` (required, immutable) |
| enterprise ``organization`` / ``division`` / ``department`` | ``entity`` / ``site`` / ``department`` |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scim2_models import InvalidValueException, Meta, MutabilityException

from people.iso3166 import location_errors
from people.models import Employee, EmployeeStatus
from people.scim.resources import PROVIDER, EnterpriseUser, WorkAddress, WorkEmail
from people.services import HRRecord

if TYPE_CHECKING:
    from people.scim.resources import EmployeeUser
else:
    # The provider's own composition of User with the enterprise extension, the class every /Users call serves;
    # model_for is looked up by name, so its type cannot say which class it answers.
    EmployeeUser = PROVIDER.model_for("User")
WORK = "work"


def location_of(address: WorkAddress | None) -> tuple[str, str]:
    """ISO country and subdivision of a work address; the region may omit the country prefix ("NY")."""
    if address is None or not address.country:
        raise InvalidValueException(detail='A work address (addresses[type eq "work"]) with a country is required.')
    country = address.country.strip().upper()
    region = (address.region or "").strip().upper()
    if region and "-" not in region:
        region = f"{country}-{region}"
    errors = location_errors(country, region)
    if errors:
        raise InvalidValueException(detail=" ".join(errors.values()))
    return country, region


def _work_entry(entries: list[Any] | None) -> Any:
    """The work value of a multi-valued attribute: the last one typed "work" (or untyped), if any."""
    candidates = [entry for entry in entries or [] if (entry.type or WORK).lower() == WORK]
    return candidates[-1] if candidates else None


def to_hr_record(resource: Any, *, current: Employee | None) -> HRRecord:
    """The HR record a SCIM User states; ``current`` is the stored employee on updates."""
    enterprise = resource[EnterpriseUser] or EnterpriseUser()
    hr_id = (enterprise.employee_number or "").strip()
    if current is not None:
        if hr_id and hr_id != current.hr_id:
            raise MutabilityException(detail="employeeNumber is the HR id: it never changes.")
        hr_id = current.hr_id
    if not hr_id:
        raise InvalidValueException(detail=f"{EnterpriseUser.__schema__}:employeeNumber (the HR id) is required.")
    if resource.active is None:
        raise InvalidValueException(detail="active is required: Consentry must know whether the person works here.")
    country, subdivision = location_of(_work_entry(resource.addresses))
    email = _work_entry(resource.emails)
    if not resource.active:
        status = EmployeeStatus.TERMINATED
    elif current is not None and current.status == EmployeeStatus.ON_LEAVE:
        status = EmployeeStatus.ON_LEAVE
    else:
        status = EmployeeStatus.ACTIVE
    return HRRecord(
        hr_id=hr_id,
        country=country,
        subdivision=subdivision,
        user_name=(resource.user_name or "").strip(),
        external_id=resource.external_id or "",
        display_name=resource.display_name or "",
        email=(email.value if email and email.value else ""),
        entity=enterprise.organization or "",
        site=enterprise.division or "",
        department=enterprise.department or "",
        status=status,
    )


def to_resource(employee: Employee, *, location: str) -> Any:
    """The SCIM User for an employee; ``location`` is its absolute URL."""
    return EmployeeUser(
        id=str(employee.pk),
        external_id=employee.external_id or None,
        meta=Meta(
            resource_type="User",
            created=employee.created_at,
            last_modified=employee.updated_at,
            location=location,
        ),
        user_name=employee.user_name or employee.hr_id,
        display_name=employee.display_name or None,
        active=employee.status != EmployeeStatus.TERMINATED,
        emails=[WorkEmail(value=employee.email, type=WORK)] if employee.email else None,
        addresses=[WorkAddress(type=WORK, country=employee.country, region=employee.subdivision or None)],
        # User[EnterpriseUser] gains this field at run time, which the static type of the class cannot show.
        EnterpriseUser=EnterpriseUser(  # type: ignore[call-arg]
            employee_number=employee.hr_id,
            organization=employee.entity or None,
            division=employee.site or None,
            department=employee.department or None,
        ),
    )
