"""The auditor console: who may search the ledger, over which regions, with which filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEntry
from audit.services import record
from conftest import make_employee, make_user
from consentry.tests.roles import grant_role, make_approver, make_auditor, make_legal, sign_in
from people.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(small_policy, ny_employee, de_employee):
    """The small policy's entries plus one entry about each employee."""
    actor = Actor.system("tests")
    ny = record(event_type="capture.paused", actor=actor, subject=ny_employee.hr_id, region="US-NY", payload={})
    de = record(event_type="capture.paused", actor=actor, subject=de_employee.hr_id, region="DE-BE", payload={})
    return {"ny": ny, "de": de}


def _seqs(response) -> set[int]:
    return {entry.seq for entry in response.context["page"].object_list}


def test_anonymous_visitors_are_sent_to_sign_in(client, ledger):
    for url in (reverse("audit:entries"), reverse("audit:entry", args=[1])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_employees_legal_users_and_approvers_may_not_read_the_ledger(client, small_policy, ledger, ny_employee):
    legal = make_legal(make_user("lena"), small_policy["regions"]["US"])
    other_employee = make_employee(country="DE", user=make_user("dora"))
    for user in (ny_employee.user, other_employee.user, legal, make_approver(make_user("ada"))):
        sign_in(client, user)
        assert client.get(reverse("audit:entries")).status_code == 403
        assert client.get(reverse("audit:entry", args=[ledger["ny"].seq])).status_code == 403


def test_a_global_auditor_reads_every_entry(client, ledger):
    sign_in(client, make_auditor(make_user("aurelio")))
    response = client.get(reverse("audit:entries"))
    assert response.status_code == 200
    assert _seqs(response) >= {ledger["ny"].seq, ledger["de"].seq}
    assert "You can read every region." in response.content.decode()
    detail = client.get(reverse("audit:entry", args=[ledger["de"].seq]))
    assert detail.status_code == 200 and ledger["de"].hash in detail.content.decode()


def test_a_us_auditor_reads_us_entries_including_states_and_nothing_else(client, small_policy, ledger):
    sign_in(client, make_auditor(make_user("ursula"), small_policy["regions"]["US"]))
    seqs = _seqs(client.get(reverse("audit:entries")))
    assert ledger["ny"].seq in seqs and ledger["de"].seq not in seqs
    assert set(AuditEntry.objects.filter(seq__in=seqs).values_list("region", flat=True)) <= {"US", "US-NY", "US-CA"}
    assert client.get(reverse("audit:entry", args=[ledger["de"].seq])).status_code == 404


def test_an_eu_group_scope_covers_its_member_countries(client, small_policy, ledger):
    sign_in(client, make_auditor(make_user("eva"), small_policy["regions"]["EU"]))
    seqs = _seqs(client.get(reverse("audit:entries")))
    assert ledger["de"].seq in seqs and ledger["ny"].seq not in seqs


def test_an_auditor_without_any_region_sees_nothing_and_is_told_why(client, ledger):
    sign_in(client, grant_role(make_user("newbie"), Role.AUDITOR))
    response = client.get(reverse("audit:entries"))
    assert response.status_code == 200 and _seqs(response) == set()
    assert "no audit scope yet" in response.content.decode()


def test_filters_narrow_by_type_subject_actor_region_and_time(client, ledger, ny_employee):
    sign_in(client, make_auditor(make_user("aurelio")))
    url = reverse("audit:entries")
    about_nina = _seqs(client.get(url, {"subject": ny_employee.hr_id}))
    assert ledger["ny"].seq in about_nina and ledger["de"].seq not in about_nina
    assert set(AuditEntry.objects.filter(seq__in=about_nina).values_list("subject", flat=True)) == {ny_employee.hr_id}
    both = {"subject": ny_employee.hr_id, "event_type": "capture.paused"}
    assert _seqs(client.get(url, both)) == {ledger["ny"].seq}
    assert _seqs(client.get(url, {"event_type": "capture.paused"})) == {ledger["ny"].seq, ledger["de"].seq}
    assert _seqs(client.get(url, {"region": "us"})) >= {ledger["ny"].seq}
    assert ledger["de"].seq not in _seqs(client.get(url, {"region": "US"}))
    assert _seqs(client.get(url, {"actor": "nobody-at-all"})) == set()
    future = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert _seqs(client.get(url, {"since": future})) == set()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, "Enter a valid date/time"),
        ({"event_type": "nonsense.event"}, "Select a valid choice"),
        ({"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"}, "must come after its start"),
        ({"region": "X" * 40}, "Ensure this value has at most 16 characters"),
    ],
)
def test_bad_filters_show_what_to_fix_and_list_nothing(client, ledger, params, message):
    sign_in(client, make_auditor(make_user("aurelio")))
    response = client.get(reverse("audit:entries"), params)
    assert response.status_code == 200
    assert message in response.content.decode() and _seqs(response) == set()


def test_any_page_number_or_entry_number_is_answered_without_failing(client, ledger):
    sign_in(client, make_auditor(make_user("aurelio")))
    for page in ("0", "abc", "-4", "10" * 20):
        assert client.get(reverse("audit:entries"), {"page": page}).status_code == 200
    assert client.get(reverse("audit:entry", args=[10**12])).status_code == 404
    assert client.get("/audit/entries/abc/").status_code == 404
