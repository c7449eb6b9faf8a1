"""Policy packs: reading, checking (every error, with its line), loading, idempotency, export."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEntry, EventType
from audit.services import record
from conftest import make_user
from consentry.errors import DomainError
from governance.models import (
    ApprovalState,
    ContextExclusion,
    DataCategory,
    ExclusionKind,
    ExclusionReason,
    JurisdictionRule,
    LegalInstrument,
    Notice,
    NoticeItem,
    PolicyRevision,
    PreconditionType,
    Purpose,
    Region,
    RegionKind,
    RetentionPolicy,
    RuleStatus,
)
from governance.packs import DEFAULT_PACK_PATH, PackInvalid, check_pack, export_pack, load_pack, parse_pack, read_pack
from governance.packs.entries import entry_fingerprint
from governance.packs.provenance import PackHistory
from governance.packs.structure import pack_schema
from governance.services import exclusion_remove, notice_draft, retention_save, rule_approve, rule_draft

pytestmark = pytest.mark.django_db

EU_MEMBERS = {
    *("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU"),
    *("IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"),
}

# A small valid pack; the acceptance cases below each break one line of it.
BASE_PACK = """\
format: consentry-policy-pack
format_version: 1
name: acceptance
version: "1"
regions:
  - {code: US-NY, kind: subdivision}
categories:
  - {slug: keystrokes, name: Keystrokes, description: The keys you type.}
purposes:
  - slug: ai_agent_training
    name: Training AI agents
    description: Teaching AI agents.
    categories: [keystrokes]
rules:
  - region: US-NY
    status: conditional
    preconditions: [notice_acknowledgement]
    effective_from: "2026-01-01T00:00:00Z"
    effective_to: "2026-06-01T00:00:00Z"
  - region: US-NY
    status: allow
    effective_from: "2026-06-01T00:00:00Z"
retention:
  - category: keystrokes
    raw_retention_days: 30
    delete_on_withdrawal_days: 7
    delete_on_termination_days: 30
