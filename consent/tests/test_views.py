"""The employee portal: each page's permission matrix, then what the pages do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_employee, make_user
from consent.models import ConsentEvent, ConsentEventKind, ConsentState, NoticeAcknowledgement, Pause
from consent.services import consent_grant
from consentry.tests.roles import make_approver, make_auditor, make_legal, sign_in
from governance import services as gov

pytestmark = pytest.mark.django_db

GET_PAGES = ["portal:home", "portal:history"]
POST_PAGES = ["portal:save", "portal:withdraw_all", "portal:acknowledge", "portal:pause", "portal:resume"]


def _texts(response) -> str:
    return response.content.decode()


def _grant(employee, policy, *categories):
    choices = [("ai_agent_training", category) for category in categories]
    return consent_grant(employee=employee, notice=policy["notice"], choices=choices, actor=SYSTEM)


# Permission matrix ------------------------------------------------------------------------


@pytest.mark.parametrize("name", GET_PAGES + POST_PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, portal_policy, name):
    response = client.post(reverse(name)) if name in POST_PAGES else client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", GET_PAGES + POST_PAGES)
def test_accounts_without_an_employee_record_are_refused(client, portal_policy, legal, approver, auditor, name):
    """Legal (in scope), an approver and an auditor hold no employee record: the portal is not theirs."""
    staff = (
        make_legal(legal, portal_policy["regions"]["US"]),
        make_approver(approver),
        make_auditor(auditor),
        make_user("nobody"),
    )
    for user in staff:
        sign_in(client, user)
        response = client.post(reverse(name)) if name in POST_PAGES else client.get(reverse(name))
        assert response.status_code == 403, user.username
        assert "not linked to an employee record" in _texts(response)


def test_an_auditor_sees_no_employee_s_choices_in_the_portal(client, portal_policy, auditor, ny_employee):
    _grant(ny_employee, portal_policy, "keystrokes")
    sign_in(client, make_auditor(auditor))
    assert client.get(reverse("portal:home")).status_code == 403
    assert client.get(reverse("portal:history")).status_code == 403


def test_each_employee_sees_only_their_own_choices_and_history(client, portal_policy, ny_employee, us_employee):
    consent_grant(
        employee=ny_employee,
        notice=portal_policy["notice"],
        choices=[("ai_agent_training", "screenshots")],
        actor=Actor.for_user(ny_employee.user),
    )
    sign_in(client, us_employee.user)
    home = _texts(client.get(reverse("portal:home")))
    history = _texts(client.get(reverse("portal:history")))
    assert "Tara (Texas)" in home and "Nina" not in home
    assert "You have nothing turned on" in home
    assert "Nothing yet" in history and "rcpt_" not in history


def test_get_only_pages_refuse_posts_and_post_only_actions_refuse_gets(client, portal_policy, ny_employee):
    sign_in(client, ny_employee.user)
    assert client.post(reverse("portal:home")).status_code == 405
    for name in POST_PAGES:
        assert client.get(reverse(name)).status_code == 405


# Landing page ---------------------------------------------------------------------------------


def test_every_switch_starts_off_and_is_a_labelled_checkbox(client, portal_policy, us_employee):
    sign_in(client, us_employee.user)
    html = _texts(client.get(reverse("portal:home")))
    assert html.count('type="checkbox" name="grant"') == 4
    assert " checked" not in html
    for slug in ("keystrokes", "keystroke_timing", "mouse_movement", "screenshots"):
        assert f'<label for="grant-ai_agent_training-{slug}">' in html


def test_the_notice_says_what_is_never_captured_how_long_data_is_kept_and_who_sees_it(
    client, portal_policy, us_employee
):
    sign_in(client, us_employee.user)
    html = _texts(client.get(reverse("portal:home")))
    assert "what you type into password fields, anywhere." in html
    assert "<strong>Password manager:</strong> Password managers." in html
    assert "<strong>Banking and finance:</strong> Online banking." in html
    assert "<strong>Private browsing:</strong> Private browsing windows (no screenshots)." in html
    assert "Kept for at most 30 days; deleted within 7 days after you turn it off." in html  # screenshots
    assert "Kept for at most 90 days; deleted within 30 days after you turn it off." in html
    assert "Only the research team&#x27;s pipelines." in html
    assert "Never used to evaluate you." in html
    assert "It can never be used for: performance evaluation." in html


def test_a_blocked_region_is_explained_and_nothing_is_asked(client, portal_policy, de_employee):
    sign_in(client, de_employee.user)
    html = _texts(client.get(reverse("portal:home")))
    assert "Where you work: Berlin, Germany" in html
    assert "does not allow this kind of activity capture" in html
    assert 'name="grant"' not in html
    assert "acknowledge" not in html.lower().split("withdraw everything")[0].split("where you work")[1]
    assert "Pause capture" not in html


def test_an_unknown_region_is_explained_and_nothing_is_asked(client, portal_policy):
    employee = make_employee(country="JP", user=make_user("kenji"))
    sign_in(client, employee.user)
    html = _texts(client.get(reverse("portal:home")))
    assert "We have no approved rules for where you work yet" in html
    assert 'name="grant"' not in html


def test_a_region_that_requires_acknowledgement_asks_for_it_until_given(client, portal_policy, ny_employee):
    sign_in(client, ny_employee.user)
    html = _texts(client.get(reverse("portal:home")))
    assert "Please acknowledge the monitoring notice" in html
    response = client.post(reverse("portal:acknowledge"), {"notice_version": portal_policy["notice"].version})
    assert response.status_code == 302
    assert NoticeAcknowledgement.objects.filter(employee=ny_employee).count() == 1
    html = _texts(client.get(reverse("portal:home")))
    assert "Please acknowledge the monitoring notice" not in html
    assert "Thank you: you acknowledged notice version 1." in html


def test_a_region_without_acknowledgement_rules_never_asks_for_one(client, portal_policy, us_employee):
    sign_in(client, us_employee.user)
    assert "Please acknowledge" not in _texts(client.get(reverse("portal:home")))


# Choices ---------------------------------------------------------------------------------------


def test_turning_switches_on_grants_exactly_those_pairs_with_receipts(client, portal_policy, us_employee):
    sign_in(client, us_employee.user)
    response = client.post(
        reverse("portal:save"),
        {"notice_version": "1", "grant": ["ai_agent_training/keystrokes", "ai_agent_training/screenshots"]},
        follow=True,
    )
    states = dict(ConsentState.objects.filter(employee=us_employee).values_list("category_id", "state"))
    assert states == {"keystrokes": "granted", "screenshots": "granted"}
    assert ConsentEvent.objects.filter(employee=us_employee, channel="portal").count() == 2
    assert "Saved: you turned on Keystrokes, Screenshots." in _texts(response)
    html = _texts(client.get(reverse("portal:home")))
    assert html.count(" checked") == 2


def test_turning_a_switch_off_withdraws_only_that_pair(client, portal_policy, us_employee):
    consent_grant(
        employee=us_employee,
        notice=portal_policy["notice"],
        choices=[("ai_agent_training", "keystrokes"), ("ai_agent_training", "screenshots")],
        actor=SYSTEM,
    )
    sign_in(client, us_employee.user)
    client.post(reverse("portal:save"), {"notice_version": "1", "grant": ["ai_agent_training/keystrokes"]})
    states = dict(ConsentState.objects.filter(employee=us_employee).values_list("category_id", "state"))
    assert states == {"keystrokes": "granted", "screenshots": "withdrawn"}
    assert ConsentEvent.objects.filter(employee=us_employee).count() == 3


def test_saving_unchanged_choices_writes_nothing(client, portal_policy, us_employee):
    sign_in(client, us_employee.user)
    response = client.post(reverse("portal:save"), {"notice_version": "1"}, follow=True)
    assert ConsentEvent.objects.count() == 0
    assert "Nothing changed" in _texts(response)


def test_withdraw_everything_is_one_post_and_withdraws_every_grant(client, portal_policy, us_employee):
    consent_grant(
        employee=us_employee,
        notice=portal_policy["notice"],
        choices=[("ai_agent_training", c) for c in ("keystrokes", "mouse_movement", "screenshots")],
        actor=SYSTEM,
    )
    sign_in(client, us_employee.user)
    response = client.post(reverse("portal:withdraw_all"), follow=True)
    assert set(ConsentState.objects.filter(employee=us_employee).values_list("state", flat=True)) == {"withdrawn"}
    assert "Everything is withdrawn (3 item(s))" in _texts(response)
    assert AuditEntry.objects.filter(event_type=EventType.CONSENT_WITHDRAWN, subject=us_employee.hr_id).count() == 3


def test_withdraw_everything_works_after_a_transfer_to_a_blocked_region(client, portal_policy, us_employee):
    from people.services import employee_transfer

    _grant(us_employee, portal_policy, "keystrokes")
    employee_transfer(employee=us_employee, country="DE", subdivision="DE-BE", actor=SYSTEM)
    sign_in(client, us_employee.user)
    html = _texts(client.get(reverse("portal:home")))
    assert 'name="grant"' not in html and "Withdraw everything" in html
    client.post(reverse("portal:withdraw_all"))
    assert ConsentState.objects.get(employee=us_employee).state == "withdrawn"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"notice_version": "abc"},
        {"notice_version": "1", "grant": ["ai_agent_training/not_a_category"]},
        {"notice_version": "1", "grant": ["performance_evaluation/keystrokes"]},
        {"notice_version": "1", "grant": ["<script>alert(1)</script>"]},
        {"notice_version": "-5", "grant": ["ai_agent_training/keystrokes"]},
    ],
)
def test_malformed_choices_change_nothing_and_say_what_is_wrong(client, portal_policy, us_employee, data):
    sign_in(client, us_employee.user)
    response = client.post(reverse("portal:save"), data, follow=True)
    assert response.status_code == 200
    assert ConsentEvent.objects.count() == 0
    assert "Your choices were not saved." in _texts(response)
    assert "<script>alert(1)</script>" not in _texts(response)


def test_a_choice_made_on_an_outdated_notice_is_refused_and_explained(client, portal_policy, us_employee):
    sign_in(client, us_employee.user)
    response = client.post(
        reverse("portal:save"), {"notice_version": "7", "grant": ["ai_agent_training/keystrokes"]}, follow=True
    )
    assert ConsentEvent.objects.count() == 0
    assert "The notice changed while you were reading it" in _texts(response)


def test_a_blocked_category_cannot_be_turned_on(client, portal_policy, us_employee):
    region = portal_policy["regions"]["US"]
    rule = gov.rule_draft(
        region=region,
        status="allow",
        blocked_categories=["screenshots"],
        effective_from=timezone.now() - timedelta(minutes=1),
        supersedes=portal_policy["rules"]["US"],
        actor=SYSTEM,
    )
    gov.rule_approve(rule=rule, actor=SYSTEM, via="tests")
    sign_in(client, us_employee.user)
    html = _texts(client.get(reverse("portal:home")))
    assert 'value="ai_agent_training/screenshots" id="grant-ai_agent_training-screenshots"' in html
    assert "cannot be turned on" in html
    response = client.post(
        reverse("portal:save"), {"notice_version": "1", "grant": ["ai_agent_training/screenshots"]}, follow=True
    )
    assert ConsentEvent.objects.count() == 0
    assert "not something you can turn on here" in _texts(response)


def test_a_material_notice_change_asks_again_only_for_the_pairs_it_touched(client, portal_policy, us_employee):
    consent_grant(
        employee=us_employee,
        notice=portal_policy["notice"],
        choices=[("ai_agent_training", "keystrokes"), ("ai_agent_training", "screenshots")],
        actor=SYSTEM,
    )
    items = [("ai_agent_training", slug, f"We capture your {slug}.") for slug in ("keystrokes", "mouse_movement")]
    items += [("ai_agent_training", "keystroke_timing", "We capture your keystroke_timing.")]
    items += [("ai_agent_training", "screenshots", "We now capture screenshots every 5 seconds.")]
    draft = gov.notice_draft(
        title="Activity capture for AI training",
        summary="Screenshots are now more frequent.",
        body="Full text.",
        retention_statement="Kept 90 days.",
        access_statement="Only the research team's pipelines.",
        no_evaluation_statement="Never used to evaluate you.",
        items=items,
        material=True,
        actor=SYSTEM,
    )
    gov.notice_approve(notice=draft, actor=SYSTEM, via="tests")
    sign_in(client, us_employee.user)
    html = _texts(client.get(reverse("portal:home")))
    assert "The notice changed for 1 item you had turned on:" in html
    assert 'value="ai_agent_training/keystrokes" id="grant-ai_agent_training-keystrokes"' in html
    assert html.count(" checked") == 1  # keystrokes carried over; screenshots asks again
    client.post(
        reverse("portal:save"),
        {"notice_version": "2", "grant": ["ai_agent_training/keystrokes", "ai_agent_training/screenshots"]},
    )
    regranted = ConsentEvent.objects.filter(employee=us_employee, notice__version=2)
    assert list(regranted.values_list("category_id", "kind")) == [("screenshots", "granted")]


# Pause -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("duration", "low", "high"), [("30m", 29, 31), ("2h", 119, 121), ("tomorrow", 1, 60 * 31)])
def test_pausing_stops_capture_for_the_chosen_time(client, portal_policy, us_employee, duration, low, high):
    sign_in(client, us_employee.user)
    response = client.post(reverse("portal:pause"), {"duration": duration, "tz": "Europe/Paris"}, follow=True)
    pause = Pause.objects.get(employee=us_employee)
    minutes = (pause.ends_at - pause.starts_at).total_seconds() / 60
    assert low <= minutes <= high
    assert "Capture is paused until" in _texts(response)
    assert "Resume capture now" in _texts(response)


def test_until_tomorrow_means_six_in_the_morning_in_the_person_s_time_zone(client, portal_policy, us_employee):
    sign_in(client, us_employee.user)
    client.post(reverse("portal:pause"), {"duration": "tomorrow", "tz": "America/Chicago"})
    ends = Pause.objects.get(employee=us_employee).ends_at
    from zoneinfo import ZoneInfo

    local = ends.astimezone(ZoneInfo("America/Chicago"))
    assert (local.hour, local.minute) == (6, 0)
    assert local.date() == (timezone.now().astimezone(ZoneInfo("America/Chicago")).date() + timedelta(days=1))


@pytest.mark.parametrize("data", [{}, {"duration": "forever"}, {"duration": "30m", "tz": "Mars/Olympus"}])
def test_a_bad_pause_request_is_refused_or_falls_back_to_utc(client, portal_policy, us_employee, data):
    sign_in(client, us_employee.user)
    response = client.post(reverse("portal:pause"), data, follow=True)
    assert response.status_code == 200
    if data.get("duration") == "30m":
        assert Pause.objects.filter(employee=us_employee).count() == 1
    else:
        assert Pause.objects.count() == 0
        assert "Choose how long to pause" in _texts(response)


def test_resuming_ends_the_pause_now(client, portal_policy, us_employee):
    sign_in(client, us_employee.user)
    client.post(reverse("portal:pause"), {"duration": "2h"})
    response = client.post(reverse("portal:resume"), follow=True)
    assert Pause.objects.get(employee=us_employee).resumed_at is not None
    assert "Capture is resumed" in _texts(response)
    assert '<h2 id="pause-title">Capture is paused</h2>' not in _texts(response)
    assert "Capture was not paused." in _texts(client.post(reverse("portal:resume"), follow=True))


# History -----------------------------------------------------------------------------------------


def test_history_lists_every_event_newest_first_with_its_receipt_id(client, portal_policy, ny_employee):
    notice = portal_policy["notice"]
    sign_in(client, ny_employee.user)
    client.post(reverse("portal:acknowledge"), {"notice_version": notice.version})
    client.post(reverse("portal:save"), {"notice_version": "1", "grant": ["ai_agent_training/keystrokes"]})
    client.post(reverse("portal:withdraw_all"))
    html = _texts(client.get(reverse("portal:history")))
    withdrawn = html.index("You withdrew: Keystrokes")
    granted = html.index("You opted in: Keystrokes")
    acknowledged = html.index("You acknowledged the monitoring notice")
    assert withdrawn < granted < acknowledged
    for event in ConsentEvent.objects.filter(employee=ny_employee):
        assert event.receipt_id in html


def test_history_pages_accept_any_page_number_without_failing(client, portal_policy, us_employee):
    sign_in(client, us_employee.user)
    for page in ("2", "abc", "-1", "99999999999999999999"):
        assert client.get(reverse("portal:history"), {"page": page}).status_code == 200


def test_an_inactive_employee_is_told_nothing_is_captured_and_is_asked_nothing(client, portal_policy, us_employee):
    from people.services import employee_set_status

    # On leave: a terminated employee's login is disabled and sees no page at all.
    employee_set_status(employee=us_employee, status="on_leave", actor=SYSTEM)
    sign_in(client, us_employee.user)
    html = _texts(client.get(reverse("portal:home")))
    assert "recorded as <strong>on leave</strong>" in html
    assert 'name="grant"' not in html


def test_granted_states_are_marked_with_words_not_only_colour(client, portal_policy, us_employee):
    _grant(us_employee, portal_policy, "keystrokes")
    sign_in(client, us_employee.user)
    html = _texts(client.get(reverse("portal:home")))
    assert '<span class="badge badge-granted switch-state">On</span>' in html
    assert '<span class="badge badge-not_asked switch-state">Off (not asked yet)</span>' in html
    assert ConsentState.objects.get(employee=us_employee).state == ConsentEventKind.GRANTED


# Receipts ------------------------------------------------------------------------------------


def test_each_grant_and_withdrawal_in_the_history_links_its_signed_receipt(client, portal_policy, us_employee):
    sign_in(client, us_employee.user)
    client.post(reverse("portal:save"), {"notice_version": "1", "grant": ["ai_agent_training/keystrokes"]})
    client.post(reverse("portal:withdraw_all"))
    html = _texts(client.get(reverse("portal:history")))
    for event in ConsentEvent.objects.filter(employee=us_employee):
        assert reverse("portal:receipt", args=[event.receipt_id]) in html
    assert html.count("Download signed receipt") == 2


def test_a_downloaded_receipt_is_the_api_s_document_and_its_signature_verifies(client, portal_policy, us_employee):
    import jwt

    from consentry.signing import verify_jws

    sign_in(client, us_employee.user)
    client.post(reverse("portal:save"), {"notice_version": "1", "grant": ["ai_agent_training/screenshots"]})
    event = ConsentEvent.objects.get(employee=us_employee)
    response = client.get(reverse("portal:receipt", args=[event.receipt_id]))
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="consent-receipt-{event.receipt_id}.json"'
    document = response.json()
    assert document == client.get(f"/api/v1/me/receipts/{event.receipt_id}").json()
    claims = verify_jws(document["jws"], options={"verify_aud": False, "verify_exp": False})
    assert claims["consentReceiptID"] == event.receipt_id
    tampered = document["jws"][:-4] + ("AAAA" if not document["jws"].endswith("AAAA") else "BBBB")
    with pytest.raises(jwt.InvalidTokenError):
        verify_jws(tampered, options={"verify_aud": False, "verify_exp": False})


def test_another_employee_s_receipt_is_not_found(client, portal_policy, us_employee, ny_employee):
    _grant(ny_employee, portal_policy, "keystrokes")
    theirs = ConsentEvent.objects.get(employee=ny_employee).receipt_id
    sign_in(client, us_employee.user)
    assert client.get(reverse("portal:receipt", args=[theirs])).status_code == 404
    assert client.get(reverse("portal:receipt", args=["rcpt_does-not-exist"])).status_code == 404
    client.logout()
    assert client.get(reverse("portal:receipt", args=[theirs])).status_code == 302
