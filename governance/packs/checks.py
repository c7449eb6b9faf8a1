"""Checking what a pack means: codes exist, references resolve, periods do not clash.

Runs after the structure check, reads the database but never writes to it,
and reports every problem at once. Each check guards its own types, so an
entry the schema already rejected does not hide problems elsewhere, and a
path the schema already reported is not reported twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Max

from governance.models import (
    ApprovalState,
    DataCategory,
    JurisdictionRule,
    LegalInstrument,
    Notice,
    Purpose,
    Region,
    RegionKind,
)
from governance.packs.entries import (
    PUBLISHED_STATES,
    NoticeContent,
    format_date,
    format_datetime,
    format_period,
    notice_step,
    parse_date,
    parse_datetime,
    periods_overlap,
)
from governance.packs.provenance import PackHistory
from governance.packs.source import NodePath, PackError, PackSource, format_path
from governance.packs.structure import structure_errors
from people.iso3166 import country_name, is_known, subdivision_name


@dataclass(frozen=True, slots=True)
class _KnownPurpose:
    categories: frozenset[str]
    prohibited: bool


@dataclass
class _Context:
    """What a pack may refer to: its own declarations plus what the database holds."""

    source: PackSource
    # Paths the schema already reported: a wrong shape is said once, not again as a wrong meaning.
    structural: set[str]
    # What earlier loads applied: such entries are not applied again, so they cannot clash.
    history: PackHistory = field(default_factory=lambda: PackHistory(fingerprints=frozenset(), files=frozenset()))
    reported: set[str] = field(default_factory=set)
    errors: list[PackError] = field(default_factory=list)
    regions: set[str] = field(default_factory=set)
    categories: set[str] = field(default_factory=set)
    purposes: dict[str, _KnownPurpose] = field(default_factory=dict)

    def error(self, path: NodePath, message: str) -> None:
        formatted = format_path(path)
        if formatted in self.structural:
            return
        error = self.source.error(path, message)
        if error not in self.errors:
            self.reported.add(formatted)
            self.errors.append(error)

    def reported_under(self, path: NodePath) -> bool:
        prefix = format_path(path)
        return any(p == prefix or p.startswith((f"{prefix}.", f"{prefix}[")) for p in self.reported | self.structural)

    def duplicate(self, seen: dict[Hashable, NodePath], key: Hashable, path: NodePath, what: str) -> bool:
        """Report ``key`` if an earlier entry had it; remember it otherwise."""
        if key in seen:
            self.error(path, f"{what} is listed twice (first at line {self.source.line_of(seen[key])})")
            return True
        seen[key] = path
        return False


def check_pack(source: PackSource) -> list[PackError]:
    """Every problem in the pack, in file order; empty when it can be loaded."""
    errors = [*source.errors, *structure_errors(source)]
    if isinstance(source.data, dict):
        context = _context(source, structural={error.path for error in errors})
        for check in _CHECKS:
            check(context)
        errors += context.errors
    return sorted(errors, key=lambda error: (error.line or 0, error.column or 0, error.path))


def _context(source: PackSource, *, structural: set[str]) -> _Context:
    context = _Context(source=source, structural=structural, history=PackHistory.from_ledger())
    context.regions = set(Region.objects.values_list("code", flat=True))
    context.categories = set(DataCategory.objects.values_list("slug", flat=True))
    for purpose in Purpose.objects.prefetch_related("categories"):
        context.purposes[purpose.slug] = _KnownPurpose(
            categories=frozenset(c.slug for c in purpose.categories.all()), prohibited=purpose.prohibited
        )
    return context


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _check_region_ref(context: _Context, path: NodePath, code: Any) -> None:
    # An ISO code the pack does not declare is fine: loading creates it.
    if isinstance(code, str) and code not in context.regions and not is_known(code):
        context.error(path, f"{code!r} is not a known ISO 3166 code or declared group")


def _check_category_ref(context: _Context, path: NodePath, slug: Any) -> None:
    if isinstance(slug, str) and slug not in context.categories:
        context.error(path, f"{slug!r} is not a known data category (declare it under categories)")


def _check_purpose_ref(context: _Context, path: NodePath, slug: Any) -> None:
    if isinstance(slug, str) and slug not in context.purposes:
        context.error(path, f"{slug!r} is not a known purpose (declare it under purposes)")


def _check_period(
    context: _Context,
    path: NodePath,
    entry: dict[str, Any],
    keys: tuple[str, str],
    parse: Callable[[Any], Any],
    *,
    may_end_on_start: bool,
) -> tuple[Any, Any]:
    """Parse a start and optional end; the end must come after the start."""
    start_key, end_key = keys
    start, end = parse(entry.get(start_key)), parse(entry.get(end_key))
    for key, value in ((start_key, start), (end_key, end)):
        if value is None and isinstance(entry.get(key), str):
            context.error((*path, key), f"{entry[key]!r} is not a real date")
    if start is not None and end is not None and (end < start or (end == start and not may_end_on_start)):
        word = "on or after" if may_end_on_start else "after"
        context.error((*path, end_key), f"must be {word} {start_key} ({entry[start_key]})")
    return start, end


# Regions, categories, purposes ----------------------------------------------------------


def _region_code_problem(code: str, kind: Any) -> str:
    if kind == RegionKind.COUNTRY and not country_name(code):
        return f"{code!r} is not an ISO 3166-1 alpha-2 country code (e.g. US, DE)"
    if kind == RegionKind.SUBDIVISION and not subdivision_name(code):
        return f"{code!r} is not an ISO 3166-2 subdivision code (e.g. US-NY)"
    if kind == RegionKind.GROUP and (country_name(code) or not (code.isalnum() and code.isupper())):
        return f"group code {code!r} must be upper-case letters and digits, and not an ISO country code"
    return ""


def _check_regions(context: _Context) -> None:
    seen: dict[Hashable, NodePath] = {}
    for index, entry in context.source.section("regions"):
        path = ("regions", index)
        code, kind = entry.get("code"), entry.get("kind")
        if not isinstance(code, str) or context.duplicate(seen, code, (*path, "code"), f"region {code!r}"):
            continue
        problem = _region_code_problem(code, kind)
        if problem:
            context.error((*path, "code"), problem)
        else:
            context.regions.add(code)
        if "members" in entry and kind != RegionKind.GROUP:
            context.error((*path, "members"), "only groups have members")
        for position, member in enumerate(_list(entry.get("members"))):
            if not isinstance(member, str):
                continue
            if country_name(member):
                context.regions.add(member)
            else:
                context.error(
                    (*path, "members", position),
                    f"{member!r} is not an ISO 3166-1 country code; group members must be countries",
                )


def _check_categories(context: _Context) -> None:
    seen: dict[Hashable, NodePath] = {}
    for index, entry in context.source.section("categories"):
        slug = entry.get("slug")
        if isinstance(slug, str) and not context.duplicate(
            seen, slug, ("categories", index, "slug"), f"category {slug!r}"
        ):
            context.categories.add(slug)


def _check_purposes(context: _Context) -> None:
    seen: dict[Hashable, NodePath] = {}
    for index, entry in context.source.section("purposes"):
        path = ("purposes", index)
        slug = entry.get("slug")
        if not isinstance(slug, str) or context.duplicate(seen, slug, (*path, "slug"), f"purpose {slug!r}"):
            continue
        categories = _list(entry.get("categories"))
        for position, category in enumerate(categories):
            _check_category_ref(context, (*path, "categories", position), category)
        # The pack's declaration replaces the database's when loaded.
        context.purposes[slug] = _KnownPurpose(
            categories=frozenset(c for c in categories if isinstance(c, str)),
            prohibited=entry.get("prohibited") is True,
        )


# Jurisdiction rules --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Period:
    """A rule entry of the pack, at ``path``."""

    start: datetime
    end: datetime | None
    path: NodePath
    # Applied by an earlier load: loading leaves the database's rules as they are for it.
    applied: bool = False


@dataclass(frozen=True, slots=True)
class _StandingPeriod:
    """An approved rule in the database, which the pack's rules must fit around."""

    start: datetime
    end: datetime | None
    rule: JurisdictionRule


