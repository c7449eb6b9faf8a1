"""Loading a checked pack: one transaction, through the audited services.

Nothing here writes a model directly. Each entry is compared with what the
database holds first (see ``entries``), and a service is called only when
something differs, so loading the same pack again writes nothing at all, not
even an audit entry. An entry an earlier load already applied, which the
policy has changed since, is kept as it is now (see ``provenance``). Any
failure rolls the whole pack back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from audit.actors import Actor
from audit.models import EventType
from audit.services import record
from consentry.errors import DomainError
from governance.models import (
    ApprovalState,
    ContextExclusion,
    DataCategory,
    ExclusionReason,
    JurisdictionRule,
    LegalInstrument,
    Notice,
    PolicyRevision,
    Purpose,
    Region,
    RegionKind,
    RetentionPolicy,
)
from governance.packs.checks import check_pack
from governance.packs.entries import (
    PUBLISHED_STATES,
    InstrumentContent,
    NoticeContent,
    RuleContent,
    format_datetime,
    notice_step,
    parse_date,
    parse_datetime,
)
from governance.packs.provenance import PackHistory, pack_fingerprints
from governance.packs.source import NodePath, PackInvalid, PackSource
from governance.services import (
    category_save,
    exclusion_save,
    instrument_save,
    notice_approve,
    notice_draft,
    purpose_save,
    region_save,
    retention_save,
    rule_approve,
    rule_draft,
)
from people.iso3166 import country_name, subdivision_name

SECTIONS = ("regions", "categories", "purposes", "rules", "notices", "legal_instruments", "retention", "exclusions")


def pack_actor() -> Actor:
    """The ledger's name for changes a pack makes; the pack itself is named in ``via``."""
    return Actor.system("policy_pack")


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    # Applied by an earlier load and changed since (console, later pack): left as it is now.
    KEPT = "kept"


@dataclass
class LoadResult:
    """What loading did, per section: how many entries were created, updated or left alone."""

    name: str
    version: str
    sha256: str
    counts: dict[str, Counter[str]] = field(default_factory=lambda: {section: Counter() for section in SECTIONS})
    # "rules[6] US-TX from 2026-01-01T00:00:00Z (line 234)": the entries kept, for the operator to read.
    kept: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(c[Outcome.CREATED] or c[Outcome.UPDATED] for c in self.counts.values())

    def as_payload(self) -> dict[str, dict[str, int]]:
        return {
            section: {
                outcome.value: counts[outcome] for outcome in Outcome if outcome != Outcome.KEPT or counts[outcome]
            }
            for section, counts in self.counts.items()
            if counts.total()
        }

    def summary_lines(self) -> list[str]:
        title = f"Policy pack {self.name} {self.version} (sha256 {self.sha256[:12]})"
        if not self.changed:
            lines = [f"{title}: already up to date."]
        else:
            lines = [f"{title} loaded:"]
            for section, counts in self.as_payload().items():
                c, u, n = counts[Outcome.CREATED], counts[Outcome.UPDATED], counts[Outcome.UNCHANGED]
                line = f"  {section.replace('_', ' ')}: created {c}, updated {u}, unchanged {n}"
                lines.append(line + (f", kept {counts[Outcome.KEPT]}" if counts.get(Outcome.KEPT) else ""))
        if self.kept:
            lines.append(f"  Kept as changed since this pack was loaded ({len(self.kept)}), not applied again:")
            lines += [f"    {description}" for description in self.kept]
        return lines


def policy_is_empty() -> bool:
    """Whether no rule or notice was ever approved: a new installation the default pack may seed."""
    return not (
        JurisdictionRule.objects.exclude(state=ApprovalState.DRAFT).exists()
        or Notice.objects.exclude(state=ApprovalState.DRAFT).exists()
    )


