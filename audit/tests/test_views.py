"""The auditor console: who may open each page; search, exports, checkpoints and verification."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditCheckpoint, AuditEntry, AuditExport, EventType
from audit.selectors import EntryFilters
from audit.services import (
    checkpoint_create,
    export_fail,
    export_request,
    ledger_verify,
    queue_seal,
    record,
    record_queued,
)
from audit.tests.conftest import ALL_REGIONS, build_export, tamper
from audit.urls import console_urlpatterns
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


def test_a_us_auditor_opens_a_new_york_entry_but_a_berlin_one_is_not_found(client, small_policy, ledger):
    sign_in(client, make_auditor(make_user("ursula"), small_policy["regions"]["US"]))
    assert client.get(reverse("audit:entry", args=[ledger["ny"].seq])).status_code == 200
    assert client.get(reverse("audit:entry", args=[ledger["de"].seq])).status_code == 404
    assert ledger["de"].seq not in _seqs(client.get(reverse("audit:entries"), {"region": "DE"}))
    assert "You can read: US (and their subdivisions)." in client.get(reverse("audit:entries")).content.decode()


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


# Every page of the console, with who may open it ------------------------------------------------


def _console_pages(ledger) -> dict[str, str]:
    return {
        "entries": reverse("audit:entries"),
        "entry": reverse("audit:entry", args=[ledger["ny"].seq]),
        "exports": reverse("audit:exports"),
        "checkpoints": reverse("audit:checkpoints"),
    }


def test_the_matrix_covers_every_page_of_the_console(ledger):
    named = {pattern.name for pattern in console_urlpatterns}
    assert named == set(_console_pages(ledger))


def _persona(name, small_policy, ny_employee):
    return {
        "employee": lambda: ny_employee.user,
        "other employee": lambda: make_employee(country="DE", user=make_user("dora")).user,
        "legal": lambda: make_legal(make_user("lena"), small_policy["regions"]["US"]),
        "approver": lambda: make_approver(make_user("ada")),
        "no role": lambda: make_user("outsider"),
        "auditor": lambda: make_auditor(make_user("aurelio")),
        "us auditor": lambda: make_auditor(make_user("ursula"), small_policy["regions"]["US"]),
        "auditor without scope": lambda: grant_role(make_user("newbie"), Role.AUDITOR),
    }[name]()


CONSOLE_PAGES = {"entries", "entry", "exports", "checkpoints"}
# The US auditor's entry is about New York, so in scope; an auditor without regions reads no entry.
CONSOLE_ALLOWED = {
    "employee": set(),
    "other employee": set(),
    "legal": set(),
    "approver": set(),
    "no role": set(),
    "auditor": CONSOLE_PAGES,
    "us auditor": CONSOLE_PAGES,
    "auditor without scope": CONSOLE_PAGES - {"entry"},
}


def test_anonymous_visitors_are_sent_to_sign_in_from_every_console_page(client, ledger):
    for name, url in _console_pages(ledger).items():
        for method in ("get", "post") if name == "exports" else ("get",):
            response = getattr(client, method)(url)
            assert response.status_code == 302, name
            assert response["Location"].startswith(reverse("login")), name
    assert not AuditExport.objects.exists()


@pytest.mark.parametrize("persona", sorted(CONSOLE_ALLOWED))
def test_each_console_page_opens_only_for_auditors(client, small_policy, ny_employee, ledger, persona):
    sign_in(client, _persona(persona, small_policy, ny_employee))
    outcome = {name: client.get(url).status_code for name, url in _console_pages(ledger).items()}
    allowed = CONSOLE_ALLOWED[persona]
    # An auditor asking for an entry outside their scope learns only that it is not found.
    refused = {name: 404 if name == "entry" and "entries" in allowed else 403 for name in outcome}
    expected = {name: 200 if name in allowed else refused[name] for name in outcome}
    assert outcome == expected
    started = client.post(reverse("audit:exports"), {"format": "jsonl"})
    assert started.status_code == (302 if "exports" in CONSOLE_ALLOWED[persona] else 403)
    assert AuditExport.objects.exists() is ("exports" in CONSOLE_ALLOWED[persona])


# Exports -------------------------------------------------------------------------------------------


def _jobs(response) -> list[AuditExport]:
    return [job for job, _ in response.context["jobs"]]


def test_an_auditor_starts_an_export_through_the_same_service_as_the_api(
    client, ledger, ny_employee, django_capture_on_commit_callbacks
):
    user = sign_in(client, make_auditor(make_user("aurelio")))
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("audit:exports"),
            {
                "since": "2026-01-01T00:00",
                "until": "2027-01-01T00:00",
                "event_types": ["capture.paused", "consent.withdrawn"],
                "actor": " system:tests ",
                "subject": ny_employee.hr_id,
                "format": "csv",
            },
        )
    export = AuditExport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('audit:exports')}#export-{export.pk}"
    assert len(callbacks) == 1  # the build goes to Celery after commit
    assert export.requested_by == user and export.format == "csv" and export.status == "pending"
    assert export.scope == {"all": True}
    assert export.filters == {
        "since": "2026-01-01T00:00:00.000000Z",
        "until": "2027-01-01T00:00:00.000000Z",
        "event_types": ["capture.paused", "consent.withdrawn"],
        "actor": "system:tests",
        "subject": ny_employee.hr_id,
    }
    requested = AuditEntry.objects.get(event_type=EventType.AUDIT_EXPORT_REQUESTED)
    assert requested.actor == "user:aurelio" and requested.object_id == str(export.pk)
    page = client.get(response["Location"])
    html = page.content.decode()
    assert "Export started." in html and f'id="export-{export.pk}"' in html
    assert f'data-status-url="{reverse("audit:export-detail", args=[export.pk])}"' in html
    assert f'id="progress-{export.pk}" max="100" value="0"' in html
    assert "Refresh the list" in html and "audit/exports.js" in html


def test_sending_the_same_export_form_twice_starts_one_export(client, ledger):
    sign_in(client, make_auditor(make_user("aurelio")))
    form = client.get(reverse("audit:exports")).context["form"]
    submission = str(form.initial["submission"])
    first = client.post(reverse("audit:exports"), {"format": "jsonl", "submission": submission})
    again = client.post(reverse("audit:exports"), {"format": "jsonl", "submission": submission})
    export = AuditExport.objects.get()
    assert first["Location"] == again["Location"] == f"{reverse('audit:exports')}#export-{export.pk}"
    # A new form is a new export.
    client.post(reverse("audit:exports"), {"format": "jsonl", "submission": str(uuid.uuid4())})
    assert AuditExport.objects.count() == 2


def test_the_export_form_carries_a_fresh_submission_id_and_no_visible_field_for_it(client, ledger):
    sign_in(client, make_auditor(make_user("aurelio")))
    first, second = (client.get(reverse("audit:exports")) for _ in range(2))
    ids = [str(page.context["form"].initial["submission"]) for page in (first, second)]
    assert ids[0] != ids[1]
    html = first.content.decode()
    assert f'type="hidden" name="submission" value="{ids[0]}"' in html
    assert ">Submission<" not in html


def test_a_scoped_auditor_exports_only_within_their_regions(client, small_policy, ledger):
    sign_in(client, make_auditor(make_user("ursula"), small_policy["regions"]["US"]))
    html = client.get(reverse("audit:exports")).content.decode()
    assert "Your exports hold entries of: US (and their subdivisions)." in html
    client.post(reverse("audit:exports"), {"format": "jsonl"})
    assert AuditExport.objects.get().scope == {"all": False, "regions": ["US"], "countries": ["US"]}


def test_an_auditor_sees_only_their_own_jobs_with_progress_and_a_download_when_done(client, ledger, media):
    mine = make_auditor(make_user("aurelio"))
    other = make_auditor(make_user("otto"))
    done = build_export(mine)
    running = export_request(user=mine, access=ALL_REGIONS, filters=EntryFilters(), format="jsonl")
    AuditExport.objects.filter(pk=running.pk).update(status="running", progress=40)
    theirs = build_export(other)
    sign_in(client, mine)
    response = client.get(reverse("audit:exports"))
    assert {job.pk for job in _jobs(response)} == {done.pk, running.pk}
    html = response.content.decode()
    assert reverse("audit:export-download", args=[done.pk]) in html
    assert reverse("audit:export-download", args=[running.pk]) not in html
    assert reverse("audit:export-download", args=[theirs.pk]) not in html
    assert f'id="progress-{done.pk}" max="100" value="100"' in html
    assert f'id="progress-{running.pk}" max="100" value="40"' in html
    assert done.sha256 in html and "Every entry in your scope" in html
    # The link and the status the page's script polls are the API's, and they answer for this session.
    assert client.get(reverse("audit:export-detail", args=[running.pk])).json()["progress"] == 40
    download = client.get(reverse("audit:export-download", args=[done.pk]))
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert client.get(reverse("audit:export-download", args=[theirs.pk])).status_code == 404


def test_a_failed_job_says_why(client, ledger):
    user = make_auditor(make_user("aurelio"))
    job = export_request(user=user, access=ALL_REGIONS, filters=EntryFilters(), format="jsonl")
    export_fail(export_id=job.pk, error="The export took longer than its time limit.")
    sign_in(client, user)
    html = client.get(reverse("audit:exports")).content.decode()
    assert "badge-failed" in html and "The export took longer than its time limit." in html
    assert "Refresh the list" not in html


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"since": "last tuesday"}, "since", "Enter a valid date/time"),
        ({"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"}, "until", "must come after its start"),
        ({"event_types": ["nonsense.event"]}, "event_types", "Select a valid choice"),
        ({"format": "xlsx"}, "format", "Select a valid choice"),
        ({"format": ""}, "format", "This field is required"),
        ({"actor": "x" * 201}, "actor", "Ensure this value has at most 200 characters"),
        ({"subject": "E" * 300}, "subject", "Ensure this value has at most 200 characters"),
    ],
)
def test_a_bad_export_request_is_refused_next_to_its_field(client, ledger, changes, field, message):
    sign_in(client, make_auditor(make_user("aurelio")))
    response = client.post(reverse("audit:exports"), {"format": "jsonl", **changes})
    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    html = response.content.decode()
    assert "Please fix the following and try again." in html and message in html
    assert not AuditExport.objects.exists()


def test_any_page_number_of_the_jobs_list_is_answered_without_failing(client, ledger):
    sign_in(client, make_auditor(make_user("aurelio")))
    for page in ("0", "abc", "-4", "10" * 20):
        assert client.get(reverse("audit:exports"), {"page": page}).status_code == 200
    assert client.put(reverse("audit:exports")).status_code == 405


# Checkpoints and verification -------------------------------------------------------------------


def test_the_checkpoints_page_lists_checkpoints_with_their_signature_checked(client, ledger):
    first = checkpoint_create()
    assert first is not None
    record(event_type="capture.paused", actor=Actor.system("tests"), payload={})
    second = checkpoint_create()
    assert second is not None
    forged = AuditCheckpoint.objects.create(
        number=second.number + 1,
        size=second.size + 1,
        root="0" * 64,
        head="0" * 64,
        prev_signature=second.signature,
        issued_at=timezone.now(),
        kid=second.kid,
        signature=second.signature,
    )
    sign_in(client, make_auditor(make_user("ursula")))
    response = client.get(reverse("audit:checkpoints"))
    listed = [(checkpoint.number, valid) for checkpoint, valid in response.context["checkpoints"]]
    assert listed == [(forged.number, False), (second.number, True), (first.number, True)]
    html = response.content.decode()
    assert first.root in html and second.kid in html
    assert html.count("badge badge-ok") >= 2 and "Invalid" in html


def test_the_last_live_verification_is_read_from_the_ledger_in_plain_words(client, ledger):
    sign_in(client, make_auditor(make_user("aurelio")))
    html = client.get(reverse("audit:checkpoints")).content.decode()
    assert "The ledger has not been verified yet." in html
    report = ledger_verify(actor=Actor.system("audit-verify"))
    assert report.ok
    response = client.get(reverse("audit:checkpoints"))
    html = response.content.decode()
    assert response.context["run"].ok and "Passed" in html
    assert f"the whole ledger was checked: {report.entries} entries" in html
    assert "system:audit-verify" in html and "more than a day old" not in html


def test_a_failed_verification_names_the_first_bad_entry(client, ledger):
    bad = ledger["ny"].seq
    tamper("UPDATE audit_auditentry SET actor = 'system:someone-else' WHERE seq = %s", (bad,))
    assert not ledger_verify(actor=Actor.system("audit-verify")).ok
    sign_in(client, make_auditor(make_user("aurelio")))
    response = client.get(reverse("audit:checkpoints"))
    html = response.content.decode()
    assert response.context["run"].first_bad_entry == bad
    assert "Failed" in html and "not intact" in html
    assert f'The first bad entry is <a href="{reverse("audit:entry", args=[bad])}">entry #{bad}</a>' in html
    assert f"entry #{bad}: its content does not match" in html


def test_entries_waiting_to_be_chained_are_counted_and_a_stalled_sealer_is_flagged(client, ledger):
    sign_in(client, make_auditor(make_user("aurelio")))
    html = client.get(reverse("audit:checkpoints")).content.decode()
    assert "waiting to be added to the chain" not in html
    record_queued(event_type="grant.issued", actor=Actor.system("tests"))
    record_queued(event_type="grant.issued", actor=Actor.system("tests"))
    html = client.get(reverse("audit:checkpoints")).content.decode()
    assert "2 capture grant entries are stored and waiting to be added to the chain" in html
    assert "whether Celery beat and a worker are running" not in html
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        html = client.get(reverse("audit:checkpoints")).content.decode()
    assert "2 capture grant entries are waiting to be added to the chain" in html
    assert "whether Celery beat and a worker are running" in html
    queue_seal()
    html = client.get(reverse("audit:checkpoints")).content.decode()
    assert "waiting to be added to the chain" not in html


def test_an_old_verification_is_flagged_as_overdue(client, ledger):
    with time_machine.travel(timezone.now() - timedelta(days=2)):
        ledger_verify(actor=Actor.system("audit-verify"))
    sign_in(client, make_auditor(make_user("aurelio")))
    assert "more than a day old" in client.get(reverse("audit:checkpoints")).content.decode()


def test_the_page_explains_offline_verification_with_the_keys_address(client, ledger):
    sign_in(client, make_auditor(make_user("aurelio")))
    html = client.get(reverse("audit:checkpoints")).content.decode()
    assert "curl -o jwks.json http://testserver/.well-known/jwks.json" in html
    assert "consentry-verify bundle consentry-audit-EXPORT-ID.zip --keys jwks.json" in html
    assert "pip install ./client" in html


def test_the_console_pages_use_no_inline_script_or_style(client, ledger):
    sign_in(client, make_auditor(make_user("aurelio")))
    for url in (reverse("audit:exports"), reverse("audit:checkpoints")):
        html = client.get(url).content.decode()
        assert "<script>" not in html and "<style" not in html and " style=" not in html and " onclick=" not in html
        assert f'href="{reverse("audit:exports")}"' in html and f'href="{reverse("audit:checkpoints")}"' in html