def _check_rules(context: _Context) -> None:
    periods: dict[str, list[_Period]] = defaultdict(list)
    for index, entry in context.source.section("rules"):
        path = ("rules", index)
        region = entry.get("region")
        _check_region_ref(context, (*path, "region"), region)
        for position, slug in enumerate(_list(entry.get("blocked_categories"))):
            _check_category_ref(context, (*path, "blocked_categories", position), slug)
        caps = entry.get("max_retention_days")
        for slug in caps if isinstance(caps, dict) else ():
            _check_category_ref(context, (*path, "max_retention_days", str(slug)), slug)
        start, end = _check_period(
            context, path, entry, ("effective_from", "effective_to"), parse_datetime, may_end_on_start=False
        )
        if isinstance(region, str) and start is not None and (end is None or end > start):
            applied = context.history.applied(context.source, "rules", entry)
            periods[region].append(_Period(start=start, end=end, path=path, applied=applied))
    _check_overlaps(context, periods)


def _check_overlaps(context: _Context, pack_periods: dict[str, list[_Period]]) -> None:
    """After loading, no two approved rules of one region may be in force at once.

    A pack rule replaces the approved rule with the same region and start;
    every other approved rule in the database stays, so it must fit too. A
    rule an earlier load applied replaces nothing (it is unchanged, or kept as
    changed since), so only the other rules of the pack are held against it.
    """
    in_database: dict[str, list[JurisdictionRule]] = defaultdict(list)
    approved = JurisdictionRule.objects.filter(region__in=list(pack_periods), state=ApprovalState.APPROVED)
    for rule in approved:
        in_database[rule.region_id].append(rule)
    for region, periods in pack_periods.items():
        seen: dict[Hashable, NodePath] = {}
        unique = [
            period
            for period in periods
            if not context.duplicate(
                seen,
                period.start,
                (*period.path, "effective_from"),
                f"a rule for {region} from {format_datetime(period.start)}",
            )
        ]
        starts = {period.start for period in unique if not period.applied}
        standing = [
            _StandingPeriod(start=rule.effective_from, end=rule.effective_to, rule=rule)
            for rule in in_database[region]
            if rule.effective_from not in starts
        ]
        # A database rule an earlier-applied pack entry still says is held against the others once, as that entry.
        represented = {(period.start, period.end) for period in unique if period.applied}
        standing = [period for period in standing if (period.start, period.end) not in represented]
        for position, period in enumerate(unique):
            others: list[_Period | _StandingPeriod] = [*unique[:position], *([] if period.applied else standing)]
            for other in others:
                if periods_overlap((period.start, period.end), (other.start, other.end)):
                    context.error((*period.path, "effective_from"), _overlap_message(context, region, period, other))