"""


def write(tmp_path: Path, text: str, name: str = "pack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, name: str = "pack.yaml"):
    return load_pack(read_pack(write(tmp_path, text, name)))


def load_default():
    return load_pack(read_pack(DEFAULT_PACK_PATH))


def default_pack_with_second_notice(old: str, new: str) -> str:
    """The default pack plus notice version 2: version 1 with ``old`` replaced by ``new``."""
    text = DEFAULT_PACK_PATH.read_text()
    first = text[text.index("  - version: 1\n") : text.index("\nrules:")]
    assert old in first
    second = first.replace("version: 1", "version: 2").replace(old, new)
    return text.replace(first, f"{first}\n{second}")


def snapshot() -> dict[str, int]:
    """Row counts of everything a pack can touch, the ledger, and the policy revision."""
    models = (
        Region,
        DataCategory,
        Purpose,
        Notice,
        NoticeItem,
        JurisdictionRule,
        LegalInstrument,
        RetentionPolicy,
        ContextExclusion,
        AuditEntry,
    )
    counts = {model.__name__: model.objects.count() for model in models}
    counts["policy_revision"] = PolicyRevision.objects.get(pk=1).revision
    counts["approved_rules"] = JurisdictionRule.objects.filter(state=ApprovalState.APPROVED).count()
    return counts


def rejected(tmp_path: Path, text: str, name: str = "pack.yaml") -> list[tuple[int | None, str, str]]:
    """Load a pack that must fail; return its errors as (line, path, message) after checking nothing changed."""
    before = snapshot()
    with pytest.raises(PackInvalid) as excinfo:
        load_text(tmp_path, text, name)
    assert snapshot() == before
    return [(error.line, error.path, error.message) for error in excinfo.value.errors]


def locations(errors: list[tuple[int | None, str, str]]) -> list[tuple[int | None, str]]:
    return [(line, path) for line, path, _message in errors]


# The default pack ---------------------------------------------------------------------------


def test_the_default_pack_encodes_the_spec_table():
    result = load_default()

    assert result.changed
    rules = {rule.region_id: rule for rule in JurisdictionRule.objects.filter(state=ApprovalState.APPROVED)}
    expected = {
        "US": ("allow", ["company_written_policy"]),
        "US-NY": ("conditional", ["company_written_policy", "notice_acknowledgement"]),
        "US-DE": ("conditional", ["company_written_policy", "notice_acknowledgement_once"]),
        "US-CT": ("conditional", ["company_written_policy", "prior_written_notice"]),
        "US-CA": ("conditional", ["company_written_policy", "notice_at_collection"]),
        "US-IL": ("conditional", ["biometric_release", "company_written_policy"]),
        "US-TX": ("conditional", ["biometric_release", "company_written_policy"]),
        "CA-ON": ("conditional", ["monitoring_policy_delivered"]),
        **{code: ("block", []) for code in ("EU", "EEA", "DE", "FR", "IT", "GB")},
    }
    assert {code: (rule.status, rule.preconditions) for code, rule in rules.items()} == expected
    assert "CA" not in rules  # Canada outside Ontario stays unknown: deny.
    assert all(rule.notes and rule.effective_to is None for rule in rules.values())
    assert all(rule.approved_via.startswith("policy_pack:consentry-default:2026.11.1:") for rule in rules.values())
    assert "87(1)" in rules["DE"].notes and "BetrVG" in rules["DE"].notes


def test_the_default_pack_declares_groups_categories_purposes_and_the_first_notice():
    load_default()

    eu = set(Region.objects.get(code="EU").members.values_list("code", flat=True))
    eea = set(Region.objects.get(code="EEA").members.values_list("code", flat=True))
    assert eu == EU_MEMBERS
    assert eea == EU_MEMBERS | {"IS", "LI", "NO"}
    assert Region.objects.get(code="US-NY").kind == RegionKind.SUBDIVISION
    timing = DataCategory.objects.get(slug="keystroke_timing")
    assert timing.biometric and timing.sensitive
    assert DataCategory.objects.count() == 7
    training = Purpose.objects.get(slug="ai_agent_training")
    assert training.categories.count() == 7 and training.consent_validity_days == 365 and not training.prohibited
    assert set(Purpose.objects.filter(prohibited=True).values_list("slug", flat=True)) == {
        "performance_evaluation",
        "emotion_inference",
    }
    notice = Notice.objects.get()
    assert (notice.version, notice.state, notice.material) == (1, ApprovalState.APPROVED, True)
    assert notice.published_at is not None
    assert notice.published_at.isoformat() == "2026-01-01T00:00:00+00:00"
    assert "never used to evaluate you, your performance or your conduct" in notice.no_evaluation_statement
    assert "never see" in notice.access_statement or "cannot see" in notice.access_statement
    assert notice.items.count() == 7
    assert all(item.requires_reconsent for item in notice.items.all())


def test_the_default_pack_adds_instruments_retention_and_exclusions():
    load_default()

    assert set(LegalInstrument.objects.values_list("kind", "region")) == {
        ("company_written_policy", "US"),
        ("prior_written_notice", "US-CT"),
        ("monitoring_policy_delivered", "CA-ON"),
    }
    assert RetentionPolicy.objects.get(category="screenshots", region=None).raw_retention_days == 30
    assert RetentionPolicy.objects.get(category="keystroke_timing", region="US-CA").raw_retention_days == 14
    assert ContextExclusion.objects.filter(kind=ExclusionKind.APP, pattern="com.1password.*").exists()
    assert ContextExclusion.objects.get(kind=ExclusionKind.FLAG).reason == ExclusionReason.PRIVATE_BROWSING


def test_loading_audits_every_change_as_the_pack_and_records_the_load():
    result = load_default()

    entries = AuditEntry.objects.all()
    assert entries.exists()
    assert set(entries.values_list("actor", flat=True)) == {"system:policy_pack"}
    loaded = AuditEntry.objects.get(event_type=EventType.POLICY_PACK_LOADED)
    assert loaded.seq == AuditEntry.objects.latest("seq").seq
    assert loaded.payload["name"] == "consentry-default"
    assert loaded.payload["version"] == "2026.11.1"
    assert loaded.payload["sha256"] == result.sha256
    assert loaded.payload["counts"]["rules"]["created"] == 14


# Idempotency and updates --------------------------------------------------------------------


def test_loading_the_same_pack_twice_changes_nothing_the_second_time():
    load_default()
    before = snapshot()

    result = load_default()

    assert not result.changed
    assert snapshot() == before
    assert result.summary_lines() == [
        f"Policy pack consentry-default 2026.11.1 (sha256 {result.sha256[:12]}): already up to date."
    ]


def test_a_changed_rule_in_a_second_load_supersedes_the_approved_one(tmp_path):
    load_default()
    old = JurisdictionRule.objects.get(region="US-NY", state=ApprovalState.APPROVED)
    text = DEFAULT_PACK_PATH.read_text().replace(
        "preconditions: [company_written_policy, notice_acknowledgement]\n",
        "preconditions: [company_written_policy, notice_acknowledgement, dpia]\n",
    )

    result = load_text(tmp_path, text, "default.yaml")

    old.refresh_from_db()
    new = JurisdictionRule.objects.get(region="US-NY", state=ApprovalState.APPROVED)
    assert old.state == ApprovalState.SUPERSEDED
    assert new.supersedes_id == old.pk
    assert new.preconditions == ["company_written_policy", "dpia", "notice_acknowledgement"]
    assert new.approved_via == f"policy_pack:consentry-default:2026.11.1:{result.sha256[:12]}"
    assert result.counts["rules"] == {"updated": 1, "unchanged": 13}
    assert "  rules: created 0, updated 1, unchanged 13" in result.summary_lines()
    assert AuditEntry.objects.filter(event_type=EventType.RULE_SUPERSEDED, object_id=str(old.pk)).exists()


def test_a_small_pack_may_refer_to_regions_and_categories_already_in_the_database(tmp_path):
    load_default()
    pack = """\
        format: consentry-policy-pack
        format_version: 1
        name: eu-refinement
        version: "2"
        rules:
          - region: EU
            status: block
            blocked_categories: [keystroke_timing]
            effective_from: "2026-01-01T00:00:00Z"
            notes: Still blocked; keystroke timing would be special category data.
          - region: ES
            status: block
            effective_from: "2026-01-01T00:00:00Z"
            notes: As for the EU.
    """

    result = load_text(tmp_path, textwrap.dedent(pack))

    assert result.counts["rules"] == {"updated": 1, "created": 1}
    eu = JurisdictionRule.objects.get(region="EU", state=ApprovalState.APPROVED)
    assert eu.blocked_categories == ["keystroke_timing"] and eu.supersedes is not None
    assert JurisdictionRule.objects.get(region="ES").approved_via.startswith("policy_pack:eu-refinement:2:")


def test_a_new_notice_version_is_published_and_asks_to_reconsent_to_what_changed(tmp_path):
    load_default()
    text = default_pack_with_second_notice(
        "description: Where and when you click.", "description: Where and when you click, and on what."
    )

    result = load_text(tmp_path, text)
    again = load_text(tmp_path, text)

    assert result.counts["notices"] == {"created": 1, "unchanged": 1}
    assert not again.changed
    notice = Notice.objects.get(version=2)
    assert notice.state == ApprovalState.APPROVED
    assert list(notice.items.filter(requires_reconsent=True).values_list("category", flat=True)) == ["mouse_clicks"]


def test_a_published_notice_version_cannot_be_changed_by_a_pack(tmp_path):
    load_default()
    text = DEFAULT_PACK_PATH.read_text().replace(
        "title: Helping train AI agents with your computer activity", "title: Something else"
    )

    errors = rejected(tmp_path, text, "default.yaml")

    line = text.splitlines().index("  - version: 1") + 1
    assert locations(errors) == [(line, "notices[0].version")]
    assert "already published with different title" in errors[0][2]
    assert "as version 2" in errors[0][2]


def test_a_notice_drafted_in_the_console_blocks_a_pack_using_its_version(tmp_path):
    load_default()
    notice_draft(
        title="Draft",
        summary="S",
        body="B",
        retention_statement="R",
        access_statement="A",
        no_evaluation_statement="N",
        items=[("ai_agent_training", "keystrokes", "Typed keys.")],
        material=True,
        actor=Actor.system("console"),
    )
    text = default_pack_with_second_notice("title: Helping", "title: Still helping")

    errors = rejected(tmp_path, text)

    assert [message for _line, _path, message in errors] == [
        "version 2 exists as an unapproved draft; approve it, or number this one 3"
    ]


def test_changed_instruments_retention_and_exclusions_are_updated_in_place(tmp_path):
    load_default()
    instrument = LegalInstrument.objects.get(region="US")
    text = (
        DEFAULT_PACK_PATH.read_text()
        .replace("policies/electronic-monitoring-policy-2026.pdf", "policies/electronic-monitoring-policy-2026-v2.pdf")
        .replace("{category: screenshots, raw_retention_days: 30,", "{category: screenshots, raw_retention_days: 14,")
        .replace("label: Private browsing windows", "label: Private and incognito windows")
    )

    result = load_text(tmp_path, text)

    assert result.counts["legal_instruments"] == {"updated": 1, "unchanged": 2}
    assert result.counts["retention"] == {"updated": 1, "unchanged": 7}
    assert result.counts["exclusions"] == {"updated": 1, "unchanged": 24}
    instrument.refresh_from_db()
    assert instrument.document_ref.endswith("-v2.pdf")
    assert LegalInstrument.objects.count() == 3
    assert RetentionPolicy.objects.get(category="screenshots", region=None).raw_retention_days == 14


# Loading again after the policy changed ----------------------------------------------------------


def console_successor(region: str, *, effective_from=None, **changes) -> JurisdictionRule:
    """Legal drafts a successor of the region's approved rule in the console; a second person approves it."""
    current = JurisdictionRule.objects.get(region=region, state=ApprovalState.APPROVED, effective_to__isnull=True)
    draft = rule_draft(
        region=current.region,
        status=changes.pop("status", current.status),
        preconditions=changes.pop("preconditions", current.preconditions),
        blocked_categories=current.blocked_categories,
        max_retention_days=current.max_retention_days,
        notes=current.notes,
        # The console starts a successor now: the pack's rule is closed there, not replaced.
        effective_from=effective_from or timezone.now().replace(microsecond=0),
        supersedes=current,
        actor=Actor.for_user(make_user()),
    )
    return rule_approve(rule=draft, actor=Actor.for_user(make_user()))


