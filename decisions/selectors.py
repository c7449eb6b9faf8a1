"""Reads that feed the engine: per-request employee facts and per-batch grants.

Consent, acknowledgements, pauses and the employee's location and status are
read here on every request, never cached across requests: a committed
withdrawal, pause, transfer or termination changes the very next decision.
Each read is one indexed query.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

from consent.models import ConsentState, NoticeAcknowledgement, Pause
from decisions import engine
from decisions.models import CaptureGrant
from people.models import Employee


def _consents(rows: Iterable[tuple]) -> tuple[dict[tuple[str, str], engine.ConsentFacts], int]:
    consents, version = {}, 0
    for purpose, category, state, notice_version, since, expires_at, withdrawn_at, row_version in rows:
        consents[(purpose, category)] = engine.ConsentFacts(
            state=state, notice_version=notice_version, since=since, expires_at=expires_at, withdrawn_at=withdrawn_at
        )
        version = max(version, row_version)
    return consents, version


_CONSENT_FIELDS = (
    "purpose_id",
    "category_id",
    "state",
    "notice__version",
    "since",
    "expires_at",
    "withdrawn_at",
    "version",
)


def employee_facts(*, employee: Employee, at: datetime, acknowledgements: bool = True) -> engine.EmployeeFacts:
    """Everything about one employee a capture decision needs, read now.

    ``consent_version`` is the highest ``ConsentState.version``: every event
    moves exactly one state row to its own version, so that maximum is the
    employee's latest ``ConsentEvent.version`` without a second query.
    """
    # consent_state_unique_pair (employee, purpose, category) serves this.
    consents, version = _consents(ConsentState.objects.filter(employee_id=employee.pk).values_list(*_CONSENT_FIELDS))
    acks: tuple[tuple[int, datetime], ...] = ()
    if acknowledgements:
        # acknowledgement_once_per_notice (employee, notice) serves this.
        acks = tuple(NoticeAcknowledgement.objects.filter(employee_id=employee.pk).values_list("notice__version", "at"))
    # pause_employee_ends (employee, ends_at) serves this: pauses still running at ``at``.
    pauses = tuple(
        (start, min(end, resumed) if resumed else end)
        for start, end, resumed in Pause.objects.filter(
            Q(resumed_at__isnull=True) | Q(resumed_at__gt=at),
            employee_id=employee.pk,
            ends_at__gt=at,
            starts_at__lte=at,
        ).values_list("starts_at", "ends_at", "resumed_at")
    )
    return engine.EmployeeFacts(
        hr_id=employee.hr_id,
        country=employee.country,
        subdivision=employee.subdivision,
        entity=employee.entity,
        site=employee.site,
        status=employee.status,
        terminated_at=employee.terminated_at,
        consents=consents,
        consent_version=version,
        acknowledgements=acks,
        pauses=pauses,
    )


def _among(values: Iterable[str]) -> list[str] | RawSQL:
    """Values for an ``__in`` filter of thousands of items.

    On PostgreSQL they go as one array parameter: psycopg's client-side binding
    parses each placeholder of a long ``IN (%s, %s, …)`` list in Python, which
    cost more than the use decisions themselves.
    """
    values = list(values)
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::text[])", (values,))
    return values


def grants_by_id(ids: Iterable[str]) -> dict[str, engine.GrantFacts]:
    """The grants among ``ids`` (unknown ids are simply absent), by primary key."""
    rows = CaptureGrant.objects.filter(pk__in=_among(ids)).values_list(
        "id",
        "employee__hr_id",
        "subject",
        "purpose_id",
        "categories",
        "issued_at",
        "expires_at",
        "country",
        "subdivision",
    )
    return {
        row[0]: engine.GrantFacts(
            id=row[0],
            employee=row[1],
            subject=row[2],
            purpose=row[3],
            categories=frozenset(row[4]),
            issued_at=row[5],
            expires_at=row[6],
            country=row[7],
            subdivision=row[8],
        )
        for row in rows
    }


def employees_for_use(*, hr_ids: Iterable[str], purpose: str) -> dict[str, engine.EmployeeFacts]:
    """Status, location and consent for ``purpose`` of the employees behind a batch of records."""
    wanted = list(hr_ids)
    states: dict[str, list[tuple]] = {hr_id: [] for hr_id in wanted}
    for row in ConsentState.objects.filter(employee__hr_id__in=_among(wanted), purpose_id=purpose).values_list(
        "employee__hr_id", *_CONSENT_FIELDS
    ):
        states[row[0]].append(row[1:])
    facts = {}
    for hr_id, country, subdivision, entity, site, status, terminated_at in Employee.objects.filter(
        hr_id__in=_among(wanted)
    ).values_list("hr_id", "country", "subdivision", "entity", "site", "status", "terminated_at"):
        consents, version = _consents(states[hr_id])
        facts[hr_id] = engine.EmployeeFacts(
            hr_id=hr_id,
            country=country,
            subdivision=subdivision,
            entity=entity,
            site=site,
            status=status,
            terminated_at=terminated_at,
            consents=consents,
            consent_version=version,
        )
    return facts