def _overlap_message(context: _Context, region: str, period: _Period, other: _Period | _StandingPeriod) -> str:
    mine = format_period(period.start, period.end)
    theirs = format_period(other.start, other.end)
    if isinstance(other, _Period):
        return (
            f"{region} {mine} overlaps {format_path(other.path)} (line {context.source.line_of(other.path)}, "
            f"{theirs}); two approved rules for one region cannot be in force at the same time"
        )
    return (
        f"{region} {mine} overlaps approved rule #{other.rule.pk} in the database ({theirs}); "
        f"start this rule at {format_datetime(other.start)} to replace it, or end one before the other starts"
    )


# Notices -----------------------------------------------------------------------------------------


def _check_notice_items(context: _Context, path: NodePath, entry: dict[str, Any]) -> None:
    seen: dict[Hashable, NodePath] = {}
    for position, item in enumerate(_list(entry.get("items"))):
        item_path = (*path, "items", position)
        if not isinstance(item, dict):
            continue
        purpose, category = item.get("purpose"), item.get("category")
        if not isinstance(purpose, str) or not isinstance(category, str):
            continue
        if context.duplicate(seen, (purpose, category), item_path, f"the pair {purpose} × {category}"):
            continue
        known = context.purposes.get(purpose)
        if known is None:
            _check_purpose_ref(context, (*item_path, "purpose"), purpose)
        elif known.prohibited:
            context.error((*item_path, "purpose"), f"{purpose!r} is prohibited and may not appear in a notice")
        elif category not in context.categories:
            _check_category_ref(context, (*item_path, "category"), category)
        elif category not in known.categories:
            context.error((*item_path, "category"), f"{category!r} is not one of the categories of {purpose!r}")