def test_reloading_a_pack_keeps_a_rule_approved_in_the_console_since():
    load_default()
    pack_rule = JurisdictionRule.objects.get(region="US-TX", state=ApprovalState.APPROVED)
    approved = console_successor("US-TX", preconditions=["biometric_release", "company_written_policy", "dpia"])
    before = snapshot()
    out = io.StringIO()

    call_command("load_policy_pack", stdout=out)

    assert snapshot() == before
    pack_rule.refresh_from_db()
    assert pack_rule.effective_to == approved.effective_from
    assert JurisdictionRule.objects.get(region="US-TX", effective_to__isnull=True) == approved
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("already up to date.")
    assert lines[1:] == [
        "  Kept as changed since this pack was loaded (1), not applied again:",
        "    rules[6] US-TX from 2026-01-01T00:00:00Z (line 234)",
    ]
    assert check_pack(read_pack(DEFAULT_PACK_PATH)) == []


def test_reloading_a_pack_keeps_a_rule_the_console_replaced_from_the_same_start():
    load_default()
    pack_rule = JurisdictionRule.objects.get(region="US-TX", state=ApprovalState.APPROVED)
    approved = console_successor("US-TX", effective_from=pack_rule.effective_from, status=RuleStatus.BLOCK)
    before = snapshot()

    result = load_default()

    assert not result.changed
    assert result.counts["rules"] == {"unchanged": 13, "kept": 1}
    assert snapshot() == before
    assert JurisdictionRule.objects.get(region="US-TX", state=ApprovalState.APPROVED) == approved


