"""Reads that feed the engine: per-request employee facts and per-batch grants.

Consent, acknowledgements, pauses and the employee's location and status are
read here on every request, never cached across requests: a committed
withdrawal, pause, transfer or termination changes the very next decision.
Each read is one indexed query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from sys import intern
from typing import Any, overload

import orjson
from django.db import connection
from psycopg.types.datetime import TimestamptzLoader

from consent.models import ConsentState, NoticeAcknowledgement, Pause
from decisions import engine
from decisions.models import CaptureGrant, RevocationEvent, RightsKind, RightsRequest
from decisions.snapshot import Marker, as_marker
from governance.models import Notice, PolicyRevision
from people.models import Employee


def _consents(rows: Iterable[tuple]) -> tuple[dict[tuple[str, str], engine.ConsentFacts], int]:
    consents, version = {}, 0
    for purpose, category, state, notice_version, since, expires_at, withdrawn_at, row_version in rows:
        consents[(purpose, category)] = engine.ConsentFacts(
            state=state, notice_version=notice_version, since=since, expires_at=expires_at, withdrawn_at=withdrawn_at
        )
        version = max(version, row_version)
    return consents, version


@overload
def _aware(value: datetime | str) -> datetime: ...
@overload
def _aware(value: datetime | str | None) -> datetime | None: ...
def _aware(value: datetime | str | None) -> datetime | None:
    # PostgreSQL returns aware datetimes; SQLite naive ones in UTC, or text where
    # it cannot tell a column's type (the branches of a UNION).
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@cache
def _facts_sql() -> str:
    """The per-request read of consent, acknowledgements and running pauses: one query, built once.

    One round trip instead of three, in SQL rather than querysets: it runs on
    every capture decision, and compiling three querysets cost more CPU than
    everything else the decision does (docs/benchmarks.md).
    """
    q = connection.ops.quote_name
    state, ack, pause, notice = (q(m._meta.db_table) for m in (ConsentState, NoticeAcknowledgement, Pause, Notice))
    # Table names come from model meta, never from input. Each branch is served
    # by an index: consent_state_unique_pair, acknowledgement_once_per_notice,
    # pause_employee_ends.
    return (
        "SELECT 'c' AS kind, s.purpose_id, s.category_id, s.state, n.version AS notice, s.since, s.expires_at, "  # noqa: S608
        f"s.withdrawn_at, s.version AS row_version FROM {state} s JOIN {notice} n ON n.id = s.notice_id "
        "WHERE s.employee_id = %s "
        "UNION ALL SELECT 'a', NULL, NULL, NULL, n.version, a.at, NULL, NULL, NULL "
        f"FROM {ack} a JOIN {notice} n ON n.id = a.notice_id WHERE a.employee_id = %s "
        "UNION ALL SELECT 'p', NULL, NULL, NULL, NULL, p.starts_at, p.ends_at, p.resumed_at, NULL "
        f"FROM {pause} p WHERE p.employee_id = %s AND p.ends_at > %s AND p.starts_at <= %s "
        "AND (p.resumed_at IS NULL OR p.resumed_at > %s)"
    )


def employee_facts(*, employee: Employee, at: datetime) -> engine.EmployeeFacts:
    """Everything about one employee a capture decision needs, read now."""
    with connection.cursor() as cursor:
        cursor.execute(_facts_sql(), [employee.pk, employee.pk, employee.pk, at, at, at])
        return _facts(employee, cursor.fetchall())


def _facts(employee: Employee, rows: list[tuple]) -> engine.EmployeeFacts:
    """The engine's facts from the employee and ``_facts_sql()``'s rows.

    ``consent_version`` is the highest ``ConsentState.version``: every event
    moves exactly one state row to its own version, so that maximum is the
    employee's latest ``ConsentEvent.version`` without a second query.
    """
    consents, version = _consents(
        (purpose, category, state, notice, _aware(since), _aware(expires), _aware(withdrawn), row_version)
        for kind, purpose, category, state, notice, since, expires, withdrawn, row_version in rows
        if kind == "c"
    )
    acks = tuple((notice, _aware(when)) for kind, _p, _c, _s, notice, when, *_ in rows if kind == "a")
    pauses = []
    for kind, _p, _c, _s, _n, start, end, resumed, _v in rows:
        if kind == "p":
            # A pause resumed early ends when it was resumed.
            until, resumed_at = _aware(end), _aware(resumed)
            pauses.append((_aware(start), min(until, resumed_at) if resumed_at else until))
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
        pauses=tuple(pauses),
    )


@dataclass(frozen=True, slots=True)
class CaptureReads:
    """What a capture decision reads before deciding, taken in one statement and so from one snapshot."""

    at: datetime
    # The revocation feed's newest position: every later change that takes a category away lands after it.
    feed_head: int
    # snapshot.revision_marker(): whether the process's compiled policy is still current.
    policy_marker: Marker
    facts: engine.EmployeeFacts


@cache
def _capture_reads_sql() -> str:
    q = connection.ops.quote_name
    feed, revision = q(RevocationEvent._meta.db_table), q(PolicyRevision._meta.db_table)
    # The heads form one row; the employee's facts join it (none: one row of NULL facts).
    return (
        f"SELECT h.head, h.revision, h.changed_at, f.* FROM (SELECT (SELECT MAX(id) FROM {feed}) AS head, "  # noqa: S608
        f"r.revision, r.changed_at FROM (SELECT 1 AS one) o LEFT JOIN {revision} r ON r.id = 1) h "
        f"LEFT JOIN ({_facts_sql()}) f ON 1 = 1"
    )


def capture_reads(*, employee: Employee, at: datetime) -> CaptureReads:
    """The feed head, the policy marker and the employee's facts at ``at``: one round trip for all three.

    Every capture decision needs all of them first; reading them together
    saves a round trip on every decision, the denied ones included.
    """
    with connection.cursor() as cursor:
        cursor.execute(_capture_reads_sql(), [employee.pk, employee.pk, employee.pk, at, at, at])
        rows = cursor.fetchall()
    head, revision, changed_at = rows[0][:3]
    facts = _facts(employee, [row[3:] for row in rows if row[3] is not None])
    return CaptureReads(at=at, feed_head=head or 0, policy_marker=as_marker(revision, changed_at), facts=facts)


@lru_cache(maxsize=256)
def _categories(text: str) -> frozenset[str]:
    # Grants repeat a handful of category sets: parse and keep each once.
    return frozenset(orjson.loads(text))


def grants_by_id(ids: Iterable[str]) -> dict[str, engine.GrantFacts]:
    """The grants among ``ids`` (unknown ids are simply absent), by primary key.

    Plain SQL with psycopg's own (C) timestamp loader on PostgreSQL: a stream
    loads grants by the hundred thousand, and Django's Python-level loader
    for aware timestamps was the largest single cost of a use decision.
    """
    ids = list(ids)
    if not ids:
        return {}
    q = connection.ops.quote_name
    grant, employee = q(CaptureGrant._meta.db_table), q(Employee._meta.db_table)
    postgresql = connection.vendor == "postgresql"
    # Categories as JSON text, so each distinct set is parsed once (_categories).
    categories = "g.categories::text" if postgresql else "g.categories"
    sql = (
        f"SELECT g.id, e.hr_id, g.subject, g.purpose_id, {categories}, g.issued_at, g.expires_at, g.country, "  # noqa: S608
        f"g.subdivision FROM {grant} g JOIN {employee} e ON e.id = g.employee_id WHERE g.id "
    )
    with connection.cursor() as cursor:
        if postgresql:
            cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
            cursor.execute(sql + "= ANY(%s)", [ids])
        else:
            cursor.execute(sql + f"IN ({', '.join(['%s'] * len(ids))})", ids)
        rows = cursor.fetchall()
    # PostgreSQL's timestamps are already aware (UTC); SQLite's need the zone.
    # issued_at and expires_at are NOT NULL.
    aware: Callable[[Any], datetime] = (lambda value: value) if postgresql else _aware
    # Interned: thousands of grants share an employee, purpose and location.
    return {
        row[0]: engine.GrantFacts(
            row[0],
            intern(row[1]),
            intern(row[2]),
            intern(row[3]),
            _categories(row[4]) if isinstance(row[4], str) else frozenset(row[4]),
            aware(row[5]),
            aware(row[6]),
            intern(row[7]),
            intern(row[8]),
        )
        for row in rows
    }


def employees_for_use(*, hr_ids: Iterable[str], purpose: str) -> dict[str, engine.EmployeeFacts]:
    """Status, location and consent for ``purpose`` of the employees behind a batch of records.

    One query for employees and their consent (plain SQL with psycopg's own
    timestamp loader, as ``grants_by_id``): a stream meets thousands of
    employees, and the ORM's loaders cost more than their decisions.
    """
    wanted = list(hr_ids)
    if not wanted:
        return {}
    q = connection.ops.quote_name
    employee, state, notice, rights = (q(m._meta.db_table) for m in (Employee, ConsentState, Notice, RightsRequest))
    # The latest erasure request, whatever became of it: asking is what stops the use of earlier
    # data. A correlated subquery, so the batch still reads its employees with one query
    # (rights_employee_kind_at serves it).
    sql = (
        "SELECT e.hr_id, e.country, e.subdivision, e.entity, e.site, e.status, e.terminated_at, "  # noqa: S608
        f"(SELECT r.requested_at FROM {rights} r WHERE r.employee_id = e.id AND r.kind = %s "
        "ORDER BY r.requested_at DESC LIMIT 1), "
        "s.purpose_id, s.category_id, s.state, n.version, s.since, s.expires_at, s.withdrawn_at, s.version "
        f"FROM {employee} e LEFT JOIN {state} s ON s.employee_id = e.id AND s.purpose_id = %s "
        f"LEFT JOIN {notice} n ON n.id = s.notice_id WHERE e.hr_id "
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
            cursor.execute(sql + "= ANY(%s)", [RightsKind.ERASURE, purpose, wanted])
        else:
            cursor.execute(sql + f"IN ({', '.join(['%s'] * len(wanted))})", [RightsKind.ERASURE, purpose, *wanted])
        rows = cursor.fetchall()
    people: dict[str, tuple] = {}
    states: dict[str, list[tuple]] = {}
    for row in rows:
        hr_id = row[0]
        if hr_id not in people:
            people[hr_id] = row[1:8]
            states[hr_id] = []
        if row[8] is not None:
            states[hr_id].append(
                (row[8], row[9], row[10], row[11], _aware(row[12]), _aware(row[13]), _aware(row[14]), row[15])
            )
    facts = {}
    for hr_id, (country, subdivision, entity, site, status, terminated_at, erasure_at) in people.items():
        consents, version = _consents(states[hr_id])
        facts[hr_id] = engine.EmployeeFacts(
            hr_id=intern(hr_id),
            country=country,
            subdivision=subdivision,
            entity=entity,
            site=site,
            status=status,
            terminated_at=_aware(terminated_at),
            consents=consents,
            consent_version=version,
            erasure_requested_at=_aware(erasure_at),
        )
    return facts