def _check_notices(context: _Context) -> None:
    seen: dict[Hashable, NodePath] = {}
    sound: list[tuple[int, dict[str, Any]]] = []
    for index, entry in context.source.section("notices"):
        path = ("notices", index)
        version = entry.get("version")
        if isinstance(version, int) and context.duplicate(seen, version, (*path, "version"), f"version {version}"):
            continue
        _check_notice_items(context, path, entry)
        published_at = entry.get("published_at")
        if isinstance(published_at, str) and parse_datetime(published_at) is None:
            context.error((*path, "published_at"), f"{published_at!r} is not a real date")
        if not context.reported_under(path):
            sound.append((index, entry))
    _check_notice_versions(context, sound)


def _check_notice_versions(context: _Context, entries: list[tuple[int, dict[str, Any]]]) -> None:
    """Replay what loading would do, version by version, against the published notices."""
    existing = {notice.version: notice for notice in Notice.objects.prefetch_related("items")}
    published = [existing[v] for v in sorted(existing) if existing[v].state in PUBLISHED_STATES]
    latest = NoticeContent.of_row(published[-1]) if published else None
    next_version = (Notice.objects.aggregate(top=Max("version"))["top"] or 0) + 1
    for index, entry in sorted(entries, key=lambda pair: pair[1]["version"]):
        content = NoticeContent.of_entry(entry)
        step = notice_step(
            version=entry["version"],
            content=content,
            existing=existing.get(entry["version"]),
            latest=latest,
            next_version=next_version,
        )
        if step.problem:
            context.error(("notices", index, "version"), step.problem)
        if step.publish:
            latest, next_version = content, next_version + 1


# Instruments, retention, exclusions -------------------------------------------------------------


def _check_instruments(context: _Context) -> None:
    seen: dict[Hashable, NodePath] = {}
    for index, entry in context.source.section("legal_instruments"):
        path = ("legal_instruments", index)
        _check_region_ref(context, (*path, "region"), entry.get("region"))
        start, _end = _check_period(context, path, entry, ("valid_from", "valid_to"), parse_date, may_end_on_start=True)
        identity = (entry.get("kind"), entry.get("region"), entry.get("title"), start)
        if not all(isinstance(part, str) for part in identity[:3]) or start is None:
            continue
        if context.duplicate(seen, identity, path, f"the instrument {entry['title']!r} from {format_date(start)}"):
            continue
        _check_instrument_unambiguous(context, path, identity)


def _check_instrument_unambiguous(context: _Context, path: NodePath, identity: tuple[Any, ...]) -> None:
    kind, region, title, valid_from = identity
    matches = LegalInstrument.objects.filter(
        kind=kind, region_id=region, title=title, valid_from=valid_from, employee__isnull=True
    ).count()
    if matches > 1:
        context.error(
            path,
            f"matches {matches} instruments in the database with the same kind, region, title and valid_from; "
            "rename them in the console so a pack can tell them apart",
        )


def _check_retention(context: _Context) -> None:
    seen: dict[Hashable, NodePath] = {}
    for index, entry in context.source.section("retention"):
        path = ("retention", index)
        _check_category_ref(context, (*path, "category"), entry.get("category"))
        _check_region_ref(context, (*path, "region"), entry.get("region"))
        _check_purpose_ref(context, (*path, "purpose"), entry.get("purpose"))
        scope = (entry.get("category"), entry.get("region"), entry.get("purpose"))
        if all(isinstance(part, str | None) for part in scope):
            label = "/".join(part or "any" for part in scope)
            context.duplicate(seen, scope, path, f"the retention scope {label}")


def _check_exclusions(context: _Context) -> None:
    seen: dict[Hashable, NodePath] = {}
    for index, entry in context.source.section("exclusions"):
        path = ("exclusions", index)
        for position, slug in enumerate(_list(entry.get("categories"))):
            _check_category_ref(context, (*path, "categories", position), slug)
        kind, pattern = entry.get("kind"), entry.get("pattern")
        if isinstance(kind, str) and isinstance(pattern, str):
            context.duplicate(seen, (kind, pattern), (*path, "pattern"), f"the {kind} pattern {pattern!r}")


# Order matters: each check may add what later ones refer to.
_CHECKS: tuple[Callable[[_Context], None], ...] = (
    _check_regions,
    _check_categories,
    _check_purposes,
    _check_rules,
    _check_notices,
    _check_instruments,
    _check_retention,
    _check_exclusions,
)
