from __future__ import annotations

from datetime import UTC, datetime

from governance.models import JurisdictionRule
from governance.rule_diff import rule_diff

NAMES = {"screenshots": "Screenshots", "keystrokes": "Keystrokes"}
START = datetime(2026, 1, 1, tzinfo=UTC)


def _rule(**fields) -> JurisdictionRule:
    base = {
        "region_id": "US",
        "status": "allow",
        "preconditions": [],
        "blocked_categories": [],
        "max_retention_days": {},
        "effective_from": START,
        "notes": "",
    }
    return JurisdictionRule(**{**base, **fields})


def _rows(old, new):
    return {row.label: row for row in rule_diff(old=old, new=new, category_names=NAMES)}


def test_every_decision_relevant_field_is_listed_even_when_unchanged():
    rows = _rows(_rule(), _rule())
    assert list(rows) == [
        "Status",
        "Preconditions",
        "Blocked categories",
        "Maximum retention",
        "Effective from",
        "Effective until",
        "Notes",
    ]
    assert not any(row.changed for row in rows.values())


def test_list_changes_name_what_was_added_and_removed_in_words():
    old = _rule(preconditions=["dpia"], blocked_categories=["keystrokes"])
    new = _rule(status="conditional", preconditions=["works_council_agreement"], blocked_categories=["screenshots"])
    rows = _rows(old, new)
    assert (rows["Status"].was, rows["Status"].now) == ("Allowed", "Allowed under conditions")
    assert rows["Preconditions"].added == ("Works-council agreement",)
    assert rows["Preconditions"].removed == ("Data protection impact assessment",)
    assert rows["Blocked categories"].added == ("Screenshots",)
    assert rows["Blocked categories"].removed == ("Keystrokes",)


def test_retention_caps_and_dates_are_compared_as_text_a_reader_understands():
    rows = _rows(_rule(max_retention_days={"keystrokes": 90}), _rule(max_retention_days={"keystrokes": 30}))
    assert rows["Maximum retention"].removed == ("Keystrokes: 90 days",)
    assert rows["Maximum retention"].added == ("Keystrokes: 30 days",)
    later = _rule(effective_from=datetime(2026, 6, 1, 9, 30, tzinfo=UTC), effective_to=datetime(2027, 1, 1, tzinfo=UTC))
    rows = _rows(_rule(), later)
    assert rows["Effective from"].now == "2026-06-01 09:30 UTC"
    assert (rows["Effective until"].was, rows["Effective until"].now) == ("open-ended", "2027-01-01 00:00 UTC")


def test_a_first_rule_is_compared_with_no_rule_at_all():
    rows = _rows(None, _rule(status="block"))
    assert (rows["Status"].was, rows["Status"].now) == ("no rule (denied)", "Blocked")
    assert rows["Effective until"].was == "—"
