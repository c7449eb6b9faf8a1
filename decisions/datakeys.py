"""Data keys: issued with capture grants, released to pipelines, destroyed to shred data.

One AES-256 key per employee × category × UTC day, made the first time a
grant needs it and stored only wrapped under the master key (``decisions.kms``).
Agents encrypt what they capture with it; a pipeline gets it only for records
the use decision allows; destroying it makes every copy of the data
unreadable wherever it went (crypto-shredding).

A key is destroyed, with a tombstone (``DestroyedKey``), one audit entry per
key and a ``keys_destroyed`` revocation through the outbox, when:

- the employee asks for erasure (``destroy_employee_keys``, reason ``erasure``);
- every purpose it was handed out for stands withdrawn for its category and
  the strictest deletion-on-withdrawal window has passed (``withdrawal``);
- the employee was terminated and the strictest termination window passed
  (``termination``);
- the whole day is older than the strictest raw retention limit of where the
  data was captured and where the employee works now, for every purpose it
  served (``retention``).

The last three are found by ``sweep_overdue_keys`` (beat task
``decisions.data_key_sweep``), in small batches, each its own transaction
holding its keys' row locks (``SKIP LOCKED`` on PostgreSQL): a worker killed
at any point loses nothing and destroys nothing twice, and a rerun finishes.
A key whose limits are not configured at all is kept (missing configuration
is reported, not treated as expiry); the use decision denies its records anyway.

Once a day's key is destroyed no new key is made for that employee, category
and day: records of that day can only ever deny with ``data_key_destroyed``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.actors import Actor
from audit.models import EventType
from audit.services import record, record_many
from consent.models import ConsentEventKind, ConsentState
from consentry import outbox
from consentry.outbox import KeysDestroyed, Topic
from decisions import engine
from decisions.kms import DATA_KEY_BYTES, KeyEncryptionKey, key_encryption_key
from decisions.models import DataKey, DestroyedKey, DestructionReason
from decisions.snapshot import current_policy
from governance.models import RetentionPolicy
from governance.selectors import retention_for
from people.locks import employee_lock
from people.models import Employee, EmployeeStatus

logger = logging.getLogger(__name__)

KEY_ID_PREFIX = "k_"
# Above this many released keys an audit entry keeps a digest of the ids instead of the list.
AUDIT_KEY_LIST_LIMIT = 1000
RELEASE_BATCH = 1000
SWEEP_ACTOR = Actor.system("key-sweep")
REASONS = frozenset(DestructionReason.values)


def new_key_id() -> str:
    """A public key id: random, so it reveals neither the employee nor the day."""
    return KEY_ID_PREFIX + secrets.token_urlsafe(16)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, clock.min, tzinfo=UTC)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    key: bytes = field(repr=False)


# Issuing ---------------------------------------------------------------------------------


def data_keys_for_grant(
    *, employee: Employee, categories: Iterable[str], purpose: str, at: datetime
) -> dict[str, IssuedKey]:
    """Today's data key for each category of a grant, made if it does not exist yet.

    Call inside the grant's transaction, holding the employee's row lock (as
    ``grant_issue`` does): keys of one employee are then made one request at
    a time, and the unique constraint with ``ON CONFLICT DO NOTHING`` keeps
    even a caller without the lock from making a second key for a day. A
    category whose key for today was destroyed gets none: the agent captures
    nothing it could not protect.
    """
    day = utc_day(at)
    wanted = sorted(set(categories))
    rows, gone = _day_keys(employee_id=employee.pk, day=day, categories=wanted)
    wanted = [category for category in wanted if category not in gone]
    if not wanted:
        return {}
    missing = [category for category in wanted if category not in rows]
    kek = key_encryption_key()
    if missing:
        fresh = []
        for category in missing:
            key_id = new_key_id()
            fresh.append(
                DataKey(
                    id=key_id,
                    employee=employee,
                    category=category,
                    day=day,
                    purposes=[purpose],
                    country=employee.country,
                    subdivision=employee.subdivision,
                    wrapped=kek.wrap(secrets.token_bytes(DATA_KEY_BYTES), key_id=key_id),
                    master_version=kek.version,
                    created_at=at,
                )
            )
        DataKey.objects.bulk_create(fresh, ignore_conflicts=True)
        made, _ = _day_keys(employee_id=employee.pk, day=day, categories=missing)
        rows.update(made)
    issued = {}
    for category, (key_id, wrapped, version, purposes) in sorted(rows.items()):
        if purpose not in purposes:
            # Retention and withdrawal follow every purpose the key served.
            DataKey.objects.filter(pk=key_id).update(purposes=sorted({*purposes, purpose}))
        issued[category] = IssuedKey(key_id=key_id, key=kek.unwrap(wrapped, key_id=key_id, version=version))
    return issued


def _day_keys(
    *, employee_id: int, day: date, categories: list[str]
) -> tuple[dict[str, tuple[str, bytes, str, list[str]]], set[str]]:
    """One employee's keys of ``day`` for ``categories`` (category → id, wrapped, master version,
    purposes), and the categories whose key of that day was destroyed: one round trip, in the
    grant's transaction."""
    q = connection.ops.quote_name
    keys, tombstones = q(DataKey._meta.db_table), q(DestroyedKey._meta.db_table)
    postgresql = connection.vendor == "postgresql"
    among = "= ANY(%s)" if postgresql else f"IN ({', '.join(['%s'] * len(categories))})"
    chosen = [categories] if postgresql else categories
    # The day as the backend stores it (ISO text on SQLite).
    when = connection.ops.adapt_datefield_value(day)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT category, id, wrapped, master_version, purposes FROM {keys} "  # noqa: S608
            f"WHERE employee_id = %s AND day = %s AND category {among} "
            f"UNION ALL SELECT category, NULL, NULL, NULL, NULL FROM {tombstones} "
            f"WHERE employee_id = %s AND day = %s AND category {among}",
            [employee_id, when, *chosen, employee_id, when, *chosen],
        )
        found = cursor.fetchall()
    rows, gone = {}, set()
    for category, key_id, wrapped, version, purposes in found:
        if key_id is None:
            gone.add(category)
        else:
            listed = purposes if isinstance(purposes, list) else json.loads(purposes)
            rows[category] = (key_id, bytes(wrapped), version, listed)
    return rows, gone


