"""Writing the approved policy as a pack: what the console changed, back into version control.

The export uses exactly the shapes ``entries`` compares, so loading it into
the database it came from changes nothing, and loading it into an empty one
rebuilds the same policy.
"""

from __future__ import annotations

from typing import Any

import yaml

from governance.models import (
    ApprovalState,
    ContextExclusion,
    DataCategory,
    JurisdictionRule,
    LegalInstrument,
    Notice,
    Purpose,
    Region,
    RegionKind,
    RetentionPolicy,
)
from governance.packs.entries import PUBLISHED_STATES, format_date, format_datetime
from people.iso3166 import country_name, subdivision_name

FORMAT = "consentry-policy-pack"
FORMAT_VERSION = 1

_KIND_ORDER: dict[str, int] = {RegionKind.COUNTRY: 0, RegionKind.SUBDIVISION: 1, RegionKind.GROUP: 2}


class _PackDumper(yaml.SafeDumper):
    """Indented lists and literal blocks for multi-line text: a file people can review in a diff."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Literal blocks keep paragraphs as written; long prose folds to the page width.
    style = "|" if "\n" in value else ">" if len(value) > 80 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _is_short_scalar(value: Any) -> bool:
    return isinstance(value, bool | int) or (isinstance(value, str) and len(value) <= 60 and "\n" not in value)


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    # Lists of codes and slugs read best on one line: [US, DE, FR].
    flow = bool(value) and all(isinstance(item, str | int) for item in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _represent_mapping(dumper: yaml.SafeDumper, value: dict[str, Any]) -> yaml.MappingNode:
    # Small entries (a region, a retention line, an exclusion) fit on one line, as people write them.
    width = sum(len(str(key)) + len(str(item)) + 4 for key, item in value.items())
    flow = all(_is_short_scalar(item) for item in value.values()) and width <= 100
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=flow)


_PackDumper.add_representer(str, _represent_text)
_PackDumper.add_representer(list, _represent_list)
_PackDumper.add_representer(dict, _represent_mapping)


def _region(region: Region) -> dict[str, Any]:
    entry: dict[str, Any] = {"code": region.code, "kind": region.kind}
    official = country_name(region.code) if region.kind == RegionKind.COUNTRY else subdivision_name(region.code)
    if region.kind == RegionKind.GROUP or region.name != official:
        entry["name"] = region.name
    if region.kind == RegionKind.GROUP:
        entry["members"] = sorted(member.code for member in region.members.all())
    return entry


def _category(category: DataCategory) -> dict[str, Any]:
    return {
        "slug": category.slug,
        "name": category.name,
        "description": category.description,
        "sensitive": category.sensitive,
        "biometric": category.biometric,
    }


def _purpose(purpose: Purpose) -> dict[str, Any]:
    return {
        "slug": purpose.slug,
        "name": purpose.name,
        "description": purpose.description,
        "categories": sorted(category.slug for category in purpose.categories.all()),
        "consent_validity_days": purpose.consent_validity_days,
        "prohibited": purpose.prohibited,
    }


def _notice(notice: Notice) -> dict[str, Any]:
    return {
        "version": notice.version,
        "title": notice.title,
        "published_at": format_datetime(notice.published_at),
        "material": notice.material,
        "summary": notice.summary,
        "body": notice.body,
        "retention_statement": notice.retention_statement,
        "access_statement": notice.access_statement,
        "no_evaluation_statement": notice.no_evaluation_statement,
        "items": [
            {"purpose": item.purpose_id, "category": item.category_id, "description": item.description}
            for item in sorted(notice.items.all(), key=lambda i: (i.purpose_id, i.category_id))
        ],
    }


def _rule(rule: JurisdictionRule) -> dict[str, Any]:
    entry: dict[str, Any] = {"region": rule.region_id, "status": rule.status}
    if rule.preconditions:
        entry["preconditions"] = sorted(rule.preconditions)
    if rule.blocked_categories:
        entry["blocked_categories"] = sorted(rule.blocked_categories)
    if rule.max_retention_days:
        entry["max_retention_days"] = dict(sorted(rule.max_retention_days.items()))
    entry["effective_from"] = format_datetime(rule.effective_from)
    if rule.effective_to is not None:
        entry["effective_to"] = format_datetime(rule.effective_to)
    if rule.notes:
        entry["notes"] = rule.notes
    return entry


def _instrument(instrument: LegalInstrument) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": instrument.kind,
        "region": instrument.region_id,
        "title": instrument.title,
        "valid_from": format_date(instrument.valid_from),
    }
    if instrument.valid_to is not None:
        entry["valid_to"] = format_date(instrument.valid_to)
    entry["document_ref"] = instrument.document_ref
    for key in ("entity", "site"):
        if getattr(instrument, key):
            entry[key] = getattr(instrument, key)
    return entry


def _retention(policy: RetentionPolicy) -> dict[str, Any]:
    entry: dict[str, Any] = {"category": policy.category_id}
    if policy.region_id:
        entry["region"] = policy.region_id
    if policy.purpose_id:
        entry["purpose"] = policy.purpose_id
    entry.update(
        raw_retention_days=policy.raw_retention_days,
        delete_on_withdrawal_days=policy.delete_on_withdrawal_days,
        delete_on_termination_days=policy.delete_on_termination_days,
    )
    return entry


def _exclusion(exclusion: ContextExclusion) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": exclusion.kind,
        "pattern": exclusion.pattern,
        "label": exclusion.label,
        "reason": exclusion.reason,
    }
    if exclusion.categories:
        entry["categories"] = sorted(exclusion.categories)
    return entry


def export_data(*, name: str, version: str, description: str = "") -> dict[str, Any]:
    """The approved policy as pack data: drafts and superseded rules are not policy and stay out."""
    regions = sorted(Region.objects.prefetch_related("members"), key=lambda r: (_KIND_ORDER[r.kind], r.code))
    rules = JurisdictionRule.objects.filter(state=ApprovalState.APPROVED).order_by("region", "effective_from")
    notices = Notice.objects.filter(state__in=PUBLISHED_STATES).order_by("version").prefetch_related("items")
    # Per-employee instruments (biometric releases) are personal evidence, not policy.
    instruments = LegalInstrument.objects.filter(employee__isnull=True).order_by("region", "kind", "valid_from", "pk")
    retention = RetentionPolicy.objects.order_by("category", "region", "purpose")
    data: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": name, "version": version}
    if description:
        data["description"] = description
    data.update(
        regions=[_region(region) for region in regions],
        categories=[_category(category) for category in DataCategory.objects.order_by("slug")],
        purposes=[_purpose(purpose) for purpose in Purpose.objects.order_by("slug").prefetch_related("categories")],
        notices=[_notice(notice) for notice in notices],
        rules=[_rule(rule) for rule in rules],
        legal_instruments=[_instrument(instrument) for instrument in instruments],
        retention=[_retention(policy) for policy in retention],
        exclusions=[_exclusion(exclusion) for exclusion in ContextExclusion.objects.order_by("kind", "pattern")],
    )
    return data


def dump_pack(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_PackDumper, sort_keys=False, allow_unicode=True, width=100)


def export_pack(*, name: str, version: str, description: str = "") -> str:
    """The approved policy as pack text, ready for ``load_policy_pack``."""
    return dump_pack(export_data(name=name, version=version, description=description))