def test_reloading_a_pack_keeps_retention_and_exclusions_changed_in_the_console_since():
    load_default()
    screenshots = RetentionPolicy.objects.get(category="screenshots", region=None, purpose=None)
    retention_save(
        category=screenshots.category,
        raw_retention_days=10,
        delete_on_withdrawal_days=7,
        delete_on_termination_days=30,
        actor=Actor.for_user(make_user()),
    )
    exclusion_remove(exclusion=ContextExclusion.objects.get(pattern="private_browsing"), actor=Actor.system("t"))
    before = snapshot()

    result = load_default()

    assert result.counts["retention"] == {"unchanged": 7, "kept": 1}
    assert result.counts["exclusions"] == {"unchanged": 24, "kept": 1}
    assert snapshot() == before
    assert RetentionPolicy.objects.get(pk=screenshots.pk).raw_retention_days == 10
    assert not ContextExclusion.objects.filter(pattern="private_browsing").exists()


def test_a_newer_pack_that_says_something_new_about_a_rule_changed_in_the_console_supersedes_it(tmp_path):
    load_default()
    start = JurisdictionRule.objects.get(region="US-TX", state=ApprovalState.APPROVED).effective_from
    console = console_successor("US-TX", effective_from=start, status=RuleStatus.BLOCK)
    text = DEFAULT_PACK_PATH.read_text().replace(
        'preconditions: [company_written_policy, biometric_release]\n    effective_from: "2026-01-01T00:00:00Z"\n'
        "    notes: >-\n      Capture or Use of Biometric Identifier Act",
        "preconditions: [company_written_policy, biometric_release, dpia]\n"
        '    effective_from: "2026-01-01T00:00:00Z"\n'
        "    notes: >-\n      Capture or Use of Biometric Identifier Act",
    )

    result = load_text(tmp_path, text.replace('version: "2026.11.1"', 'version: "2026.12.1"'))

    console.refresh_from_db()
    new = JurisdictionRule.objects.get(region="US-TX", state=ApprovalState.APPROVED)
    assert result.counts["rules"] == {"updated": 1, "unchanged": 13}
    assert console.state == ApprovalState.SUPERSEDED
    assert new.supersedes_id == console.pk
    assert new.preconditions == ["biometric_release", "company_written_policy", "dpia"]
    assert new.approved_via.startswith("policy_pack:consentry-default:2026.12.1:")


def test_a_newer_pack_rule_that_clashes_with_a_later_console_rule_is_refused_with_a_way_out(tmp_path):
    load_default()
    console = console_successor("US-TX")
    text = DEFAULT_PACK_PATH.read_text().replace(
        'preconditions: [company_written_policy, biometric_release]\n    effective_from: "2026-01-01T00:00:00Z"\n'
        "    notes: >-\n      Capture or Use of Biometric Identifier Act",
        "preconditions: [company_written_policy, biometric_release, dpia]\n"
        '    effective_from: "2026-01-01T00:00:00Z"\n'
        "    notes: >-\n      Capture or Use of Biometric Identifier Act",
    )

    errors = rejected(tmp_path, text)

    assert locations(errors) == [(237, "rules[6].effective_from")]
    assert f"overlaps approved rule #{console.pk} in the database" in errors[0][2]


def test_loading_an_older_pack_after_a_newer_one_keeps_what_the_newer_one_changed(tmp_path):
    load_default()
    newer = DEFAULT_PACK_PATH.read_text().replace(
        "preconditions: [company_written_policy, notice_acknowledgement]\n",
        "preconditions: [company_written_policy, notice_acknowledgement, dpia]\n",
    )
    load_text(tmp_path, newer.replace('version: "2026.11.1"', 'version: "2026.12.1"'))
    before = snapshot()

    result = load_default()

    assert result.counts["rules"] == {"unchanged": 13, "kept": 1}
    assert snapshot() == before
    assert "dpia" in JurisdictionRule.objects.get(region="US-NY", state=ApprovalState.APPROVED).preconditions