# Looking up and releasing ----------------------------------------------------------------

Triple = tuple[str, str, date]  # (employee hr id, category, UTC day)
DESTROYED = "destroyed"


def key_states(triples: Collection[Triple], *, key_ids: bool = True) -> dict[Triple, str]:
    """For each (hr id, category, day): its key id, or ``DESTROYED``; absent when no key was ever made.

    A tombstone wins over a live row (a key made while its day was being
    destroyed is never released, and the next sweep destroys it). Without
    ``key_ids`` only tombstones are read: a use decision that releases no key
    needs to know what is destroyed, not which key a day has. Plain SQL: a
    stream asks this for thousands of triples a second, and compiling an ORM
    filter with thousands of parameters cost more than the query.
    """
    if not triples:
        return {}
    wanted = set(triples)
    hr_ids = sorted({hr_id for hr_id, _, _ in wanted})
    days = [day for _, _, day in wanted]
    q = connection.ops.quote_name
    employee = q(Employee._meta.db_table)
    postgresql = connection.vendor == "postgresql"
    among = "= ANY(%s)" if postgresql else f"IN ({', '.join(['%s'] * len(hr_ids))})"
    params: list[str | date | list[str]] = [hr_ids] if postgresql else list(hr_ids)
    params += [min(days), max(days)]
    tables = [(q(DestroyedKey._meta.db_table), "NULL")]
    if key_ids:
        tables.insert(0, (q(DataKey._meta.db_table), "k.id"))
    found: dict[Triple, str] = {}
    with connection.cursor() as cursor:
        # Live keys first, so a tombstone read after them wins.
        for table, key_column in tables:
            cursor.execute(
                f"SELECT {key_column}, e.hr_id, k.category, k.day FROM {table} k "  # noqa: S608
                f"JOIN {employee} e ON e.id = k.employee_id WHERE e.hr_id {among} AND k.day BETWEEN %s AND %s",
                params,
            )
            for key_id, hr_id, category, day in cursor.fetchall():
                triple = (hr_id, category, day if isinstance(day, date) else date.fromisoformat(day))
                if triple in wanted:
                    found[triple] = key_id if key_id is not None else DESTROYED
    return found


