from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import CATEGORIES, POLICY_START, SYSTEM
from consent.services import consent_withdraw
from consentry.outbox import relay_pending
from decisions import snapshot
from decisions.revocations import feed_head
from decisions.selectors import capture_reads, employee_facts
from decisions.snapshot import build_policy, current_policy
from decisions.tests.conftest import grant_consent
from governance import services as gov
from governance.models import PolicyRevision

pytestmark = pytest.mark.django_db
P = "ai_agent_training"


def test_the_policy_version_is_a_hash_of_content_and_stable_across_builds(policy):
    _, first = build_policy()
    _, second = build_policy()
    assert first.version == second.version and len(first.version) == 64


def test_an_unchanged_policy_costs_one_query_per_request(policy, django_assert_num_queries):
    first = current_policy()
    with django_assert_num_queries(1):
        assert current_policy() is first


def test_the_capture_path_reads_the_feed_head_the_policy_marker_and_the_facts_in_one_query(
    policy, us_employee, django_assert_num_queries
):
    grant_consent(us_employee, "keystrokes")
    grant_consent(us_employee, "mouse_movement")
    consent_withdraw(employee=us_employee, purpose=P, categories=["keystrokes"], actor=SYSTEM)
    relay_pending()
    now = timezone.now()
    with django_assert_num_queries(1):
        reads = capture_reads(employee=us_employee, at=now)
    assert reads.feed_head == feed_head() > 0
    assert reads.policy_marker == snapshot.revision_marker()
    assert reads.facts == employee_facts(employee=us_employee, at=now)
    assert reads.at == now
    policy_now = current_policy()
    with django_assert_num_queries(0):
        # The marker read with the facts is the one the cache compares: no rebuild, no second read.
        assert current_policy(reads.policy_marker) is policy_now
    # A database whose revision row was reset still answers (and the marker says "unknown").
    PolicyRevision.objects.all().delete()
    reset = capture_reads(employee=us_employee, at=now)
    assert (reset.feed_head, reset.policy_marker, reset.facts) == (reads.feed_head, (0, None), reads.facts)


def test_capture_reads_for_an_employee_with_no_facts_yet(policy, us_employee):
    reads = capture_reads(employee=us_employee, at=timezone.now())
    assert reads.facts.consents == {} and reads.facts.acknowledgements == () and reads.facts.pauses == ()
    assert reads.facts.consent_version == 0 and reads.facts.hr_id == us_employee.hr_id


def test_any_governance_change_is_noticed_and_changes_the_version(policy):
    before = current_policy()
    gov.exclusion_save(kind="domain", pattern="*.example.org", label="Example", actor=SYSTEM)
    after = current_policy()
    assert after is not before and after.version != before.version
    assert {exclusion.label for exclusion in after.exclusions} >= {"Example"}


def test_a_process_with_a_stale_cache_rebuilds_on_the_next_request(policy):
    current_policy()
    # Another process bumped the revision: this one's cache is simply stale.
    gov.policy_changed()
    stale = snapshot._cached
    assert stale is not None
    assert current_policy() is not stale.policy


def test_drafts_do_not_count_and_approved_rules_do(policy):
    region = policy["regions"]["US-CA"]
    draft = gov.rule_draft(region=region, status="block", effective_from=POLICY_START, actor=SYSTEM)
    assert "US-CA" not in current_policy().rules
    gov.rule_approve(rule=draft, actor=SYSTEM, via="tests")
    assert current_policy().rules["US-CA"][0].status == "block"


def test_a_rule_that_starts_later_takes_effect_by_time_without_a_rebuild(policy):
    start = timezone.now() + timedelta(days=3)
    gov.rule_approve(
        rule=gov.rule_draft(region=policy["regions"]["US-CA"], status="block", effective_from=start, actor=SYSTEM),
        actor=SYSTEM,
        via="tests",
    )
    compiled = current_policy()
    chain = compiled.chain("US", "US-CA")
    now_rule, later_rule = compiled.rule_at(chain, timezone.now()), compiled.rule_at(chain, start)
    assert now_rule is not None and now_rule.region == "US"
    assert later_rule is not None and later_rule.region == "US-CA"


def test_region_groups_and_purposes_are_compiled(policy):
    compiled = current_policy()
    assert compiled.chain("DE", "DE-BE") == ("DE-BE", "DE", "EU")
    assert compiled.purposes[P].categories == frozenset(CATEGORIES)
    assert compiled.purposes["performance_evaluation"].prohibited


def test_a_material_notice_marks_changed_pairs_for_re_consent_and_a_new_wording(policy):
    items = [(P, slug, f"We capture your {slug}.") for slug in CATEGORIES]
    items[0] = (P, "keystrokes", "We now also capture what you type in chat.")
    gov.notice_approve(
        notice=gov.notice_draft(
            title="v2",
            summary="Changed.",
            body="Text.",
            retention_statement="90 days.",
            access_statement="Pipelines.",
            no_evaluation_statement="Never used to evaluate you.",
            items=items,
            material=True,
            actor=SYSTEM,
        ),
        actor=SYSTEM,
        via="tests",
    )
    v1, v2 = current_policy().notices
    assert (v1.version, v2.version) == (1, 2)
    assert v2.reconsent_from[(P, "keystrokes")] == 2 and v2.reconsent_from[(P, "screenshots")] == 1
    assert v2.declared_since[(P, "keystrokes")] == 2 and v2.declared_since[(P, "screenshots")] == 1
    assert current_policy().notice_at(timezone.now()) is v2


def test_a_per_employee_instrument_is_indexed_by_its_employee(policy, us_employee):
    gov.instrument_save(
        kind="biometric_release",
        title="Release",
        region=policy["regions"]["US"],
        valid_from=POLICY_START.date(),
        document_ref="hr/releases/1.pdf",
        employee=us_employee,
        actor=SYSTEM,
    )
    compiled = current_policy()
    assert [i.employee for i in compiled.instruments[("biometric_release", us_employee.hr_id)]] == [us_employee.hr_id]
    assert ("biometric_release", "") not in compiled.instruments