def test_the_ledger_records_what_each_load_applied():
    load_default()

    loaded = AuditEntry.objects.get(event_type=EventType.POLICY_PACK_LOADED)

    source = read_pack(DEFAULT_PACK_PATH)
    expected = {
        entry_fingerprint(section, entry) for section in ("rules", "retention") for _, entry in source.section(section)
    }
    assert expected <= set(loaded.payload["entries"])
    assert len(loaded.payload["entries"]) == len(set(loaded.payload["entries"]))


def test_a_pack_file_the_ledger_names_only_by_digest_counts_as_applied(tmp_path):
    # Loads recorded before entry fingerprints name the file's SHA-256 alone.
    source = read_pack(write(tmp_path, BASE_PACK))
    other = read_pack(write(tmp_path, BASE_PACK.replace("raw_retention_days: 30", "raw_retention_days: 31"), "b.yaml"))
    record(
        event_type=EventType.POLICY_PACK_LOADED,
        actor=Actor.system("policy_pack"),
        object_type="policy_pack",
        object_id="acceptance:1",
        payload={"name": "acceptance", "version": "1", "sha256": source.sha256, "counts": {}},
    )

    history = PackHistory.from_ledger()

    assert all(history.applied(source, "rules", entry) for _, entry in source.section("rules"))
    assert not any(history.applied(other, "rules", entry) for _, entry in other.section("rules"))


def test_fingerprints_ignore_spelling_but_not_content():
    entry = {
        "region": "US-NY",
        "status": "allow",
        "effective_from": "2026-01-01T00:00:00Z",
        "preconditions": ["dpia", "company_written_policy"],
    }
    same = {
        **entry,
        "effective_from": "2026-01-01T00:00:00+00:00",
        "preconditions": ["company_written_policy", "dpia", "dpia"],
        "notes": "",
    }

    assert entry_fingerprint("rules", entry) == entry_fingerprint("rules", same)
    assert entry_fingerprint("rules", entry) != entry_fingerprint("rules", {**entry, "status": "block"})
    assert entry_fingerprint("rules", {**entry, "preconditions": [["unhashable"]]}) is None


def test_if_empty_seeds_a_new_installation_and_leaves_an_existing_policy_alone():
    out = io.StringIO()
    call_command("load_policy_pack", "--if-empty", stdout=out)
    assert JurisdictionRule.objects.filter(state=ApprovalState.APPROVED).count() == 14
    console_successor("US-TX")
    before = snapshot()

    call_command("load_policy_pack", "--if-empty", stdout=out)

    assert snapshot() == before
    assert out.getvalue().splitlines()[-1] == (
        "Policy already in place; default.yaml was not loaded (--if-empty). "
        "Load a pack explicitly to apply its changes."
    )


# The acceptance cases: rejected, every error located, nothing changed --------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "path", "message"),
    [
        (
            "region: US-NY\n    status: allow",
            "region: XX\n    status: allow",
            20,
            "rules[1].region",
            "'XX' is not a known ISO 3166 code or declared group",
        ),
        (
            "categories: [keystrokes]",
            "categories: [keystrokes, clipboard]",
            13,
            "purposes[0].categories[1]",
            "'clipboard' is not a known data category (declare it under categories)",
        ),
        (
            'effective_to: "2026-06-01T00:00:00Z"',
            'effective_to: "2026-07-01T00:00:00Z"',
            22,
            "rules[1].effective_from",
            "US-NY 2026-06-01T00:00:00Z → open-ended overlaps rules[0] (line 15, "
            "2026-01-01T00:00:00Z → 2026-07-01T00:00:00Z); two approved rules for one region cannot be in force "
            "at the same time",
        ),
        (
            "raw_retention_days: 30",
            "raw_retention_days: -5",
            25,
            "retention[0].raw_retention_days",
            "-5 is less than the minimum of 0",
        ),
    ],
    ids=["unknown-region", "unknown-category", "overlapping-rules", "negative-retention"],
)
def test_a_pack_with_one_mistake_is_rejected_with_its_location(tmp_path, old, new, line, path, message):
    load_default()
    assert old in BASE_PACK

    errors = rejected(tmp_path, BASE_PACK.replace(old, new))

    assert errors == [(line, path, message)]


def test_the_base_acceptance_pack_is_itself_valid(tmp_path):
    result = load_text(tmp_path, BASE_PACK)

    assert result.counts["rules"] == {"created": 2}


