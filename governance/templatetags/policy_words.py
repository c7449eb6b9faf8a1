"""Template filters that turn policy codes into the words the console shows."""

from __future__ import annotations

from django import template

from governance.models import PreconditionType

register = template.Library()
_PRECONDITIONS = dict(PreconditionType.choices)


@register.filter
def precondition_names(codes) -> str:
    """``["dpia", "works_council_agreement"]`` → "Data protection impact assessment, Works-council agreement"."""
    return ", ".join(_PRECONDITIONS.get(code, code) for code in codes or ()) or "none"


@register.filter
def words(slug: str) -> str:
    """``"keystroke_timing"`` → "keystroke timing"."""
    return str(slug).replace("_", " ")
