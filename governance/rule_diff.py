"""What a draft rule changes compared with the rule it would replace, field by field.

The approver reads this before approving, so every field that affects a
decision is listed, changed or not, in words rather than codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from governance.models import JurisdictionRule, PreconditionType, RuleStatus


@dataclass(frozen=True, slots=True)
class DiffRow:
    label: str
    was: str
    now: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.was != self.now


def _when(moment: datetime | None, *, open_end: str) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else open_end


def _names(values: list[str], labels: dict[str, str]) -> list[str]:
    return sorted(labels.get(value, value) for value in values)


def _list_row(label: str, old: list[str], new: list[str], labels: dict[str, str]) -> DiffRow:
    before, after = _names(old, labels), _names(new, labels)
    return DiffRow(
        label=label,
        was=", ".join(before) or "none",
        now=", ".join(after) or "none",
        added=tuple(name for name in after if name not in before),
        removed=tuple(name for name in before if name not in after),
    )


def _caps(caps: dict[str, int], names: dict[str, str]) -> list[str]:
    return [f"{names.get(slug, slug)}: {days} days" for slug, days in sorted(caps.items())]


def rule_diff(*, old: JurisdictionRule | None, new: JurisdictionRule, category_names: dict[str, str]) -> list[DiffRow]:
    """Rows comparing ``new`` with ``old`` (None: a region's first rule, everything is new)."""
    statuses = dict(RuleStatus.choices)
    preconditions = dict(PreconditionType.choices)
    blank = JurisdictionRule(status="", preconditions=[], blocked_categories=[], max_retention_days={}, notes="")
    base = old or blank
    return [
        DiffRow("Status", statuses.get(base.status, "no rule (denied)"), statuses.get(new.status, new.status)),
        _list_row("Preconditions", base.preconditions, new.preconditions, preconditions),
        _list_row("Blocked categories", base.blocked_categories, new.blocked_categories, category_names),
        _list_row(
            "Maximum retention",
            _caps(base.max_retention_days, category_names),
            _caps(new.max_retention_days, category_names),
            {},
        ),
        DiffRow(
            "Effective from",
            _when(old.effective_from if old else None, open_end="—"),
            _when(new.effective_from, open_end="—"),
        ),
        DiffRow(
            "Effective until",
            _when(base.effective_to, open_end="open-ended") if old else "—",
            _when(new.effective_to, open_end="open-ended"),
        ),
        DiffRow("Notes", base.notes or "—", new.notes or "—"),
    ]
