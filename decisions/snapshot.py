"""The compiled policy: built once per policy revision, shared by every request.

``current_policy()`` costs one primary-key read per request (the
``PolicyRevision`` row every governance service bumps). When the revision
differs from the cached one, the process compiles every approved rule,
region group, category, purpose, notice, exclusion, retention policy and
legal instrument into an immutable ``engine.Policy`` whose ``version`` is the
SHA-256 of its canonical content. Rules, notices and instruments keep their
periods, so a rule that comes into force later is still chosen correctly by
``at`` without a rebuild.

Nothing about individual employees is in here (their location, consent,
acknowledgements and pauses are read per request), so a cached snapshot can
never let an allow outlive a withdrawal, pause, transfer or termination.
Only per-employee legal instruments (biometric releases) are policy: saving
one bumps the revision like any other instrument.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from django.db import connection, transaction

from audit.chain import canonical_json
from decisions import engine
from governance.models import (
    ApprovalState,
    ContextExclusion,
    DataCategory,
    JurisdictionRule,
    LegalInstrument,
    Notice,
    NoticeItem,
    PolicyRevision,
    Purpose,
    Region,
    RegionKind,
    RetentionPolicy,
)

Marker = tuple[int, datetime | None]


def as_marker(revision: int | None, changed_at: datetime | str | None) -> Marker:
    """The marker of a revision row's two columns, the same whichever statement read them.

    SQLite returns a naive UTC time, or text when the column is reached
    through a derived table; a missing row is revision 0, changed never.
    """
    if revision is None:
        return (0, None)
    if isinstance(changed_at, str):
        changed_at = datetime.fromisoformat(changed_at)
    if changed_at is not None and changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=UTC)
    return (revision, changed_at)


def revision_marker() -> Marker:
    """The policy revision and when it changed: the cheap "has policy changed?" read.

    The time is part of the marker so a database restored to an older
    revision number (or a test rolled back) is never mistaken for the same policy.
    """
    # Plain SQL: this runs on every decision, and a queryset's compilation costs more than the read.
    table = connection.ops.quote_name(PolicyRevision._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT revision, changed_at FROM {table} WHERE id = 1")  # noqa: S608 - table from model meta
        row = cursor.fetchone()
    return as_marker(*row) if row else (0, None)


RULE_FIELDS = (
    "pk",
    "region_id",
    "status",
    "preconditions",
    "blocked_categories",
    "max_retention_days",
    "effective_from",
    "effective_to",
)


def engine_rule(row: dict[str, Any]) -> engine.Rule:
    """The engine's view of a ``JurisdictionRule`` read with ``values(*RULE_FIELDS)``."""
    return engine.Rule(
        id=row["pk"],
        region=row["region_id"],
        status=row["status"],
        preconditions=tuple(row["preconditions"]),
        blocked_categories=frozenset(row["blocked_categories"]),
        max_retention_days=MappingProxyType(dict(row["max_retention_days"])),
        effective_from=row["effective_from"],
        effective_to=row["effective_to"],
    )


def _compile_glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern.strip().lower()))


def _notices(content: dict[str, Any]) -> tuple[engine.Notice, ...]:
    items: dict[int, list[tuple[str, str, str, bool]]] = defaultdict(list)
    for notice_id, purpose, category, description, reconsent in NoticeItem.objects.filter(
        notice__state=ApprovalState.APPROVED
    ).values_list("notice_id", "purpose_id", "category_id", "description", "requires_reconsent"):
        items[notice_id].append((purpose, category, description, reconsent))
    compiled = []
    reconsent_from: dict[tuple[str, str], int] = {}
    previous: dict[tuple[str, str], str] = {}
    since: dict[tuple[str, str], int] = {}
    rows = Notice.objects.filter(state=ApprovalState.APPROVED).order_by("version")
    for pk, version, published_at in rows.values_list("pk", "version", "published_at"):
        wording = {(p, c): text for p, c, text, _ in items[pk]}
        for p, c, _text, reconsent in items[pk]:
            if reconsent:
                reconsent_from[(p, c)] = version
        since = {pair: since[pair] if previous.get(pair) == text else version for pair, text in wording.items()}
        previous = wording
        # notice_approved_has_publication: an approved notice always has its publication time.
        assert published_at is not None
        compiled.append(
            engine.Notice(
                version=version,
                published_at=published_at,
                pairs=frozenset(wording),
                reconsent_from=MappingProxyType(dict(reconsent_from)),
                declared_since=MappingProxyType(dict(since)),
            )
        )
        content["notices"].append(
            {
                "version": version,
                "published_at": published_at,
                "items": sorted([p, c, hashlib.sha256(t.encode()).hexdigest(), r] for p, c, t, r in items[pk]),
            }
        )
    return tuple(compiled)