def test_every_error_in_a_pack_is_listed_with_file_line_and_path(tmp_path, monkeypatch):
    load_default()
    monkeypatch.chdir(tmp_path)  # messages name the file relative to where the command runs
    pack = """\
        format: consentry-policy-pack
        format_version: 1
        name: acceptance
        version: "1"
        categories:
          - {slug: keystrokes, name: Keystrokes, description: The keys you type.}
        purposes:
          - slug: ai_agent_training
            name: Training AI agents
            description: Teaching AI agents.
            categories: [keystrokes, clipboard]
        rules:
          - region: XX
            status: block
            effective_from: "2026-01-01T00:00:00Z"
          - region: US-NY
            status: conditional
            preconditions: [notice_acknowledgement]
            effective_from: "2026-01-01T00:00:00Z"
          - region: US-NY
            status: allow
            effective_from: "2026-06-01T00:00:00Z"
        retention:
          - category: keystrokes
            raw_retention_days: -5
            delete_on_withdrawal_days: 7
            delete_on_termination_days: 30
    """
    before = snapshot()

    with pytest.raises(PackInvalid) as excinfo:
        load_text(tmp_path, textwrap.dedent(pack), "acceptance.yaml")

    assert snapshot() == before
    assert [(e.line, e.path) for e in excinfo.value.errors] == [
        (11, "purposes[0].categories[1]"),
        (13, "rules[0].region"),
        (22, "rules[2].effective_from"),
        (25, "retention[0].raw_retention_days"),
    ]
    lines = excinfo.value.lines()
    assert lines[1] == "acceptance.yaml:13: rules[0].region: 'XX' is not a known ISO 3166 code or declared group"
    assert lines[3] == "acceptance.yaml:25: retention[0].raw_retention_days: -5 is less than the minimum of 0"


def test_a_rule_overlapping_an_approved_rule_in_the_database_is_rejected(tmp_path):
    load_default()
    old = JurisdictionRule.objects.get(region="US-NY", state=ApprovalState.APPROVED)
    pack = BASE_PACK.replace('effective_from: "2026-01-01T00:00:00Z"', 'effective_from: "2026-02-01T00:00:00Z"')

    errors = rejected(tmp_path, pack)

    assert locations(errors) == [(18, "rules[0].effective_from"), (22, "rules[1].effective_from")]
    assert f"overlaps approved rule #{old.pk} in the database" in errors[0][2]
    assert "start this rule at 2026-01-01T00:00:00Z to replace it" in errors[0][2]


def test_a_rule_must_end_after_it_starts(tmp_path):
    pack = BASE_PACK.replace('effective_to: "2026-06-01T00:00:00Z"', 'effective_to: "2025-12-31T00:00:00Z"')

    errors = rejected(tmp_path, pack)

    assert errors == [(19, "rules[0].effective_to", "must be after effective_from (2026-01-01T00:00:00Z)")]


def test_dates_need_a_time_zone_and_must_exist(tmp_path):
    pack = BASE_PACK.replace('"2026-01-01T00:00:00Z"', '"2026-01-01T00:00:00"').replace(
        '"2026-06-01T00:00:00Z"\n  - region', '"2026-02-30T00:00:00Z"\n  - region'
    )

    errors = rejected(tmp_path, pack)

    assert locations(errors) == [(18, "rules[0].effective_from"), (19, "rules[0].effective_to")]
    assert errors[0][2] == ("'2026-01-01T00:00:00' is not a date and time with a time zone, like 2026-01-01T00:00:00Z")
    assert errors[1][2] == "'2026-02-30T00:00:00Z' is not a real date"


def test_notices_may_not_name_prohibited_purposes_or_categories_outside_the_purpose(tmp_path):
    load_default()
    pack = """\
        format: consentry-policy-pack
        format_version: 1
        name: notices
        version: "1"
        notices:
          - version: 2
            title: T
            summary: S
            body: B
            retention_statement: R
            access_statement: A
            no_evaluation_statement: N
            material: false
            items:
              - {purpose: performance_evaluation, category: keystrokes, description: d}
              - {purpose: emotion_inference, category: keystrokes, description: d}
              - {purpose: ai_agent_training, category: clipboard, description: d}
              - {purpose: sales_forecasting, category: keystrokes, description: d}
    """

    errors = rejected(tmp_path, textwrap.dedent(pack))

    assert errors == [
        (15, "notices[0].items[0].purpose", "'performance_evaluation' is prohibited and may not appear in a notice"),
        (16, "notices[0].items[1].purpose", "'emotion_inference' is prohibited and may not appear in a notice"),
        (
            17,
            "notices[0].items[2].category",
            "'clipboard' is not a known data category (declare it under categories)",
        ),
        (18, "notices[0].items[3].purpose", "'sales_forecasting' is not a known purpose (declare it under purposes)"),
    ]


def test_a_notice_pair_whose_category_is_not_in_the_purpose_is_rejected(tmp_path):
    pack = BASE_PACK.replace(
        "  - {slug: keystrokes, name: Keystrokes, description: The keys you type.}\n",
        "  - {slug: keystrokes, name: Keystrokes, description: The keys you type.}\n"
        "  - {slug: screenshots, name: Screenshots, description: Pictures of your screen.}\n",
    ) + textwrap.dedent("""\
        notices:
          - version: 1
            title: T
            summary: S
            body: B
            retention_statement: R
            access_statement: A
            no_evaluation_statement: N
            material: true
            items:
              - {purpose: ai_agent_training, category: screenshots, description: d}
    """)

    errors = rejected(tmp_path, pack)

    assert errors == [
        (39, "notices[0].items[0].category", "'screenshots' is not one of the categories of 'ai_agent_training'")
    ]


# Structure, syntax and duplicates ----------------------------------------------------------------