def load_pack(source: PackSource) -> LoadResult:
    """Check the whole pack, then apply it in one transaction; raise ``PackInvalid`` on any problem.

    A final ``policy_pack.loaded`` entry names the pack, its digest and the
    counts, and is written only when something changed: a no-op load leaves
    the ledger as it was.
    """
    errors = check_pack(source)
    if errors:
        raise PackInvalid(filename=source.filename, errors=errors)
    with transaction.atomic():
        # One load at a time: a second, concurrent load waits here, then finds
        # everything already applied instead of racing on the same rows.
        PolicyRevision.objects.select_for_update().get(pk=1)
        result = _Loader(source, history=PackHistory.from_ledger()).run()
        if result.changed:
            record(
                event_type=EventType.POLICY_PACK_LOADED,
                actor=pack_actor(),
                object_type="policy_pack",
                object_id=f"{result.name}:{result.version}",
                payload={
                    "name": result.name,
                    "version": result.version,
                    "sha256": result.sha256,
                    "counts": result.as_payload(),
                    # What this pack says, so a later load knows what it already applied.
                    "entries": pack_fingerprints(source),
                },
            )
    return result


class _Loader:
    """Applies one checked pack, section by section, in dependency order."""

    def __init__(self, source: PackSource, *, history: PackHistory):
        self.source = source
        self.history = history
        self.data: dict[str, Any] = source.data
        self.actor = pack_actor()
        self.result = LoadResult(name=self.data["name"], version=self.data["version"], sha256=source.sha256)
        # Approvals name the exact file that was reviewed, not just its version label.
        self.via = f"policy_pack:{self.data['name']}:{self.data['version']}:{source.sha256[:12]}"

    def run(self) -> LoadResult:
        self._regions()
        self._categories()
        self._purposes()
        self._rules()
        self._notices()
        self._instruments()
        self._retention()
        self._exclusions()
        return self.result

    @contextmanager
    def _at(self, path: NodePath) -> Iterator[None]:
        """Turn a refusal from a service into an error at the entry being applied.

        The check ran before the transaction; a refusal here means the database
        changed in between. Raising out of the atomic block undoes the whole pack.
        """
        try:
            yield
        except (DomainError, IntegrityError) as exc:
            detail = getattr(exc, "detail", str(exc))
            extra = "; ".join(f"{key}: {value}" for key, value in getattr(exc, "errors", {}).items())
            message = f"could not be applied: {detail}" + (f" ({extra})" if extra else "")
            raise PackInvalid(filename=self.source.filename, errors=[self.source.error(path, message)]) from exc

    def _count(self, section: str, outcome: Outcome) -> None:
        self.result.counts[section][outcome] += 1

    def _differs(self, section: str, index: int, entry: dict[str, Any], label: str) -> Outcome | None:
        """For an entry the database does not match: KEPT if an earlier load applied it, else None (apply it)."""
        if not self.history.applied(self.source, section, entry):
            return None
        line = self.source.line_of((section, index))
        self.result.kept.append(f"{section}[{index}] {label}" + (f" (line {line})" if line else ""))
        return Outcome.KEPT

    # Regions -----------------------------------------------------------------------------

    def _regions(self) -> None:
        # Countries and subdivisions before groups, whose members they may be.
        entries = sorted(self.source.section("regions"), key=lambda pair: pair[1]["kind"] == RegionKind.GROUP)
        for index, entry in entries:
            with self._at(("regions", index)):
                self._count("regions", self._apply_region(index, entry))
        # ISO codes that rules, instruments or retention use without declaring them.
        for section in ("rules", "legal_instruments", "retention"):
            for index, entry in self.source.section(section):
                if entry.get("region"):
                    with self._at((section, index, "region")):
                        self._ensure_region(entry["region"])

    def _apply_region(self, index: int, entry: dict[str, Any]) -> Outcome:
        code, kind = entry["code"], entry["kind"]
        official = {RegionKind.COUNTRY: country_name, RegionKind.SUBDIVISION: subdivision_name}.get(kind)
        name = entry.get("name") or (official(code) if official else "")
        members = sorted(entry.get("members", []))
        existing = Region.objects.filter(code=code).first()
        if existing is not None:
            current = sorted(existing.members.values_list("code", flat=True))
            if (existing.name, existing.kind, current) == (name, kind, members):
                return Outcome.UNCHANGED
            if kept := self._differs("regions", index, entry, f"region {code}"):
                return kept
        for member in members:
            self._ensure_region(member)
        region_save(code=code, name=name or "", kind=kind, members=members, actor=self.actor)
        return Outcome.UPDATED if existing else Outcome.CREATED

    def _ensure_region(self, code: str) -> None:
        # region_save would create a group's missing members unaudited; create them here, audited.
        if not Region.objects.filter(code=code).exists():
            region_save(code=code, actor=self.actor)
            self._count("regions", Outcome.CREATED)

    # Categories and purposes -------------------------------------------------------------------

    def _categories(self) -> None:
        for index, entry in self.source.section("categories"):
            fields = {
                "name": entry["name"],
                "description": entry["description"],
                "sensitive": entry.get("sensitive", False),
                "biometric": entry.get("biometric", False),
            }
            existing = DataCategory.objects.filter(slug=entry["slug"]).first()
            if existing is not None and all(getattr(existing, key) == value for key, value in fields.items()):
                self._count("categories", Outcome.UNCHANGED)
                continue
            if kept := self._differs("categories", index, entry, f"category {entry['slug']}"):
                self._count("categories", kept)
                continue
            with self._at(("categories", index)):
                category_save(slug=entry["slug"], **fields, actor=self.actor)
            self._count("categories", Outcome.UPDATED if existing else Outcome.CREATED)

    def _purposes(self) -> None:
        for index, entry in self.source.section("purposes"):
            fields = {
                "name": entry["name"],
                "description": entry["description"],
                "consent_validity_days": entry.get("consent_validity_days", 365),
                "prohibited": entry.get("prohibited", False),
            }
            categories = sorted(set(entry["categories"]))
            existing = Purpose.objects.filter(slug=entry["slug"]).first()
            if (
                existing is not None
                and all(getattr(existing, key) == value for key, value in fields.items())
                and sorted(existing.categories.values_list("slug", flat=True)) == categories
            ):
                self._count("purposes", Outcome.UNCHANGED)
                continue
            if kept := self._differs("purposes", index, entry, f"purpose {entry['slug']}"):
                self._count("purposes", kept)
                continue
            with self._at(("purposes", index)):
                purpose_save(slug=entry["slug"], **fields, categories=categories, actor=self.actor)
            self._count("purposes", Outcome.UPDATED if existing else Outcome.CREATED)

    # Jurisdiction rules --------------------------------------------------------------------------

    def _rules(self) -> None:
        # By start within a region: a successor that shortens an earlier rule is
        # approved before a later rule that needs the room (no transient overlap).
        entries = sorted(
            self.source.section("rules"),
            key=lambda pair: (pair[1]["region"], parse_datetime(pair[1]["effective_from"])),
        )
        for index, entry in entries:
            with self._at(("rules", index)):
                self._count("rules", self._apply_rule(index, entry))

    def _apply_rule(self, index: int, entry: dict[str, Any]) -> Outcome:
        start = parse_datetime(entry["effective_from"])
        assert start is not None  # check_pack refuses a rule without an aware start
        content = RuleContent.of_entry(entry)
        existing = JurisdictionRule.objects.filter(
            region_id=entry["region"], effective_from=start, state=ApprovalState.APPROVED
        ).first()
        if existing is not None and RuleContent.of_row(existing) == content:
            return Outcome.UNCHANGED
        if kept := self._differs("rules", index, entry, f"{entry['region']} from {format_datetime(start)}"):
            return kept
        draft = rule_draft(
            region=Region.objects.get(code=entry["region"]),
            status=content.status,
            effective_from=start,
            effective_to=content.effective_to,
            preconditions=content.preconditions,
            blocked_categories=content.blocked_categories,
            max_retention_days=dict(content.max_retention_days),
            notes=content.notes,
            supersedes=existing,
            actor=self.actor,
        )
        rule_approve(rule=draft, actor=self.actor, via=self.via)
        return Outcome.UPDATED if existing else Outcome.CREATED

    # Notices ----------------------------------------------------------------------------------------

    def _notices(self) -> None:
        for index, entry in sorted(self.source.section("notices"), key=lambda pair: pair[1]["version"]):
            with self._at(("notices", index, "version")):
                self._count("notices", self._apply_notice(entry))

    def _apply_notice(self, entry: dict[str, Any]) -> Outcome:
        content = NoticeContent.of_entry(entry)
        latest = (
            Notice.objects.filter(state__in=PUBLISHED_STATES).order_by("-version").prefetch_related("items").first()
        )
        step = notice_step(
            version=entry["version"],
            content=content,
            existing=Notice.objects.filter(version=entry["version"]).prefetch_related("items").first(),
            latest=NoticeContent.of_row(latest) if latest else None,
            next_version=(Notice.objects.aggregate(top=Max("version"))["top"] or 0) + 1,
        )
        if step.problem:
            raise DomainError(step.problem)
        if not step.publish:
            return Outcome.UNCHANGED
        draft = notice_draft(
            title=content.title,
            summary=content.summary,
            body=content.body,
            retention_statement=content.retention_statement,
            access_statement=content.access_statement,
            no_evaluation_statement=content.no_evaluation_statement,
            items=sorted(content.items),
            material=content.material,
            actor=self.actor,
        )
        notice_approve(
            notice=draft, actor=self.actor, published_at=parse_datetime(entry.get("published_at")), via=self.via
        )
        return Outcome.CREATED

    # Instruments, retention, exclusions ------------------------------------------------------------

    def _instruments(self) -> None:
        for index, entry in self.source.section("legal_instruments"):
            with self._at(("legal_instruments", index)):
                self._count("legal_instruments", self._apply_instrument(index, entry))

    def _apply_instrument(self, index: int, entry: dict[str, Any]) -> Outcome:
        valid_from = parse_date(entry["valid_from"])
        assert valid_from is not None  # check_pack refuses an instrument without a start date
        content = InstrumentContent.of_entry(entry)
        # Per-employee instruments (biometric releases) are evidence, not policy: never matched.
        existing = LegalInstrument.objects.filter(
            kind=entry["kind"],
            region_id=entry["region"],
            title=entry["title"],
            valid_from=valid_from,
            employee__isnull=True,
        ).first()
        if existing is not None and InstrumentContent.of_row(existing) == content:
            return Outcome.UNCHANGED
        label = f"instrument {entry['title']!r} ({entry['kind']}, {entry['region']}, from {valid_from.isoformat()})"
        if kept := self._differs("legal_instruments", index, entry, label):
            return kept
        instrument_save(
            kind=entry["kind"],
            title=entry["title"],
            region=Region.objects.get(code=entry["region"]),
            valid_from=valid_from,
            valid_to=content.valid_to,
            document_ref=content.document_ref,
            entity=content.entity,
            site=content.site,
            instrument=existing,
            actor=self.actor,
        )
        return Outcome.UPDATED if existing else Outcome.CREATED

    def _retention(self) -> None:
        for index, entry in self.source.section("retention"):
            with self._at(("retention", index)):
                self._count("retention", self._apply_retention(index, entry))

    def _apply_retention(self, index: int, entry: dict[str, Any]) -> Outcome:
        days = {
            key: entry[key] for key in ("raw_retention_days", "delete_on_withdrawal_days", "delete_on_termination_days")
        }
        region = Region.objects.get(code=entry["region"]) if entry.get("region") else None
        purpose = Purpose.objects.get(slug=entry["purpose"]) if entry.get("purpose") else None
        existing = RetentionPolicy.objects.filter(category_id=entry["category"], region=region, purpose=purpose).first()
        if existing is not None and all(getattr(existing, key) == value for key, value in days.items()):
            return Outcome.UNCHANGED
        scope = "/".join(entry.get(key) or "any" for key in ("category", "region", "purpose"))
        if kept := self._differs("retention", index, entry, f"retention {scope}"):
            return kept
        retention_save(
            category=DataCategory.objects.get(slug=entry["category"]),
            region=region,
            purpose=purpose,
            **days,
            actor=self.actor,
        )
        return Outcome.UPDATED if existing else Outcome.CREATED

    def _exclusions(self) -> None:
        for index, entry in self.source.section("exclusions"):
            with self._at(("exclusions", index)):
                self._count("exclusions", self._apply_exclusion(index, entry))

    def _apply_exclusion(self, index: int, entry: dict[str, Any]) -> Outcome:
        fields = {
            "label": entry["label"],
            "reason": entry.get("reason", ExclusionReason.OTHER),
            "categories": sorted(set(entry.get("categories", []))),
        }
        existing = ContextExclusion.objects.filter(kind=entry["kind"], pattern=entry["pattern"]).first()
        if existing is not None and all(getattr(existing, key) == value for key, value in fields.items()):
            return Outcome.UNCHANGED
        if kept := self._differs("exclusions", index, entry, f"{entry['kind']} exclusion {entry['pattern']!r}"):
            return kept
        exclusion_save(kind=entry["kind"], pattern=entry["pattern"], **fields, actor=self.actor)
        return Outcome.UPDATED if existing else Outcome.CREATED
