"""The stream evaluator's shortcuts (windows, caches, chunks) answer exactly as the engine does record by record."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SYSTEM, make_employee
from consent.services import consent_withdraw
from decisions import engine, usebatch
from decisions.datakeys import DESTROYED, key_states
from decisions.models import CaptureGrant, DataKey, DestroyedKey
from decisions.pseudonyms import pseudonym
from decisions.selectors import employees_for_use, grants_by_id
from decisions.snapshot import current_policy
from decisions.tests.conftest import PURPOSE, grant_consent

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
TODAY = datetime(2026, 11, 20, tzinfo=UTC)
CATEGORIES = ("keystrokes", "mouse_movement", "screenshots", "keystroke_timing")
# (employee, issued at, lifetime): single-day grants, and one that spans midnight
# (issued before grants ended at midnight at the latest).
GRANTS = (
    (0, TODAY + timedelta(hours=9), timedelta(minutes=10)),
    (0, TODAY - timedelta(days=1, hours=1), timedelta(minutes=10)),
    (0, TODAY - timedelta(seconds=30), timedelta(seconds=60)),
    (1, TODAY + timedelta(hours=8), timedelta(minutes=10)),
    (1, TODAY - timedelta(days=2), timedelta(minutes=10)),
    (2, TODAY + timedelta(hours=7), timedelta(minutes=10)),
    (2, TODAY - timedelta(days=40), timedelta(minutes=10)),
)


@pytest.fixture
def world(policy, django_db_blocker):
    """Three employees, their grants, live keys and tombstones; the use decision only reads them."""
    people = [make_employee(country="US", subdivision="US-WA") for _ in range(3)]
    for person in people:
        grant_consent(person, "keystrokes", "mouse_movement", "screenshots", at=AT - timedelta(days=60))
    consent_withdraw(
        employee=people[1], purpose=PURPOSE, categories=["mouse_movement"], actor=SYSTEM, at=AT - timedelta(days=1)
    )
    grants = []
    for index, (owner, issued, lifetime) in enumerate(GRANTS):
        person = people[owner]
        grants.append(
            CaptureGrant.objects.create(
                id=f"g_eq{index}",
                employee=person,
                device_id="laptop",
                purpose_id=PURPOSE,
                categories=list(CATEGORIES[:3]),
                subject=pseudonym(purpose=PURPOSE, hr_id=person.hr_id),
                country="US",
                subdivision="US-WA",
                policy_version="test",
                consent_version=1,
                issued_at=issued,
                expires_at=issued + lifetime,
            )
        )
    day = TODAY.date()
    for serial, (owner, category, when) in enumerate(
        [(0, "keystrokes", day), (0, "screenshots", day), (1, "keystrokes", day), (0, "mouse_movement", day)]
    ):
        DataKey.objects.create(
            id=f"k_live{serial}",
            employee=people[owner],
            category=category,
            day=when,
            purposes=[PURPOSE],
            country="US",
            wrapped=b"wrapped",
            master_version="test",
            created_at=AT,
        )
    # Employee 0's mouse movement of today, and screenshots of the day before the midnight grant's end.
    DataKey.objects.filter(pk="k_live3").delete()
    for serial, (owner, category, when) in enumerate(
        [(0, "mouse_movement", day), (0, "screenshots", day - timedelta(days=1)), (2, "keystrokes", day)]
    ):
        DestroyedKey.objects.create(
            key_id=f"k_gone{serial}",
            employee=people[owner],
            category=category,
            day=when,
            reason="erasure",
            destroyed_at=AT,
        )
    return people, grants


def reference(records: list[engine.UseRecord], *, release: bool) -> tuple[list, set[str]]:
    """Each record decided on its own: fresh facts, its own key look-up, no windows and no caches."""
    policy, answers, released = current_policy(), [], set()
    for record in records:
        grant = grants_by_id([record.grant_id]).get(record.grant_id)
        employee = None
        triple = None
        if grant is not None:
            employee = employees_for_use(hr_ids=[grant.employee], purpose=PURPOSE).get(grant.employee)
            triple = (grant.employee, record.category, record.captured_at.astimezone(UTC).date())
        state = key_states([triple]).get(triple) if triple else None
        if employee is not None and triple is not None and state == DESTROYED:
            employee = replace(employee, destroyed_keys=frozenset({triple[1:]}))
        reasons = engine.decide_use(policy, record=record, purpose=PURPOSE, grant=grant, employee=employee, at=AT)
        if release and not reasons and state not in (None, DESTROYED):
            released.add(state)
        answers.append((record.id, sorted(reason.code for reason in reasons)))
    return answers, released


drawn_records = st.lists(
    st.tuples(
        st.integers(0, len(GRANTS)),  # len(GRANTS): an unknown grant
        st.sampled_from(CATEGORIES),
        # Seconds after the grant's issue: anywhere, or at an edge (of a grant, or of midnight for g_eq2).
        st.integers(-90, 700) | st.sampled_from([-1, 0, 1, 29, 30, 31, 59, 60, 599, 600]),
        st.booleans(),  # the grant's own subject, or another
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.django_db
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    drawn=drawn_records,
    chunk=st.integers(1, 9),
    grant_room=st.integers(1, 8),
    employee_room=st.integers(1, 4),
    key_room=st.integers(1, 12),
    release=st.booleans(),
)
def test_the_stream_answers_like_the_engine_record_by_record(
    world, monkeypatch, drawn, chunk, grant_room, employee_room, key_room, release
):
    _, grants = world
    records = []
    for index, (which, category, offset, own_subject) in enumerate(drawn):
        grant = grants[which] if which < len(grants) else None
        issued = grant.issued_at if grant else AT
        records.append(
            engine.UseRecord(
                f"r{index}",
                grant.subject if grant and own_subject else "s_someone_else",
                category,
                issued + timedelta(seconds=offset),
                grant.id if grant else "g_unknown",
            )
        )
    monkeypatch.setattr(usebatch, "GRANT_CACHE_LIMIT", grant_room)
    monkeypatch.setattr(usebatch, "EMPLOYEE_CACHE_LIMIT", employee_room)
    monkeypatch.setattr(usebatch, "KEY_CACHE_LIMIT", key_room)
    evaluator = usebatch.UseEvaluator(policy=current_policy(), purpose=PURPOSE, at=AT, release_keys=release)
    answers = [
        (record_id, sorted(reason.code for reason in reasons))
        for part in usebatch.chunked(records, chunk)
        for record_id, reasons in evaluator.evaluate(part)
    ]
    expected, released = reference(records, release=release)
    assert answers == expected
    assert evaluator.released == released
    assert evaluator.allowed == sum(1 for _, codes in expected if not codes)
    assert evaluator.denied == len(records) - evaluator.allowed


@pytest.mark.django_db
def test_the_world_exercises_every_path(world):
    """Fixtures reach windows, destroyed keys, withdrawals and the midnight grant, so the test above means something."""
    _, grants = world

    def at(index, category, seconds, record_id):
        grant = grants[index]
        captured = grant.issued_at + timedelta(seconds=seconds)
        return engine.UseRecord(record_id, grant.subject, category, captured, grant.id)

    records = [
        at(0, "keystrokes", 5, "ok"),
        at(0, "mouse_movement", 0, "gone"),
        at(2, "screenshots", 1, "night"),
        at(2, "screenshots", 40, "day"),
        at(3, "mouse_movement", 0, "withdrawn"),
    ]
    answers, released = reference(records, release=True)
    assert answers == [
        ("ok", []),
        ("gone", ["data_key_destroyed"]),
        ("night", ["data_key_destroyed"]),
        ("day", []),
        ("withdrawn", ["consent_withdrawn"]),
    ]
    assert released == {"k_live0", "k_live1"}