def test_a_yaml_syntax_error_is_reported_with_its_line_and_column(tmp_path):
    pack = BASE_PACK.replace("    status: allow\n", "    status: allow\n   oops: [unclosed\n")

    errors = rejected(tmp_path, pack)

    assert len(errors) == 1
    line, path, message = errors[0]
    assert (line, path) == (22, "")
    assert message.startswith("YAML syntax error:")
    with pytest.raises(PackInvalid) as excinfo:
        parse_pack(pack.encode(), filename="pack.yaml")
    assert excinfo.value.errors[0].column is not None
    assert excinfo.value.lines()[0].startswith("pack.yaml:22:")


def test_duplicate_keys_and_duplicate_entries_are_errors(tmp_path):
    pack = BASE_PACK.replace("    status: allow\n", "    status: allow\n    status: block\n") + textwrap.dedent("""\
        exclusions:
          - {kind: app, pattern: "com.1password.*", label: 1Password, reason: password_manager}
          - {kind: app, pattern: "com.1password.*", label: 1Password again, reason: password_manager}
    """)
    pack = pack.replace(
        "  - {slug: keystrokes, name: Keystrokes, description: The keys you type.}\n",
        "  - {slug: keystrokes, name: Keystrokes, description: The keys you type.}\n"
        "  - {slug: keystrokes, name: Keystrokes, description: Typed keys.}\n",
    )

    errors = rejected(tmp_path, pack)

    assert locations(errors) == [(9, "categories[1].slug"), (23, "rules[1].status"), (32, "exclusions[1].pattern")]
    assert errors[1][2] == "duplicate key 'status' (first at line 22); only one is allowed"
    assert errors[0][2] == "category 'keystrokes' is listed twice (first at line 8)"


def test_unknown_fields_and_wrong_types_are_reported_where_they_are(tmp_path):
    pack = BASE_PACK.replace("    status: allow\n", "    status: allowed\n    regoin: US\n").replace(
        'version: "1"', "version: 1.5"
    )

    errors = rejected(tmp_path, pack)

    assert errors == [
        (4, "version", "1.5 is not a version string such as \"2026.11.1\" (letters, digits, '.', '_', '+', '-')"),
        (21, "rules[1].status", "'allowed' is not one of: allow, conditional, block"),
        (
            22,
            "rules[1].regoin",
            "unknown field 'regoin'; expected one of: blocked_categories, effective_from, effective_to, "
            "max_retention_days, notes, preconditions, region, status",
        ),
    ]


def test_norway_and_leading_zeros_are_read_as_written(tmp_path):
    pack = """\
        format: consentry-policy-pack
        format_version: 1
        name: nordics
        version: "1"
        regions:
          - {code: NORDICS, kind: group, name: Nordics, members: [DK, FI, IS, NO, SE]}
        categories:
          - {slug: keystrokes, name: Keystrokes, description: The keys you type.}
        retention:
          - {category: keystrokes, raw_retention_days: 030, delete_on_withdrawal_days: 7, delete_on_termination_days: 7}
    """

    errors = rejected(tmp_path, textwrap.dedent(pack))

    # YAML 1.1 would read NO as false and 030 as octal 24: here NO is Norway and 030 is refused.
    assert errors == [(10, "retention[0].raw_retention_days", "'030' is not a whole number")]
    load_text(tmp_path, textwrap.dedent(pack).replace("030", "30"))
    assert "NO" in Region.objects.get(code="NORDICS").members.values_list("code", flat=True)


def test_region_declarations_are_checked_against_iso_3166(tmp_path):
    pack = BASE_PACK.replace(
        "  - {code: US-NY, kind: subdivision}\n",
        "  - {code: US-NY, kind: subdivision}\n"
        "  - {code: US-ZZ, kind: subdivision}\n"
        "  - {code: UK, kind: country}\n"
        "  - {code: DE, kind: group, name: Germany, members: [DE]}\n"
        "  - {code: NAFTA, kind: group, name: North America, members: [US, CA, XX]}\n"
        "  - {code: US, kind: country, members: [US]}\n",
    )

    errors = rejected(tmp_path, pack)

    assert locations(errors) == [
        (7, "regions[1].code"),
        (8, "regions[2].code"),
        (9, "regions[3].code"),
        (10, "regions[4].members[2]"),
        (11, "regions[5].members"),
    ]


def test_aliases_are_refused_with_their_line(tmp_path):
    pack = BASE_PACK.replace("    categories: [keystrokes]\n", "    categories: &cats [keystrokes]\n").replace(
        "    preconditions: [notice_acknowledgement]\n", "    preconditions: *cats\n"
    )

    errors = rejected(tmp_path, pack)

    assert errors == [
        (17, "", "YAML syntax error: aliases (*name) are not allowed in a policy pack; write the value out")
    ]


def test_a_rule_overlapping_several_others_reports_each_overlap(tmp_path):
    pack = BASE_PACK.replace('    effective_to: "2026-06-01T00:00:00Z"\n', "").replace(
        "rules:\n", 'rules:\n  - {region: US-NY, status: block, effective_from: "2025-01-01T00:00:00Z"}\n'
    )

    errors = rejected(tmp_path, pack)

    assert locations(errors) == [
        (19, "rules[1].effective_from"),
        (22, "rules[2].effective_from"),
        (22, "rules[2].effective_from"),
    ]