def data_keys_release(key_ids: Iterable[str], *, kek: KeyEncryptionKey | None = None) -> Iterator[tuple[str, str]]:
    """(key id, base64 key) for each of ``key_ids`` that still exists, read and unwrapped a batch at a time.

    A key destroyed since the use decision is simply left out: a destroyed
    key is never released.
    """
    kek = kek or key_encryption_key()
    batch: list[str] = []

    def flush() -> Iterator[tuple[str, str]]:
        rows = DataKey.objects.filter(pk__in=batch).order_by("id").values_list("id", "wrapped", "master_version")
        for key_id, wrapped, version in rows:
            yield key_id, b64(kek.unwrap(wrapped, key_id=key_id, version=version))

    for key_id in key_ids:
        batch.append(key_id)
        if len(batch) >= RELEASE_BATCH:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def key_ids_digest(key_ids: Iterable[str]) -> str:
    """SHA-256 over the sorted key ids, each followed by a newline: what a large release's audit entry keeps."""
    digest = hashlib.sha256()
    for key_id in sorted(key_ids):
        digest.update(key_id.encode() + b"\n")
    return digest.hexdigest()


def keys_release_payload(key_ids: Collection[str]) -> dict:
    payload: dict = {"keys_released": len(key_ids)}
    if len(key_ids) <= AUDIT_KEY_LIST_LIMIT:
        payload["key_ids"] = sorted(key_ids)
    else:
        payload["key_ids_sha256"] = key_ids_digest(key_ids)
    return payload


# Destroying ------------------------------------------------------------------------------


def _destroy(doomed: list[tuple[DataKey, str]], *, actor: Actor, at: datetime) -> int:
    """Delete locked key rows, write their tombstones, one audit entry each, and the revocations.

    Runs inside the caller's transaction, which holds the rows' locks. The
    tombstone's primary key is the key id: a second destruction of the same
    key fails the whole transaction instead of happening twice.
    """
    if not doomed:
        return 0
    ids = [key.id for key, _ in doomed]
    deleted, _ = DataKey.objects.filter(pk__in=ids).delete()
    if deleted != len(ids):
        raise RuntimeError(f"expected to destroy {len(ids)} data keys, found {deleted}")
    DestroyedKey.objects.bulk_create(
        [
            DestroyedKey(
                key_id=key.id,
                employee_id=key.employee_id,
                category=key.category,
                day=key.day,
                reason=reason,
                destroyed_at=at,
            )
            for key, reason in doomed
        ]
    )
    people = dict(Employee.objects.filter(pk__in={key.employee_id for key, _ in doomed}).values_list("pk", "hr_id"))
    counts = Counter(reason for _, reason in doomed)
    revocations: dict[tuple[int, str, str], list[DataKey]] = defaultdict(list)
    entries = []
    for key, reason in doomed:
        entries.append(
            {
                "event_type": EventType.DATA_KEY_DESTROYED,
                "actor": actor,
                "subject": people[key.employee_id],
                "object_type": "data_key",
                "object_id": key.id,
                "payload": {
                    "key_id": key.id,
                    "reason": reason,
                    "category": key.category,
                    "day": key.day.isoformat(),
                    "purposes": list(key.purposes),
                    "batch_size": len(doomed),
                    "batch_by_reason": dict(sorted(counts.items())),
                },
                "at": at,
            }
        )
        for purpose in key.purposes or [""]:
            revocations[(key.employee_id, reason, purpose)].append(key)
    # One entry per key, appended in one round trip under one head lock.
    record_many(entries)
    for (employee_id, reason, purpose), keys in sorted(revocations.items()):
        payload = KeysDestroyed(
            employee=employee_id,
            categories=sorted({key.category for key in keys}),
            keys=sorted(key.id for key in keys),
            reason=reason,
            purpose=purpose or None,
            at=at,
        )
        outbox.publish(topic=Topic.KEYS_DESTROYED, payload=payload)
    return len(doomed)


