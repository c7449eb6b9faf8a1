"""The pure engine, on hand-built policies: no database, no clock."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType

import pytest

from decisions import engine
from decisions.engine import (
    CaptureRequest,
    ConsentFacts,
    Context,
    EmployeeFacts,
    GrantFacts,
    Instrument,
    Notice,
    Policy,
    Rule,
    UseRecord,
    decide_capture,
    decide_use,
)

AT = datetime(2026, 6, 1, 12, tzinfo=UTC)
START = datetime(2026, 1, 1, tzinfo=UTC)
P = "ai_agent_training"
CATEGORIES = ("keystrokes", "keystroke_timing", "screenshots")


def rule(region, status="allow", preconditions=(), blocked=(), caps=None, start=START, end=None, id=1):
    return Rule(
        id=id,
        region=region,
        status=status,
        preconditions=tuple(preconditions),
        blocked_categories=frozenset(blocked),
        max_retention_days=MappingProxyType(caps or {}),
        effective_from=start,
        effective_to=end,
    )


def notice(version=1, published=START, pairs=None, reconsent=None, since=None):
    pairs = frozenset(pairs if pairs is not None else [(P, c) for c in CATEGORIES])
    return Notice(
        version=version,
        published_at=published,
        pairs=pairs,
        reconsent_from=MappingProxyType(reconsent if reconsent is not None else dict.fromkeys(pairs, 1)),
        declared_since=MappingProxyType(since if since is not None else dict.fromkeys(pairs, 1)),
    )


def policy(*rules_, notices=None, instruments=(), exclusions=(), retention=None, purposes=None):
    by_region: dict[str, list[Rule]] = {}
    for item in rules_:
        by_region.setdefault(item.region, []).append(item)
    grouped: dict[tuple[str, str], list[Instrument]] = {}
    for item in instruments:
        grouped.setdefault((item.kind, item.employee), []).append(item)
    return Policy(
        version="v-test",
        rules=MappingProxyType({code: tuple(items) for code, items in by_region.items()}),
        groups=MappingProxyType({"DE": ("EEA", "EU"), "FR": ("EEA", "EU")}),
        categories=MappingProxyType(
            {
                "keystrokes": engine.Category("keystrokes", sensitive=True),
                "keystroke_timing": engine.Category("keystroke_timing", biometric=True, sensitive=True),
                "screenshots": engine.Category("screenshots", sensitive=True),
            }
        ),
        purposes=MappingProxyType(
            purposes
            or {
                P: engine.Purpose(P, frozenset(CATEGORIES)),
                "performance_evaluation": engine.Purpose("performance_evaluation", frozenset(CATEGORIES), True),
            }
        ),
        notices=tuple(notices if notices is not None else [notice()]),
        exclusions=tuple(exclusions),
        retention=MappingProxyType(
            retention
            if retention is not None
            else {c: (engine.Retention(c, raw_retention_days=30, delete_on_termination_days=30),) for c in CATEGORIES}
        ),
        instruments=MappingProxyType({key: tuple(items) for key, items in grouped.items()}),
    )


def employee(country="US", subdivision="US-WA", consents=CATEGORIES, notice_version=1, **extra):
    return EmployeeFacts(
        hr_id="E1",
        country=country,
        subdivision=subdivision,
        consents=MappingProxyType(
            {(P, c): ConsentFacts(state="granted", notice_version=notice_version, since=START) for c in consents}
        ),
        consent_version=len(consents),
        **extra,
    )


NO_CONTEXT = Context()


def decide(pol, emp, *categories, purpose=P, context=NO_CONTEXT, at=AT):
    return decide_capture(pol, emp, CaptureRequest(purpose, tuple(categories or ("keystrokes",)), context), at=at)


def codes(decision, category="keystrokes"):
    return [reason.code for result in decision.categories if result.category == category for reason in result.reasons]


US = rule("US")


def test_everything_in_place_is_allowed_and_carries_the_versions():
    decision = decide(policy(US), employee(), "keystrokes", "screenshots")
    assert decision.allowed_categories == ("keystrokes", "screenshots")
    assert decision.policy_version == "v-test" and decision.consent_version == 3 and decision.at == AT


def test_an_unknown_employee_is_denied_with_only_that_reason():
    decision = decide(policy(US), None, "keystrokes", "screenshots")
    assert [codes(decision, c) for c in ("keystrokes", "screenshots")] == [["unknown_employee"]] * 2
    assert decision.categories[0].reasons[0].missing_configuration


def test_reasons_come_in_the_specified_order():
    pol = policy(rule("US", "conditional", preconditions=["dpia"], blocked=["keystrokes"]))
    emp = employee(consents=(), status="on_leave", pauses=((START, AT + timedelta(hours=1)),))
    context = Context(app="com.1password.mac")
    excl = engine.Exclusion("app", re.compile(r"com\.1password\..*"), "1Password", "password_manager")
    decision = decide(replace(pol, exclusions=(excl,)), emp, context=context)
    assert codes(decision) == [
        "employee_inactive",
        "precondition_missing",
        "category_blocked_in_jurisdiction",
        "no_consent",
        "paused_by_employee",
        "excluded_context",
    ]


def test_the_most_specific_rule_in_force_wins():
    pol = policy(rule("US"), rule("US-WA", "block", id=2))
    assert codes(decide(pol, employee())) == ["jurisdiction_blocked"]
    assert decide(pol, employee(subdivision="US-OR")).allowed_categories == ("keystrokes",)


def test_a_group_rule_covers_its_member_countries():
    pol = policy(rule("EU", "block"))
    assert codes(decide(pol, employee("DE", "DE-BE"))) == ["jurisdiction_blocked"]


def test_no_rule_is_missing_configuration_not_a_violation():
    decision = decide(policy(rule("US")), employee("BR", "BR-SP"))
    [reason] = decision.categories[0].reasons
    assert reason.code == "jurisdiction_unknown" and reason.missing_configuration


def test_rule_periods_are_chosen_by_the_time_of_the_decision():
    later = datetime(2026, 7, 1, tzinfo=UTC)
    pol = policy(rule("US", end=later), rule("US", "block", start=later, id=2))
    assert decide(pol, employee(), at=AT).allowed_categories
    assert codes(decide(pol, employee(), at=later)) == ["jurisdiction_blocked"]
    # Before anything was in force: no rule, and no consent given yet.
    assert codes(decide(pol, employee(), at=START - timedelta(seconds=1))) == ["jurisdiction_unknown", "no_consent"]


def test_acknowledging_the_current_notice_meets_notice_acknowledgement():
    pol = policy(rule("US", preconditions=["notice_acknowledgement"]), notices=[notice(1), notice(2)])
    stale = employee(acknowledgements=((1, START),), notice_version=1)
    fresh = employee(acknowledgements=((2, START),))
    assert codes(decide(pol, stale)) == ["precondition_missing"]
    assert decide(pol, fresh).allowed_categories
    # An acknowledgement made after the decision's moment does not count yet.
    assert codes(decide(pol, employee(acknowledgements=((2, AT + timedelta(1)),)))) == ["precondition_missing"]


def test_any_acknowledgement_meets_notice_acknowledgement_once():
    pol = policy(rule("US", preconditions=["notice_acknowledgement_once"]), notices=[notice(1), notice(2)])
    assert decide(pol, employee(acknowledgements=((1, START),))).allowed_categories
    assert codes(decide(pol, employee())) == ["precondition_missing"]


def test_notice_at_collection_needs_an_acknowledged_notice_with_the_pair_s_current_wording():
    pair = (P, "keystrokes")
    v2 = notice(2, since={pair: 2, (P, "screenshots"): 1, (P, "keystroke_timing"): 1})
    pol = policy(rule("US", preconditions=["notice_at_collection"]), notices=[notice(1), v2])
    acked_v1 = employee(acknowledgements=((1, START),))
    # v2 reworded keystrokes: the v1 acknowledgement no longer told them about it; screenshots unchanged.
    assert codes(decide(pol, acked_v1, "keystrokes")) == ["precondition_missing"]
    assert decide(pol, acked_v1, "screenshots").allowed_categories == ("screenshots",)
    assert decide(pol, employee(acknowledgements=((2, START),))).allowed_categories


def test_a_biometric_release_is_needed_only_for_biometric_categories_and_only_the_employee_s_own():
    pol = policy(rule("US-IL", preconditions=["biometric_release"]))
    emp = employee(subdivision="US-IL")
    assert decide(pol, emp, "keystrokes").allowed_categories == ("keystrokes",)
    assert codes(decide(pol, emp, "keystroke_timing"), "keystroke_timing") == ["precondition_missing"]
    someone_else = Instrument("biometric_release", "US-IL", date(2026, 1, 1), employee="E2")
    company_wide = Instrument("biometric_release", "US-IL", date(2026, 1, 1))
    own = Instrument("biometric_release", "US-IL", date(2026, 1, 1), employee="E1")
    for instruments, allowed in (((someone_else,), False), ((company_wide,), False), ((own,), True)):
        decision = decide(
            replace(pol, instruments=policy(instruments=instruments).instruments), emp, "keystroke_timing"
        )
        assert bool(decision.allowed_categories) is allowed


def test_an_instrument_counts_only_within_its_scope_and_validity():
    base = rule("US", preconditions=["company_written_policy"])

    def allowed(instrument, **employee_extra):
        return bool(decide(policy(base, instruments=[instrument]), employee(**employee_extra)).allowed_categories)

    kind = "company_written_policy"
    assert allowed(Instrument(kind, "US", date(2026, 1, 1)))
    assert allowed(Instrument(kind, "US-WA", date(2026, 1, 1)))
    assert not allowed(Instrument(kind, "US-NY", date(2026, 1, 1)))
    assert not allowed(Instrument(kind, "US", date(2026, 7, 1)))
    assert not allowed(Instrument(kind, "US", date(2025, 1, 1), valid_to=date(2026, 5, 31)))
    assert allowed(Instrument(kind, "US", date(2025, 1, 1), valid_to=date(2026, 6, 1)))
    assert allowed(Instrument(kind, "US", date(2026, 1, 1), entity="Acme Inc"), entity="Acme Inc")
    assert not allowed(Instrument(kind, "US", date(2026, 1, 1), entity="Acme Inc"), entity="Acme GmbH")
    assert not allowed(Instrument(kind, "US", date(2026, 1, 1), site="Plant 4"), site="HQ")
    assert not allowed(Instrument("dpia", "US", date(2026, 1, 1)))


def test_missing_preconditions_are_all_named():
    pol = policy(rule("US", preconditions=["company_written_policy", "notice_acknowledgement"]))
    [reason] = decide(pol, employee()).categories[0].reasons
    assert reason.preconditions == ("company_written_policy", "notice_acknowledgement")
    assert "company_written_policy" in reason.detail and not reason.missing_configuration


def test_an_acknowledgement_precondition_without_any_notice_is_missing_configuration():
    pol = policy(rule("US", preconditions=["notice_acknowledgement"]), notices=[])
    reasons = decide(pol, employee()).categories[0].reasons
    assert reasons[0].code == "precondition_missing" and reasons[0].missing_configuration


def test_consent_states_each_have_their_reason():
    def with_consent(**facts):
        consent = ConsentFacts(**{"state": "granted", "notice_version": 1, "since": START, **facts})
        return replace(employee(), consents=MappingProxyType({(P, "keystrokes"): consent}))

    pol = policy(US)
    assert codes(decide(pol, employee(consents=()))) == ["no_consent"]
    assert codes(decide(pol, with_consent(state="withdrawn"))) == ["consent_withdrawn"]
    assert codes(decide(pol, with_consent(state="expired"))) == ["consent_expired"]
    assert codes(decide(pol, with_consent(expires_at=AT))) == ["consent_expired"]
    assert decide(pol, with_consent(expires_at=AT + timedelta(seconds=1))).allowed_categories
    assert codes(decide(pol, with_consent(since=AT + timedelta(seconds=1)))) == ["no_consent"]


def test_consent_under_a_notice_older_than_the_last_material_change_needs_re_consent():
    pair = (P, "keystrokes")
    v2 = notice(2, reconsent={pair: 2, (P, "screenshots"): 1, (P, "keystroke_timing"): 1})
    pol = policy(US, notices=[notice(1), v2])
    assert codes(decide(pol, employee(notice_version=1))) == ["reconsent_required"]
    assert decide(pol, employee(notice_version=1), "screenshots").allowed_categories
    assert decide(pol, employee(notice_version=2)).allowed_categories


def test_a_pair_the_notice_in_force_no_longer_declares_is_not_consented():
    v2 = notice(2, pairs=[(P, "screenshots")])
    assert codes(decide(policy(US, notices=[notice(1), v2]), employee())) == ["no_consent"]


def test_a_prohibited_purpose_is_denied_even_with_everything_else_in_place():
    emp = replace(
        employee(),
        consents=MappingProxyType({("performance_evaluation", "keystrokes"): ConsentFacts("granted", 1, START)}),
    )
    assert codes(decide(policy(US), emp, purpose="performance_evaluation")) == ["purpose_prohibited", "no_consent"]


def test_an_unknown_purpose_or_category_is_missing_configuration():
    unknown_purpose = decide(policy(US), employee(), purpose="mind_reading")
    assert [(r.code, r.missing_configuration) for r in unknown_purpose.categories[0].reasons] == [
        ("purpose_unknown", True)
    ]
    unknown_category = decide(policy(US), employee(), "brainwaves")
    assert [(r.code, r.missing_configuration) for r in unknown_category.categories[0].reasons] == [
        ("category_not_in_purpose", True),
        ("no_consent", False),
    ]


def test_a_pause_denies_only_while_it_runs():
    emp = employee(pauses=((AT - timedelta(minutes=5), AT + timedelta(minutes=5)),))
    assert codes(decide(policy(US), emp)) == ["paused_by_employee"]
    assert decide(policy(US), emp, at=AT + timedelta(minutes=5)).allowed_categories


def test_exclusions_match_globs_case_insensitively_and_only_their_categories():
    exclusions = (
        engine.Exclusion("domain", re.compile(r"(?s:.*\.chase\.com)\Z"), "Chase", "banking"),
        engine.Exclusion("app", re.compile(r"(?s:com\.slack\..*)\Z"), "Slack", "other", frozenset({"screenshots"})),
        engine.Exclusion("flag", re.compile(r"(?s:private_browsing)\Z"), "Private", "private_browsing"),
    )
    pol = policy(US, exclusions=exclusions)
    for context in (
        Context(domain="WWW.Chase.com."),
        Context(domain="chase.com"),
        Context(flags=frozenset({"private_browsing"})),
    ):
        assert codes(decide(pol, employee(), context=context)) == ["excluded_context"], context
    for written in ("https://secure.chase.com/login?x=1", "secure.chase.com:443", "user@www.chase.com"):
        assert codes(decide(pol, employee(), context=Context(domain=written))) == ["excluded_context"], written
    assert decide(pol, employee(), context=Context(domain="notchase.com")).allowed_categories
    slack = Context(app="com.slack.desktop")
    assert decide(pol, employee(), "keystrokes", context=slack).allowed_categories == ("keystrokes",)
    assert codes(decide(pol, employee(), "screenshots", context=slack), "screenshots") == ["excluded_context"]


# Use ------------------------------------------------------------------------------------

GRANT = GrantFacts(
    id="g_1",
    employee="E1",
    subject="p_1",
    purpose=P,
    categories=frozenset({"keystrokes", "screenshots"}),
    issued_at=AT - timedelta(days=1),
    expires_at=AT - timedelta(days=1) + timedelta(seconds=60),
    country="US",
    subdivision="US-WA",
)
RECORD = UseRecord(
    id="r1", subject="p_1", category="keystrokes", captured_at=GRANT.issued_at + timedelta(seconds=1), grant_id="g_1"
)


def use(pol=None, *, record=RECORD, grant=GRANT, emp=None, purpose=P, at=AT):
    reasons = decide_use(
        pol or policy(US), record=record, purpose=purpose, grant=grant, employee=emp or employee(), at=at
    )
    return [reason.code for reason in reasons]


def test_a_record_inside_its_grant_with_consent_is_usable():
    assert use() == []


def test_a_record_without_a_grant_is_denied_with_only_that_reason():
    assert use(grant=None) == ["no_capture_grant"]


def test_each_kind_of_grant_mismatch_is_caught():
    for change in (
        {"category": "keystroke_timing"},
        {"subject": "p_2"},
        {"captured_at": GRANT.issued_at - timedelta(seconds=1)},
        {"captured_at": GRANT.expires_at},
    ):
        assert use(record=RECORD._replace(**change))[0] == "grant_mismatch", change
    assert use(purpose="performance_evaluation")[0] == "grant_mismatch"


def test_a_withdrawal_after_capture_stops_use_even_after_re_consent():
    withdrawn_later = ConsentFacts("granted", 1, START, withdrawn_at=AT - timedelta(hours=1))
    emp = replace(employee(), consents=MappingProxyType({(P, "keystrokes"): withdrawn_later}))
    assert use(emp=emp) == ["consent_withdrawn"]
    withdrawn_before_grant = replace(withdrawn_later, withdrawn_at=GRANT.issued_at - timedelta(days=1))
    emp = replace(employee(), consents=MappingProxyType({(P, "keystrokes"): withdrawn_before_grant}))
    assert use(emp=emp) == []


def test_retention_is_the_strictest_of_policies_and_rule_caps_where_captured_and_now():
    at = RECORD.captured_at + timedelta(days=10)
    assert use(at=at) == []
    assert use(policy(rule("US", caps={"keystrokes": 10})), at=at) == ["retention_expired"]
    # Captured in Washington with a 5-day state policy, working in Oregon now: still 5 days.
    state_policy = {
        "keystrokes": (
            engine.Retention("keystrokes", 30, 30),
            engine.Retention("keystrokes", 5, 30, region="US-WA"),
        )
    }
    moved = employee(subdivision="US-OR")
    assert use(policy(US, retention=state_policy), emp=moved, at=RECORD.captured_at + timedelta(days=6)) == [
        "retention_expired"
    ]


def test_no_retention_limit_at_all_is_missing_configuration():
    reasons = decide_use(policy(US, retention={}), record=RECORD, purpose=P, grant=GRANT, employee=employee(), at=AT)
    assert [(r.code, r.missing_configuration) for r in reasons] == [("retention_expired", True)]


def test_a_terminated_employee_s_data_is_denied_after_the_deletion_window():
    left = employee(status="terminated", terminated_at=AT - timedelta(days=10))
    assert use(emp=left) == []
    assert use(emp=left, at=AT + timedelta(days=19)) == []
    assert use(emp=left, at=AT + timedelta(days=20)) == ["employee_inactive"]


def test_erasure_and_destroyed_keys_deny_use():
    assert use(emp=employee(erasure_requested_at=AT - timedelta(hours=1))) == ["erasure_requested"]
    destroyed = frozenset({("keystrokes", RECORD.captured_at.date())})
    assert use(emp=employee(destroyed_keys=destroyed)) == ["data_key_destroyed"]


def test_a_prohibited_or_unknown_purpose_is_never_usable():
    grant = GRANT._replace(purpose="performance_evaluation")
    emp = replace(
        employee(),
        consents=MappingProxyType({("performance_evaluation", "keystrokes"): ConsentFacts("granted", 1, START)}),
    )
    assert use(grant=grant, emp=emp, purpose="performance_evaluation") == ["purpose_prohibited"]
    assert "purpose_unknown" in use(purpose="mind_reading")


def test_the_engine_compares_with_the_models_own_values_and_still_imports_no_orm():
    import subprocess
    import sys

    # A fresh interpreter: this test process has long imported the ORM.
    probe = "import sys, decisions.engine; print(sorted(m for m in sys.modules if m.startswith('django.db')))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

    from consent.models import ConsentEventKind
    from governance.models import PreconditionType, RuleStatus
    from people.models import EmployeeStatus

    # The models' choices are the very enums the engine reads, not copies of their strings.
    assert engine.RuleStatus is RuleStatus and engine.PreconditionType is PreconditionType
    assert engine.EmployeeStatus is EmployeeStatus and engine.ConsentEventKind is ConsentEventKind
    assert RuleStatus.choices == [
        ("allow", "Allowed"),
        ("conditional", "Allowed under conditions"),
        ("block", "Blocked"),
    ]
    assert "block" in RuleStatus and "banned" not in RuleStatus


def test_a_reason_takes_its_flags_by_name_only():
    with pytest.raises(TypeError):
        engine.Reason(engine.Code.NO_CONSENT, "No consent.", True)  # type: ignore[call-arg]
    reason = engine.Reason(engine.Code.NO_CONSENT, "No consent.", missing_configuration=True)
    assert reason.missing_configuration and reason.preconditions == ()