def build_policy() -> tuple[Marker, engine.Policy]:
    """Compile the approved policy from the database, with the revision it reflects."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            # One consistent view of all tables, and of the revision read with them.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        marker = revision_marker()
        content: dict[str, Any] = defaultdict(list)

        rules: dict[str, list[engine.Rule]] = defaultdict(list)
        for row in (
            JurisdictionRule.objects.filter(state=ApprovalState.APPROVED)
            .order_by("region_id", "-effective_from", "pk")
            .values(*RULE_FIELDS)
        ):
            rules[row["region_id"]].append(engine_rule(row))
            content["rules"].append(row)

        groups: dict[str, list[str]] = defaultdict(list)
        membership = Region.members.through.objects.filter(from_region__kind=RegionKind.GROUP)
        for group, member in membership.order_by("from_region_id", "to_region_id").values_list(
            "from_region_id", "to_region_id"
        ):
            groups[member].append(group)
            content["groups"].append([group, member])

        categories = {}
        for slug, biometric, sensitive in DataCategory.objects.order_by("slug").values_list(
            "slug", "biometric", "sensitive"
        ):
            categories[slug] = engine.Category(slug=slug, biometric=biometric, sensitive=sensitive)
            content["categories"].append([slug, biometric, sensitive])

        purpose_categories: dict[str, set[str]] = defaultdict(set)
        for purpose, category in Purpose.categories.through.objects.values_list("purpose_id", "datacategory_id"):
            purpose_categories[purpose].add(category)
        purposes = {}
        for slug, prohibited in Purpose.objects.order_by("slug").values_list("slug", "prohibited"):
            purposes[slug] = engine.Purpose(
                slug=slug, categories=frozenset(purpose_categories[slug]), prohibited=prohibited
            )
            content["purposes"].append([slug, prohibited, sorted(purpose_categories[slug])])

        notices = _notices(content)

        exclusions = []
        for kind, pattern, label, reason, slugs in ContextExclusion.objects.order_by("kind", "pattern").values_list(
            "kind", "pattern", "label", "reason", "categories"
        ):
            exclusions.append(
                engine.Exclusion(
                    kind=kind,
                    pattern=_compile_glob(pattern),
                    label=label,
                    reason=reason,
                    categories=frozenset(slugs),
                )
            )
            content["exclusions"].append([kind, pattern, reason, sorted(slugs)])

        retention: dict[str, list[engine.Retention]] = defaultdict(list)
        for category, region, purpose, raw, termination in RetentionPolicy.objects.order_by("pk").values_list(
            "category_id", "region_id", "purpose_id", "raw_retention_days", "delete_on_termination_days"
        ):
            retention[category].append(
                engine.Retention(
                    category=category,
                    region=region or "",
                    purpose=purpose or "",
                    raw_retention_days=raw,
                    delete_on_termination_days=termination,
                )
            )
            content["retention"].append([category, region, purpose, raw, termination])

        instruments: dict[tuple[str, str], list[engine.Instrument]] = defaultdict(list)
        for pk, kind, region, entity, site, hr_id, valid_from, valid_to in LegalInstrument.objects.order_by(
            "pk"
        ).values_list("pk", "kind", "region_id", "entity", "site", "employee__hr_id", "valid_from", "valid_to"):
            instruments[(kind, hr_id or "")].append(
                engine.Instrument(
                    kind=kind,
                    region=region,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    entity=entity,
                    site=site,
                    employee=hr_id or "",
                )
            )
            content["instruments"].append([pk, kind, region, entity, site, hr_id, valid_from, valid_to])

    policy = engine.Policy(
        version=hashlib.sha256(canonical_json(dict(content))).hexdigest(),
        rules=MappingProxyType({code: tuple(items) for code, items in rules.items()}),
        groups=MappingProxyType({code: tuple(sorted(items)) for code, items in groups.items()}),
        categories=MappingProxyType(categories),
        purposes=MappingProxyType(purposes),
        notices=notices,
        exclusions=tuple(exclusions),
        retention=MappingProxyType({slug: tuple(items) for slug, items in retention.items()}),
        instruments=MappingProxyType({key: tuple(items) for key, items in instruments.items()}),
    )
    return marker, policy


@dataclass(frozen=True, slots=True)
class _Cached:
    marker: Marker
    policy: engine.Policy


_cached: _Cached | None = None
_rebuild = threading.Lock()


def current_policy(marker: Marker | None = None) -> engine.Policy:
    """The policy in force for this process: one indexed read, a rebuild only on change.

    ``marker`` is ``revision_marker()`` when the caller read it already (in
    the same statement as something else it needs).
    """
    global _cached
    marker = marker or revision_marker()
    cached = _cached
    if cached is not None and cached.marker == marker:
        return cached.policy
    with _rebuild:
        # Another thread may have rebuilt while this one waited.
        cached = _cached
        if cached is not None and cached.marker == marker:
            return cached.policy
        built_marker, policy = build_policy()
        _cached = _Cached(built_marker, policy)
    return policy