def destroy_employee_keys(*, employee: Employee, reason: str, actor: Actor) -> int:
    """Destroy every data key of ``employee`` now (erasure, or any other reason); returns how many.

    Takes the employee's row lock first, as grants do, so no key is made for
    the employee while its keys are being destroyed; tombstones then keep the
    destroyed days from ever getting a key again. Idempotent: a second call
    finds no keys and destroys nothing.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown destruction reason {reason!r}")
    at = timezone.now()
    with transaction.atomic():
        employee = employee_lock(employee_id=employee.pk)
        keys = list(DataKey.objects.select_for_update().filter(employee=employee).order_by("id"))
        return _destroy([(key, reason) for key in keys], actor=actor, at=at)


# The sweep -------------------------------------------------------------------------------


@dataclass
class SweepResult:
    destroyed: Counter = field(default_factory=Counter)
    batches: int = 0
    complete: bool = True

    @property
    def total(self) -> int:
        return sum(self.destroyed.values())


class _Limits:
    """Retention limits for the keys of one sweep, computed once per scope, purpose and category."""

    def __init__(self, policy: engine.Policy, at: datetime):
        self.policy = policy
        self.at = at
        self._withdrawal: dict[tuple[tuple[str, ...], str, str], int | None] = {}

    def scopes(self, key: DataKey, employee: Mapping[str, Any]) -> tuple[engine.Scope, engine.Scope]:
        policy = self.policy
        chain = policy.chain(key.country, key.subdivision)
        captured = (chain, policy.rule_at(chain, key.created_at))
        facts = engine.EmployeeFacts(
            hr_id=employee["hr_id"], country=employee["country"], subdivision=employee["subdivision"]
        )
        return captured, engine.current_scope(policy, facts, self.at)

    def raw_and_termination(self, scopes, purpose: str, category: str) -> tuple[int | None, int]:
        return engine.scoped_limits(self.policy, scopes[0], scopes[1], purpose, category)

    def withdrawal_days(self, scopes, purpose: str, category: str) -> int | None:
        codes = tuple(sorted({*scopes[0][0], *scopes[1][0]}))
        key = (codes, purpose, category)
        if key not in self._withdrawal:
            limits = retention_for(codes=list(codes), purpose=purpose, category=category)
            self._withdrawal[key] = limits.withdrawal_days if limits else None
        return self._withdrawal[key]


def _due(
    key: DataKey,
    employee: Mapping[str, Any],
    consents: Mapping[tuple[int, str, str], tuple[str, datetime | None]],
    limits: _Limits,
    at: datetime,
) -> str | None:
    """Why ``key`` must be destroyed at ``at``, or None (also when its limits are not configured)."""
    scopes = limits.scopes(key, employee)
    purposes = list(key.purposes)
    day_end = day_start(key.day + timedelta(days=1))
    per_purpose = [limits.raw_and_termination(scopes, purpose, key.category) for purpose in purposes]
    configured = [(raw, termination) for raw, termination in per_purpose if raw is not None]

    # Withdrawal: every purpose the key served is withdrawn for its category,
    # covering the whole day, and the strictest deletion window has passed.
    deadlines = []
    for purpose in purposes:
        state = consents.get((key.employee_id, purpose, key.category))
        if state is None:
            break
        kind, withdrawn_at = state
        if not withdrawn_at or not (kind == ConsentEventKind.WITHDRAWN or withdrawn_at >= day_end):
            break
        window = limits.withdrawal_days(scopes, purpose, key.category)
        if window is None:
            break
        deadlines.append(withdrawn_at + timedelta(days=window))
    else:
        if deadlines and max(deadlines) <= at:
            return DestructionReason.WITHDRAWAL

    if not configured:
        return None
    terminated_at = employee["terminated_at"]
    if employee["status"] == EmployeeStatus.TERMINATED and terminated_at is not None:
        window = min(termination for _, termination in configured)
        if terminated_at + timedelta(days=window) <= at:
            return DestructionReason.TERMINATION
    raw = min(raw for raw, _ in configured)
    # Every record of the day is past the limit once the day's last moment is.
    if day_end + timedelta(days=raw) <= at:
        return DestructionReason.RETENTION
    return None


def _candidates(policy: engine.Policy, at: datetime):
    """Keys that could be due: old enough for the shortest limit anywhere, or of a withdrawn or departed employee."""
    shortest = list(RetentionPolicy.objects.values_list("raw_retention_days", flat=True))
    shortest += [days for rules in policy.rules.values() for rule in rules for days in rule.max_retention_days.values()]
    employees = Q(employee_id__in=ConsentState.objects.filter(withdrawn_at__isnull=False).values("employee_id")) | Q(
        employee_id__in=Employee.objects.filter(status=EmployeeStatus.TERMINATED).values("pk")
    )
    if shortest:
        # day_end + raw <= at  ⇔  day <= at's day - raw - 1 (day_end is midnight after the day).
        employees |= Q(day__lte=utc_day(at) - timedelta(days=min(shortest) + 1))
    return DataKey.objects.filter(employees)


def sweep_overdue_keys(
    *,
    at: datetime | None = None,
    batch_size: int | None = None,
    deadline: float | None = None,
    actor: Actor = SWEEP_ACTOR,
) -> SweepResult:
    """Destroy every key past its withdrawal, termination or retention limit; returns what it did.

    Walks candidate keys in id order, ``batch_size`` at a time, each batch in
    its own transaction that locks its rows (skipping rows another sweep
    holds), decides each key and destroys the due ones with their audit
    entries and revocations. Stops early, between batches, once the monotonic
    ``deadline`` passes (``complete`` is then False); the next run continues.
    """
    at = at or timezone.now()
    size = batch_size or settings.CONSENTRY_KEY_SWEEP_BATCH
    policy = current_policy()
    limits = _Limits(policy, at)
    candidates = _candidates(policy, at).only(
        "id", "employee_id", "category", "day", "purposes", "country", "subdivision", "created_at"
    )
    result = SweepResult()
    after = ""
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            result.complete = False
            break
        with transaction.atomic():
            rows = candidates.filter(id__gt=after).order_by("id")
            if connection.vendor == "postgresql":
                rows = rows.select_for_update(skip_locked=True, of=("self",))
            batch = list(rows[:size])
            if not batch:
                break
            after = batch[-1].id
            people = {
                row["pk"]: row
                for row in Employee.objects.filter(pk__in={key.employee_id for key in batch}).values(
                    "pk", "hr_id", "country", "subdivision", "status", "terminated_at"
                )
            }
            consents = {
                (employee_id, purpose, category): (state, withdrawn_at)
                for employee_id, purpose, category, state, withdrawn_at in ConsentState.objects.filter(
                    employee_id__in=people, withdrawn_at__isnull=False
                ).values_list("employee_id", "purpose_id", "category_id", "state", "withdrawn_at")
            }
            doomed = []
            for key in batch:
                reason = _due(key, people[key.employee_id], consents, limits, at)
                if reason is not None:
                    doomed.append((key, reason))
            _destroy(doomed, actor=actor, at=at)
        result.batches += 1
        result.destroyed.update(reason for _, reason in doomed)
    if result.total:
        logger.info("data key sweep destroyed %s", dict(result.destroyed))
    return result


# Master-key rotation ---------------------------------------------------------------------


def data_keys_rewrap(*, kek: KeyEncryptionKey, actor: Actor, batch_size: int = 500) -> int:
    """Re-wrap one batch of keys still under an older master version; returns how many (0: done).

    The data keys themselves do not change, so nothing encrypted with them
    does either. Rows held by another rotation are skipped, so two can run.
    """
    with transaction.atomic():
        rows = DataKey.objects.exclude(master_version=kek.version).order_by("id")
        if connection.vendor == "postgresql":
            rows = rows.select_for_update(skip_locked=True)
        batch = list(rows.only("id", "wrapped", "master_version")[:batch_size])
        if not batch:
            return 0
        versions = Counter(key.master_version for key in batch)
        for key in batch:
            plain = kek.unwrap(key.wrapped, key_id=key.id, version=key.master_version)
            key.wrapped = kek.wrap(plain, key_id=key.id)
            key.master_version = kek.version
        DataKey.objects.bulk_update(batch, ["wrapped", "master_version"])
        record(
            event_type=EventType.DATA_KEYS_REWRAPPED,
            actor=actor,
            object_type="master_key",
            object_id=kek.version,
            payload={"count": len(batch), "from": dict(sorted(versions.items())), "to": kek.version},
        )
    return len(batch)


def master_key_rotation_complete(*, kek: KeyEncryptionKey, actor: Actor, rewrapped: int) -> None:
    """Record that no data key is left under an older master version (they may now be retired)."""
    with transaction.atomic():
        record(
            event_type=EventType.MASTER_KEY_ROTATED,
            actor=actor,
            object_type="master_key",
            object_id=kek.version,
            payload={"version": kek.version, "rewrapped": rewrapped, "keys": DataKey.objects.count()},
        )
