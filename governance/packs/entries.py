"""Pack entries as domain values: parsed dates, identities and comparable content.

Checking, loading and exporting all ask the same two questions of an entry:
which database row is it (its identity), and is that row already the same
(its content)? The answers live here so the three can never disagree, which
is what makes loading a pack twice, or loading an export, change nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any

from governance.models import ApprovalState, JurisdictionRule, LegalInstrument, Notice

# Rules and notices a pack may have published: drafts are not policy yet.
PUBLISHED_STATES = frozenset({ApprovalState.APPROVED, ApprovalState.SUPERSEDED})


def parse_datetime(value: Any) -> datetime | None:
    """An aware datetime from pack text, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def parse_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def format_datetime(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def format_date(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def format_period(start: datetime, end: datetime | None) -> str:
    return f"{format_datetime(start)} → {format_datetime(end) if end else 'open-ended'}"


def periods_overlap(a: tuple[datetime, datetime | None], b: tuple[datetime, datetime | None]) -> bool:
    """Half-open periods [from, to); None is open-ended, as the database constraint reads them."""
    (a_from, a_to), (b_from, b_to) = a, b
    return (a_to is None or b_from < a_to) and (b_to is None or a_from < b_to)


# What a pack entry says, as a fingerprint ---------------------------------------------

# Sections whose entries a pack applies once (see ``provenance``). Notices are not
# among them: a published version never changes, so there is nothing to re-apply.
FINGERPRINTED_SECTIONS = ("regions", "categories", "purposes", "rules", "legal_instruments", "retention", "exclusions")

# The values an omitted field stands for, so ``sensitive: false`` and no ``sensitive`` are the same entry.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "regions": {"name": "", "members": []},
    "categories": {"sensitive": False, "biometric": False},
    "purposes": {"consent_validity_days": 365, "prohibited": False},
    "rules": {
        "preconditions": [],
        "blocked_categories": [],
        "max_retention_days": {},
        "effective_to": None,
        "notes": "",
    },
    "legal_instruments": {"valid_to": None, "entity": "", "site": ""},
    "retention": {"region": None, "purpose": None},
    "exclusions": {"reason": "other", "categories": []},
}
_UNORDERED = frozenset({"members", "categories", "preconditions", "blocked_categories"})
_MOMENTS = frozenset({"effective_from", "effective_to"})
_DAYS = frozenset({"valid_from", "valid_to"})


def entry_fingerprint(section: str, entry: Any) -> str | None:
    """A digest of what one entry says, identity included; None for an entry too malformed to have one.

    Equal for entries that load the same way whatever their spelling: defaults
    written out or left out, lists in any order, a time in ``Z`` or ``+00:00``.
    """
    if section not in _DEFAULTS or not isinstance(entry, dict):
        return None
    normal: dict[str, Any] = {**_DEFAULTS[section], **entry}
    try:
        for key, value in normal.items():
            if key in _UNORDERED and isinstance(value, list):
                normal[key] = sorted(set(value))
            elif key in _MOMENTS and value is not None:
                normal[key] = format_datetime(parse_datetime(value)) or value
            elif key in _DAYS and value is not None:
                normal[key] = format_date(parse_date(value)) or value
        text = json.dumps([section, normal], sort_keys=True, separators=(",", ":"), default=str)
    except TypeError:
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# Jurisdiction rules ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleContent:
    """What an approved rule says; identity is (region, effective_from)."""

    status: str
    preconditions: tuple[str, ...]
    blocked_categories: tuple[str, ...]
    max_retention_days: tuple[tuple[str, int], ...]
    effective_to: datetime | None
    notes: str

    @classmethod
    def of_entry(cls, entry: dict[str, Any]) -> RuleContent:
        # Sorted and de-duplicated exactly as rule_draft stores them.
        return cls(
            status=entry["status"],
            preconditions=tuple(sorted(set(entry.get("preconditions", [])))),
            blocked_categories=tuple(sorted(set(entry.get("blocked_categories", [])))),
            max_retention_days=tuple(sorted(entry.get("max_retention_days", {}).items())),
            effective_to=parse_datetime(entry.get("effective_to")),
            notes=entry.get("notes", ""),
        )

    @classmethod
    def of_row(cls, rule: JurisdictionRule) -> RuleContent:
        return cls(
            status=rule.status,
            preconditions=tuple(sorted(set(rule.preconditions))),
            blocked_categories=tuple(sorted(set(rule.blocked_categories))),
            max_retention_days=tuple(sorted(rule.max_retention_days.items())),
            effective_to=rule.effective_to,
            notes=rule.notes,
        )


# Notices --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoticeContent:
    """What employees read in one notice version; publication time is not content."""

    title: str
    summary: str
    body: str
    retention_statement: str
    access_statement: str
    no_evaluation_statement: str
    material: bool
    items: frozenset[tuple[str, str, str]]

    @classmethod
    def of_entry(cls, entry: dict[str, Any]) -> NoticeContent:
        return cls(
            title=entry["title"],
            summary=entry["summary"],
            body=entry["body"],
            retention_statement=entry["retention_statement"],
            access_statement=entry["access_statement"],
            no_evaluation_statement=entry["no_evaluation_statement"],
            material=entry["material"],
            items=frozenset((item["purpose"], item["category"], item["description"]) for item in entry["items"]),
        )

    @classmethod
    def of_row(cls, notice: Notice) -> NoticeContent:
        return cls(
            title=notice.title,
            summary=notice.summary,
            body=notice.body,
            retention_statement=notice.retention_statement,
            access_statement=notice.access_statement,
            no_evaluation_statement=notice.no_evaluation_statement,
            material=notice.material,
            items=frozenset((i.purpose_id, i.category_id, i.description) for i in notice.items.all()),
        )

    def differences(self, other: NoticeContent) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


@dataclass(frozen=True, slots=True)
class NoticeStep:
    """What loading does with one pack notice, given what is already published."""

    publish: bool
    problem: str = ""


def notice_step(
    *,
    version: int,
    content: NoticeContent,
    existing: Notice | None,
    latest: NoticeContent | None,
    next_version: int,
) -> NoticeStep:
    """Decide one pack notice: skip, publish as the next version, or refuse.

    Versions are what consent is bound to, so a published version never
    changes: the pack may repeat it word for word or leave it alone. A new
    version is published only if it says something the latest one does not,
    and only under the number the database will give it.
    """
    if existing is not None:
        if existing.state not in PUBLISHED_STATES:
            return NoticeStep(
                publish=False,
                problem=f"version {version} exists as an unapproved draft; approve it, or number this one "
                f"{next_version}",
            )
        differences = NoticeContent.of_row(existing).differences(content)
        if differences:
            return NoticeStep(
                publish=False,
                problem=f"version {version} is already published with different {', '.join(differences)}; "
                f"a published notice never changes, so publish the change as version {next_version}",
            )
        return NoticeStep(publish=False)
    if latest == content:
        return NoticeStep(publish=False)
    if version != next_version:
        return NoticeStep(
            publish=False, problem=f"version {version} cannot be published next: the next version is {next_version}"
        )
    return NoticeStep(publish=True)


# Legal instruments ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstrumentContent:
    """What an instrument says besides its identity (kind, region, title, valid_from)."""

    valid_to: date | None
    document_ref: str
    entity: str
    site: str

    @classmethod
    def of_entry(cls, entry: dict[str, Any]) -> InstrumentContent:
        return cls(
            valid_to=parse_date(entry.get("valid_to")),
            document_ref=entry["document_ref"],
            entity=entry.get("entity", ""),
            site=entry.get("site", ""),
        )

    @classmethod
    def of_row(cls, instrument: LegalInstrument) -> InstrumentContent:
        return cls(
            valid_to=instrument.valid_to,
            document_ref=instrument.document_ref,
            entity=instrument.entity,
            site=instrument.site,
        )
