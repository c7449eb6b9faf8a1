"""Decisions as actions: capture decisions that issue grants, simulations, counters, use-batch audit.

The engine decides; these functions gather its inputs, keep the evidence and
issue what an allow promises. Every grant is one audit entry written in the
same transaction as the grant row; denied capture checks only bump a counter.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import EventType
from audit.services import record, record_queued
from consentry.rows import ModelRows, insert
from consentry.signing import sign_jws
from decisions import engine
from decisions.datakeys import IssuedKey, data_keys_for_grant, keys_release_payload
from decisions.models import CaptureGrant, DecisionCounter
from decisions.pseudonyms import pseudonym
from decisions.selectors import CaptureReads, employee_facts
from decisions.snapshot import current_policy
from people.locks import employee_lock_clause
from people.models import ApiToken, Employee

logger = logging.getLogger(__name__)

# API.md: a grant lives 60 s by default, configurable, never above 15 minutes.
MAX_GRANT_LIFETIME = timedelta(minutes=15)
UNKNOWN_PURPOSE = "(unknown)"


def token_actor(token: ApiToken) -> Actor:
    """How the ledger names a machine client: its token kind and id (never the secret)."""
    return Actor(kind="token", ref=f"{token.kind}:{token.pk}")


def grant_lifetime() -> timedelta:
    return min(timedelta(seconds=settings.CONSENTRY_GRANT_LIFETIME_SECONDS), MAX_GRANT_LIFETIME)


def grant_expiry(issued_at: datetime) -> datetime:
    """When a grant issued at ``issued_at`` (UTC) ends: after its lifetime, and never past that UTC day.

    A grant carries the data keys of the day it was issued, and a pipeline is
    released the key of the day a record was captured: a grant that ran past
    midnight would seal records with a key no pipeline could be given. Near
    midnight the agent simply asks again, and the new grant carries the new
    day's keys.
    """
    midnight = datetime.combine(issued_at.date() + timedelta(days=1), time.min, tzinfo=UTC)
    return min(issued_at + grant_lifetime(), midnight)


@dataclass(frozen=True, slots=True)
class IssuedGrant:
    grant: CaptureGrant
    jws: str
    # Category → today's data key, for the agent to encrypt with (decisions.datakeys).
    data_keys: Mapping[str, IssuedKey] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class CaptureOutcome:
    decision_id: str
    employee: str
    decision: engine.CaptureDecision
    grant: IssuedGrant | None


def grant_issue(*, token: ApiToken, employee: Employee, purpose: str, decision: engine.CaptureDecision) -> IssuedGrant:
    """Issue the signed grant an allowed capture decision promises, and audit it.

    The token is signed before anything is written, so a grant row always has
    a token that was handed out; the grant row and its audit entry commit
    together or not at all. The entry is queued (``record_queued``): one
    grant per allowed decision is the ledger's busiest event, and queued
    entries do not wait for each other's disk flush under the chain head's
    lock; the sealer chains them within seconds. Call it holding the
    employee's row lock (as ``capture_decide`` does), which orders the grant
    against every consent change.
    """
    categories = sorted(decision.allowed_categories)
    if not categories:
        raise ValueError("a grant needs at least one allowed category")
    # Full precision: a withdrawal in the same second must still order before or after it.
    issued_at = decision.at.astimezone(UTC)
    expires_at = grant_expiry(issued_at)
    grant_id = "g_" + secrets.token_urlsafe(16)
    subject = pseudonym(purpose=purpose, hr_id=employee.hr_id)
    jws = sign_jws(
        {
            "iss": settings.CONSENTRY_ISSUER,
            "sub": subject,
            "aud": token.device_id,
            "jti": grant_id,
            "iat": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
            "purpose": purpose,
            "categories": categories,
            "policy_version": decision.policy_version,
        }
    )
    with transaction.atomic(savepoint=False):
        grant = CaptureGrant(
            id=grant_id,
            employee=employee,
            token=token,
            device_id=token.device_id,
            purpose_id=purpose,
            categories=categories,
            subject=subject,
            country=employee.country,
            subdivision=employee.subdivision,
            policy_version=decision.policy_version,
            consent_version=decision.consent_version,
            issued_at=issued_at,
            expires_at=expires_at,
        )
        # Plain SQL: the queryset's INSERT compilation cost more than the insert.
        insert(grant)
        data_keys = data_keys_for_grant(employee=employee, categories=categories, purpose=purpose, at=issued_at)
        record_queued(
            event_type=EventType.GRANT_ISSUED,
            actor=token_actor(token),
            subject=employee.hr_id,
            object_type="capture_grant",
            object_id=grant_id,
            region=employee.region_code,
            payload={
                "purpose": purpose,
                "categories": categories,
                "denied": {
                    result.category: [reason.code for reason in result.reasons]
                    for result in decision.categories
                    if result.reasons
                },
                "device_id": token.device_id,
                "subject": subject,
                "policy_version": decision.policy_version,
                "consent_version": decision.consent_version,
                "issued_at": issued_at,
                "expires_at": expires_at,
                # Which keys the agent got (never the keys themselves).
                "data_keys": {category: key.key_id for category, key in data_keys.items()},
            },
        )
    return IssuedGrant(grant=grant, jws=jws, data_keys=data_keys)


def decision_counters_add(*, day: date, purpose: str, reasons: Iterable[str]) -> None:
    """Count one denied check per reason code for the day and purpose (one atomic upsert).

    Counters are statistics, not evidence: on PostgreSQL their commit does not
    wait for the disk, so every denying agent does not queue behind one hot
    row's fsync. A crash can lose the last fraction of a second of counts.
    """
    rows = [(day, purpose, reason) for reason in sorted(set(reasons))]
    if not rows:
        return
    table = connection.ops.quote_name(DecisionCounter._meta.db_table)
    params = [value for row in rows for value in row]
    # Sorted rows take their locks in one order: concurrent upserts cannot deadlock.
    upsert = f" ON CONFLICT (day, purpose, reason) DO UPDATE SET count = {table}.count + 1"
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # One statement in its own transaction, one round trip: set_config(..., true)
        # turns the flush wait off for that transaction, and its commit reads it.
        values = ", ".join(["(%s::date, %s, %s)"] * len(rows))
        sql = (
            f"INSERT INTO {table} (day, purpose, reason, count) "  # noqa: S608 - table name from model meta
            f"SELECT v.day, v.purpose, v.reason, 1 FROM (VALUES {values}) AS v(day, purpose, reason) "
            "CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS unflushed" + upsert
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    sql = (
        f"INSERT INTO {table} (day, purpose, reason, count) VALUES "  # noqa: S608 - table name from model meta
        + ", ".join(["(%s, %s, %s, 1)"] * len(rows))
        + upsert
    )
    # Inside a caller's transaction, a savepoint keeps a failed count from breaking it.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@cache
def _lock_query() -> tuple[str, ModelRows[Employee]]:
    rows = ModelRows(Employee, "e")
    quote = connection.ops.quote_name
    # The lock people.locks.employee_lock() takes, read and locked in one round trip.
    lock = employee_lock_clause()
    return f"SELECT {rows.columns} FROM {rows.table} WHERE e.{quote('id')} = %s{lock}", rows  # noqa: S608


def _lock_employee(pk: int) -> Employee:
    """The employee's row, locked until the transaction ends, read as it stands once the lock is ours.

    Its own statement, before the facts are read: in READ COMMITTED the next
    statement's snapshot then includes whatever the previous holder of the
    lock committed (a facts read in the same statement as the lock would
    use a snapshot taken before the wait, and could miss a withdrawal).
    """
    sql, rows = _lock_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    if row is None:
        raise Employee.DoesNotExist(pk)
    employee = rows.instance(row)
    # Only an outer join's missing row reads as None; this row has its primary key.
    assert employee is not None
    return employee


def capture_decide(
    *,
    token: ApiToken,
    request: engine.CaptureRequest,
    at: datetime | None = None,
    policy: engine.Policy | None = None,
    reads: CaptureReads | None = None,
) -> CaptureOutcome:
    """Decide a device's capture request for its own employee; issue a grant if anything is allowed.

    A first decision reads the employee's facts without a lock: a denial needs
    none, since denying is always safe. Only when something would be allowed
    is it decided again under the employee's row lock, the lock every consent
    change, pause, transfer and termination takes first: a change that commits
    while this request runs is then either seen or ordered after the grant.
    Services that append to the ledger under that lock take the employee
    first, then the audit head: one lock order everywhere, so no deadlock.

    The second decision is evaluated at a moment taken once the lock is
    held, not when the request arrived: a pause that committed while this
    request waited starts before that moment, so it is running, and the
    grant's issue time orders after every change that committed first.
    ``at`` fixes both moments instead (tests, replays). ``reads`` are the
    facts the caller already read for the first decision, and their moment.
    """
    policy = policy or current_policy()
    employee = token.employee
    # token_device_bound: only device tokens ask, and each has its employee.
    assert employee is not None
    if reads is None:
        first_at = at or timezone.now()
        first_facts = employee_facts(employee=employee, at=first_at)
    else:
        first_at, first_facts = reads.at, reads.facts
    decision = engine.decide_capture(policy, first_facts, request, at=first_at)
    grant = None
    if decision.allowed_categories:
        with transaction.atomic():
            employee = _lock_employee(employee.pk)
            locked_at = at or timezone.now()
            facts = employee_facts(employee=employee, at=locked_at)
            decision = engine.decide_capture(policy, facts, request, at=locked_at)
            if decision.allowed_categories:
                grant = grant_issue(token=token, employee=employee, purpose=request.purpose, decision=decision)
    codes = decision.reason_codes
    if codes:
        counted_purpose = request.purpose if request.purpose in policy.purposes else UNKNOWN_PURPOSE
        try:
            decision_counters_add(day=decision.at.astimezone(UTC).date(), purpose=counted_purpose, reasons=codes)
        except DatabaseError:
            # The answer is a denial either way; a lost count must not turn it into an error.
            logger.exception("could not count denied capture checks")
    return CaptureOutcome(decision_id=uuid.uuid4().hex, employee=employee.hr_id, decision=decision, grant=grant)


SIMULATION_ASSUMPTIONS = ("consent_granted_under_current_notice", "not_paused")


def capture_simulate(*, employee: Employee, request: engine.CaptureRequest, at: datetime) -> CaptureOutcome:
    """What the policy would answer for this employee at ``at``, without issuing a grant.

    An individual's consent choices and pauses are theirs alone (SPEC.md,
    "Freely given"), so the simulation assumes every requested pair is
    consented under the notice in force and nothing is paused: it shows what
    the policy (region, preconditions, purposes, exclusions) decides.
    """
    policy = current_policy()
    facts = employee_facts(employee=employee, at=at)
    notice = policy.notice_at(at)
    assumed = {
        (request.purpose, category): engine.ConsentFacts(
            state=engine.ConsentEventKind.GRANTED, notice_version=notice.version if notice else 0, since=at
        )
        for category in request.categories
    }
    facts = replace(facts, consents=assumed, consent_version=0, pauses=())
    decision = engine.decide_capture(policy, facts, request, at=at)
    return CaptureOutcome(decision_id=uuid.uuid4().hex, employee=employee.hr_id, decision=decision, grant=None)


def use_batch_record(
    *,
    token: ApiToken,
    batch_id: str,
    purpose: str,
    media_type: str,
    evaluated_at: datetime,
    policy_version: str,
    allowed: int,
    denied: int,
    by_reason: Mapping[str, int],
    records_digest: str,
    complete: bool,
    idempotency_key: str = "",
    released_keys: Collection[str] | None = None,
) -> None:
    """One audit entry per use batch: counts by reason and a digest of the record ids.

    The digest (SHA-256 over each record id and a newline, in input order)
    lets an auditor check a pipeline's own log of the batch against the
    ledger without the ledger holding millions of ids. A retried batch is
    decided again (a withdrawal in between must count) and carries the same
    ``Idempotency-Key``, so the ledger shows the retries as one batch.

    With ``released_keys`` (the batch asked for data keys) a second entry in
    the same transaction names the keys handed out (their ids, or a digest and
    the count when there are many), before any key leaves the server.
    """
    payload: dict[str, Any] = {
        "purpose": purpose,
        "media_type": media_type,
        "evaluated_at": evaluated_at,
        "policy_version": policy_version,
        "records": allowed + denied,
        "allowed": allowed,
        "denied": denied,
        "by_reason": dict(sorted(by_reason.items())),
        "records_sha256": records_digest,
        "complete": complete,
        "pipeline": token.name,
    }
    if idempotency_key:
        payload["idempotency_key"] = idempotency_key
    with transaction.atomic():
        record(
            event_type=EventType.USE_BATCH_DECIDED,
            actor=token_actor(token),
            object_type="use_batch",
            object_id=batch_id,
            payload=payload,
        )
        if released_keys is not None:
            record(
                event_type=EventType.DATA_KEYS_RELEASED,
                actor=token_actor(token),
                object_type="use_batch",
                object_id=batch_id,
                payload={"purpose": purpose, "pipeline": token.name, **keys_release_payload(released_keys)},
            )