def test_the_example_in_the_documentation_loads():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "policy-packs.md").read_text()
    example = guide.split("## Example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]

    result = load_pack(parse_pack(example.encode(), filename="policy-packs.md"))

    assert result.counts["rules"] == {"created": 2}
    assert result.counts["notices"] == {"created": 1}


def test_the_schema_lists_exactly_the_models_choices():
    definitions = pack_schema()["$defs"]

    assert definitions["rule"]["properties"]["status"]["enum"] == RuleStatus.values
    assert definitions["rule"]["properties"]["preconditions"]["items"]["enum"] == PreconditionType.values
    assert definitions["legal_instrument"]["properties"]["kind"]["enum"] == PreconditionType.values
    assert definitions["region"]["properties"]["kind"]["enum"] == RegionKind.values
    assert definitions["exclusion"]["properties"]["kind"]["enum"] == ExclusionKind.values
    assert definitions["exclusion"]["properties"]["reason"]["enum"] == ExclusionReason.values
    json.dumps(pack_schema())  # plain JSON, usable by editors


# Transactions ----------------------------------------------------------------------------------------


def test_a_failure_while_loading_rolls_the_whole_pack_back(tmp_path, monkeypatch):
    def refuse(**kwargs):
        raise DomainError("The exclusion is not valid.", errors={"pattern": "refused"})

    monkeypatch.setattr("governance.packs.loading.exclusion_save", refuse)
    before = snapshot()

    with pytest.raises(PackInvalid) as excinfo:
        load_default()

    assert snapshot() == before
    [error] = excinfo.value.errors
    assert error.path == "exclusions[0]"
    assert error.message == "could not be applied: The exclusion is not valid. (pattern: refused)"


def test_checking_a_pack_reads_but_never_writes():
    before = snapshot()

    assert check_pack(read_pack(DEFAULT_PACK_PATH)) == []
    assert snapshot() == before


# Export ---------------------------------------------------------------------------------------------------


def test_an_export_loads_back_into_the_same_database_as_a_no_op():
    load_default()
    before = snapshot()

    exported = export_pack(name="roundtrip", version="1")
    result = load_pack(parse_pack(exported.encode(), filename="export.yaml"))

    assert not result.changed
    assert snapshot() == before


def test_an_export_loaded_into_an_empty_database_rebuilds_the_same_policy():
    # Build the policy in a savepoint, export it, and roll back to an empty database.
    with transaction.atomic():
        load_default()
        first = export_pack(name="roundtrip", version="1")
        transaction.set_rollback(True)
    assert Region.objects.count() == 0

    result = load_pack(parse_pack(first.encode(), filename="export.yaml"))
    second = export_pack(name="roundtrip", version="1")
    again = load_pack(parse_pack(second.encode(), filename="export.yaml"))

    assert result.changed and not again.changed
    assert second == first
    assert JurisdictionRule.objects.filter(state=ApprovalState.APPROVED).count() == 14
    assert Notice.objects.get().version == 1


# Commands --------------------------------------------------------------------------------------------------


def test_the_command_loads_the_default_pack_and_prints_a_summary():
    out = io.StringIO()

    call_command("load_policy_pack", stdout=out)
    call_command("load_policy_pack", stdout=out)

    lines = out.getvalue().splitlines()
    assert "  rules: created 14, updated 0, unchanged 0" in lines
    assert lines[-1].endswith("already up to date.")


def test_the_command_prints_every_error_and_exits_non_zero_on_a_bad_pack(tmp_path):
    path = write(tmp_path, BASE_PACK.replace("region: US-NY\n    status: allow", "region: XX\n    status: allow"))
    err = io.StringIO()
    before = snapshot()

    with pytest.raises(CommandError) as excinfo:
        call_command("load_policy_pack", str(path), stderr=err)

    assert excinfo.value.returncode != 0
    assert "1 error(s)" in str(excinfo.value)
    assert err.getvalue().splitlines() == [
        f"{path}:20: rules[1].region: 'XX' is not a known ISO 3166 code or declared group"
    ]
    assert snapshot() == before


def test_the_command_with_check_validates_without_loading(tmp_path):
    out = io.StringIO()

    call_command("load_policy_pack", "--check", stdout=out)

    assert "is valid" in out.getvalue()
    assert Region.objects.count() == 0
    with pytest.raises(CommandError):
        call_command("load_policy_pack", str(tmp_path / "missing.yaml"), "--check", stderr=io.StringIO())


def test_the_export_command_writes_a_pack_the_load_command_accepts(tmp_path):
    call_command("load_policy_pack", stdout=io.StringIO())
    output = tmp_path / "exported.yaml"

    call_command("export_policy_pack", "--output", str(output), "--pack-version", "7", stdout=io.StringIO())
    out = io.StringIO()
    call_command("load_policy_pack", str(output), stdout=out)

    assert output.read_text().startswith("format: consentry-policy-pack\n")
    assert out.getvalue().strip().endswith("already up to date.")
