"""The legal console: permission matrix for every page, then drafting, approving, instruments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_user
from consentry.tests.roles import make_approver, make_auditor, sign_in
from governance import services as gov
from governance.models import ApprovalState, JurisdictionRule, LegalInstrument

pytestmark = pytest.mark.django_db


@pytest.fixture
def us_draft(small_policy, us_legal):
    return gov.rule_draft(
        region=small_policy["regions"]["US"],
        status="conditional",
        preconditions=["company_written_policy"],
        effective_from=timezone.now() - timedelta(minutes=5),
        supersedes=small_policy["rules"]["US"],
        actor=Actor.for_user(us_legal),
    )


@pytest.fixture
def us_instrument(small_policy):
    return gov.instrument_save(
        kind="company_written_policy",
        title="US monitoring policy",
        region=small_policy["regions"]["US"],
        valid_from=timezone.now().date(),
        document_ref="dms://policies/us-monitoring",
        actor=SYSTEM,
    )


def _pages(draft, instrument):
    """(name, url, method) of every legal console page and action."""
    return {
        "regions": (reverse("legal:regions"), "get"),
        "region": (reverse("legal:region", args=["US"]), "get"),
        "rule_draft": (reverse("legal:rule_draft", args=["US"]), "get"),
        "rule": (reverse("legal:rule", args=[draft.pk]), "get"),
        "rule_approve": (reverse("legal:rule_approve", args=[draft.pk]), "post"),
        "rule_discard": (reverse("legal:rule_discard", args=[draft.pk]), "post"),
        "instruments": (reverse("legal:instruments"), "get"),
        "instrument_new": (reverse("legal:instrument_new"), "get"),
        "instrument_edit": (reverse("legal:instrument_edit", args=[instrument.pk]), "get"),
        "catalogue": (reverse("legal:catalogue"), "get"),
        "notice": (reverse("legal:notice", args=[1]), "get"),
        "opt_in_rates": (reverse("legal:opt_in_rates"), "get"),
        "packs": (reverse("legal:packs"), "get"),
        "pack_export": (reverse("legal:pack_export") + "?name=policy&version=1", "get"),
    }


ALL = {
    "regions",
    "region",
    "rule_draft",
    "rule",
    "rule_approve",
    "rule_discard",
    "instruments",
    "instrument_new",
    "instrument_edit",
    "catalogue",
    "notice",
    "opt_in_rates",
    "packs",
    "pack_export",
}
GLOBAL_PAGES = {"regions", "instruments", "catalogue", "notice", "opt_in_rates", "packs", "pack_export"}
# What each persona may open: 200 (or a redirect after an action); everything else is 403.
ALLOWED = {
    "us_legal": ALL - {"rule_approve"},
    "us_approver": ALL,
    "eu_legal": GLOBAL_PAGES | {"instrument_new"},
    "global_approver": GLOBAL_PAGES - {"opt_in_rates"} | {"region", "rule", "rule_approve"},
    "employee": set(),
    "auditor": set(),
}


def _persona(request, name, small_policy):
    if name == "employee":
        return request.getfixturevalue("ny_employee").user
    if name == "auditor":
        return make_auditor(make_user("aurelio"))
    return request.getfixturevalue(name)


def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(client, us_draft, us_instrument):
    for page, (url, method) in _pages(us_draft, us_instrument).items():
        response = getattr(client, method)(url)
        assert response.status_code == 302, page
        assert response["Location"].startswith(reverse("login")), page


@pytest.mark.parametrize("persona", sorted(ALLOWED))
def test_each_page_opens_only_for_the_roles_and_regions_it_belongs_to(
    request, client, small_policy, us_draft, us_instrument, persona
):
    sign_in(client, _persona(request, persona, small_policy))
    outcome = {}
    # Read-only pages first, then the actions, so an approval does not hide a later check.
    pages = sorted(_pages(us_draft, us_instrument).items(), key=lambda item: item[1][1] == "post")
    for page, (url, method) in pages:
        outcome[page] = getattr(client, method)(url).status_code
    expected = {page: "allowed" if page in ALLOWED[persona] else 403 for page in outcome}
    actual = {page: "allowed" if code in (200, 302) else code for page, code in outcome.items()}
    assert actual == expected


# Regions ---------------------------------------------------------------------------------------


def test_the_overview_shows_each_region_s_status_in_words_and_where_it_comes_from(client, small_policy, us_legal):
    sign_in(client, us_legal)
    html = client.get(reverse("legal:regions")).content.decode()
    assert '<a class="tile tile-allow" href="/legal/regions/US/">' in html
    assert '<div class="tile tile-block">' in html  # EU: outside this user's regions, not a link
    assert "via EU" in html and "via US" in html
    assert "Your regions" in html and "Other regions (" in html


def test_an_unknown_region_or_rule_is_not_found(client, small_policy, us_legal):
    sign_in(client, us_legal)
    assert client.get(reverse("legal:region", args=["XX-NOPE"])).status_code == 404
    assert client.get(reverse("legal:rule", args=[999999])).status_code == 404
    assert client.get("/legal/rules/abc/").status_code == 404


# Drafting and approving ---------------------------------------------------------------------


def _draft_form(**overrides):
    data = {
        "status": "conditional",
        "preconditions": ["company_written_policy", "notice_acknowledgement"],
        "blocked_categories": ["screenshots"],
        "effective_from": (timezone.now() - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"),
        "effective_to": "",
        "cap_keystrokes": "60",
        "notes": "Tightened after counsel review.",
    }
    data.update(overrides)
    return data


def test_a_legal_user_drafts_a_change_that_supersedes_the_rule_in_force(client, small_policy, us_legal):
    sign_in(client, us_legal)
    form = client.get(reverse("legal:rule_draft", args=["US"])).content.decode()
    assert 'value="allow" required id="id_status_0" checked' in form  # prefilled from rule in force
    response = client.post(reverse("legal:rule_draft", args=["US"]), _draft_form())
    draft = JurisdictionRule.objects.get(state=ApprovalState.DRAFT)
    assert response.status_code == 302 and response["Location"] == reverse("legal:rule", args=[draft.pk])
    assert draft.supersedes == small_policy["rules"]["US"]
    assert draft.created_by == us_legal
    assert draft.blocked_categories == ["screenshots"] and draft.max_retention_days == {"keystrokes": 60}
    assert AuditEntry.objects.filter(event_type=EventType.RULE_DRAFTED, actor="user:lena").exists()


def test_the_draft_page_shows_its_difference_from_the_rule_in_force(client, small_policy, us_legal):
    sign_in(client, us_legal)
    client.post(reverse("legal:rule_draft", args=["US"]), _draft_form())
    draft = JurisdictionRule.objects.get(state=ApprovalState.DRAFT)
    html = client.get(reverse("legal:rule", args=[draft.pk])).content.decode()
    assert "Changes against rule #" in html
    assert "<del>Allowed</del>" in html and "<ins>Allowed under conditions</ins>" in html
    assert "Added: Company written monitoring policy, Employee acknowledged the current notice" in html
    assert "Added: Screenshots" in html


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"status": "maybe"}, "Select a valid choice"),
        ({"status": ""}, "This field is required"),
        ({"effective_from": "tomorrow-ish"}, "Enter a valid date/time"),
        ({"effective_from": ""}, "This field is required"),
        ({"effective_to": "2020-01-01T00:00"}, "The rule must end after it starts."),
        ({"cap_keystrokes": "-3"}, "Ensure this value is greater than or equal to 0"),
        ({"cap_keystrokes": "lots"}, "Enter a whole number"),
        ({"preconditions": ["telepathy"]}, "Select a valid choice"),
        ({"blocked_categories": ["brainwaves"]}, "Select a valid choice"),
        ({"notes": "x" * 6000}, "Ensure this value has at most 5000 characters"),
    ],
)
def test_a_bad_draft_is_refused_and_the_form_says_what_to_fix(client, small_policy, us_legal, overrides, message):
    sign_in(client, us_legal)
    response = client.post(reverse("legal:rule_draft", args=["US"]), _draft_form(**overrides))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Please fix the following and try again." in html
    assert message in html
    assert not JurisdictionRule.objects.filter(state=ApprovalState.DRAFT).exists()


def test_the_author_of_a_draft_cannot_approve_it_and_is_told_why(client, small_policy, us_approver):
    sign_in(client, us_approver)
    client.post(reverse("legal:rule_draft", args=["US"]), _draft_form())
    draft = JurisdictionRule.objects.get(state=ApprovalState.DRAFT)
    response = client.post(reverse("legal:rule_approve", args=[draft.pk]), follow=True)
    draft.refresh_from_db()
    assert draft.state == ApprovalState.DRAFT
    assert "Not approved: A rule must be approved by someone other than its author." in response.content.decode()
    assert "You drafted this one, so someone else must approve it." in response.content.decode()


def test_a_second_person_approves_and_the_new_rule_replaces_the_old_one(client, small_policy, us_legal, us_approver):
    sign_in(client, us_legal)
    client.post(reverse("legal:rule_draft", args=["US"]), _draft_form())
    draft = JurisdictionRule.objects.get(state=ApprovalState.DRAFT)
    sign_in(client, us_approver)
    response = client.post(reverse("legal:rule_approve", args=[draft.pk]), follow=True)
    draft.refresh_from_db()
    old = small_policy["rules"]["US"]
    old.refresh_from_db()
    assert draft.state == ApprovalState.APPROVED and draft.approved_by == us_approver
    assert old.state == ApprovalState.SUPERSEDED or old.effective_to == draft.effective_from
    assert "Approved. Rule #" in response.content.decode()
    regions = client.get(reverse("legal:regions")).content.decode()
    assert '<a class="tile tile-conditional" href="/legal/regions/US/">' in regions


def test_an_overlapping_approval_is_refused_with_the_reason(client, small_policy, us_legal, us_approver):
    region = small_policy["regions"]["US-CA"]
    author = Actor.for_user(us_legal)
    first = gov.rule_draft(region=region, status="allow", effective_from=timezone.now(), actor=author)
    second = gov.rule_draft(region=region, status="block", effective_from=timezone.now(), actor=author)
    sign_in(client, make_approver(us_approver, region))
    client.post(reverse("legal:rule_approve", args=[first.pk]))
    response = client.post(reverse("legal:rule_approve", args=[second.pk]), follow=True)
    second.refresh_from_db()
    assert second.state == ApprovalState.DRAFT
    assert "overlaps approved rule" in response.content.decode()


def test_an_eu_legal_user_cannot_draft_approve_or_discard_a_us_rule(client, small_policy, eu_legal, us_draft):
    sign_in(client, eu_legal)
    assert client.post(reverse("legal:rule_draft", args=["US"]), _draft_form()).status_code == 403
    assert client.post(reverse("legal:rule_approve", args=[us_draft.pk])).status_code == 403
    assert client.post(reverse("legal:rule_discard", args=[us_draft.pk])).status_code == 403
    response = client.get(reverse("legal:rule", args=[us_draft.pk]))
    assert response.status_code == 403 and "out of your scope" in response.content.decode()
    us_draft.refresh_from_db()
    assert us_draft.state == ApprovalState.DRAFT
    assert JurisdictionRule.objects.filter(state=ApprovalState.DRAFT).count() == 1


def test_an_eu_legal_user_drafts_for_their_own_regions(client, small_policy, eu_legal):
    sign_in(client, eu_legal)
    response = client.post(reverse("legal:rule_draft", args=["DE"]), _draft_form(status="block", preconditions=[]))
    assert response.status_code == 302
    assert JurisdictionRule.objects.get(state=ApprovalState.DRAFT).region_id == "DE"


def test_discarding_a_draft_removes_it_and_leaves_evidence(client, small_policy, us_legal, us_draft):
    sign_in(client, us_legal)
    response = client.post(reverse("legal:rule_discard", args=[us_draft.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("legal:region", args=["US"])
    assert not JurisdictionRule.objects.filter(pk=us_draft.pk).exists()
    assert AuditEntry.objects.filter(event_type=EventType.RULE_DRAFT_DISCARDED).exists()
    again = client.post(reverse("legal:rule_discard", args=[us_draft.pk]))
    assert again.status_code == 404


def test_approving_an_approved_rule_says_it_is_not_a_draft(client, small_policy, global_approver):
    sign_in(client, global_approver)
    rule = small_policy["rules"]["US"]
    response = client.post(reverse("legal:rule_approve", args=[rule.pk]), follow=True)
    assert "Not approved: Only a draft can be approved." in response.content.decode()


# Legal instruments ----------------------------------------------------------------------------


def _instrument_form(**overrides):
    data = {
        "kind": "works_council_agreement",
        "title": "Betriebsvereinbarung IT-Monitoring",
        "region": "DE",
        "entity": "Example GmbH",
        "site": "",
        "employee": "",
        "valid_from": "2026-01-01",
        "valid_to": "2028-12-31",
        "document_ref": "dms://de/works-council/2026-01",
    }
    data.update(overrides)
    return data


def test_a_legal_user_records_an_instrument_with_scope_and_validity(client, small_policy, eu_legal):
    sign_in(client, eu_legal)
    response = client.post(reverse("legal:instrument_new"), _instrument_form())
    assert response.status_code == 302
    instrument = LegalInstrument.objects.get()
    assert (instrument.region_id, instrument.entity, str(instrument.valid_to)) == ("DE", "Example GmbH", "2028-12-31")
    listing = client.get(reverse("legal:instruments")).content.decode()
    assert "Betriebsvereinbarung IT-Monitoring" in listing and "2026-01-01 → 2028-12-31" in listing


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"region": "US"}, "Select a valid choice"),
        ({"kind": "biometric_release"}, "A written biometric release belongs to one employee"),
        ({"employee": "E-NOBODY"}, "No employee has HR id"),
        ({"valid_to": "2025-01-01"}, "An instrument cannot expire before it starts."),
        ({"valid_from": "31/31/2026"}, "Enter a valid date"),
        ({"document_ref": ""}, "This field is required"),
    ],
)
def test_a_bad_instrument_is_refused_with_what_to_fix(client, small_policy, eu_legal, overrides, message):
    sign_in(client, eu_legal)
    response = client.post(reverse("legal:instrument_new"), _instrument_form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not LegalInstrument.objects.exists()


def test_an_instrument_outside_one_s_regions_cannot_be_edited(client, small_policy, eu_legal, us_instrument):
    sign_in(client, eu_legal)
    assert client.get(reverse("legal:instrument_edit", args=[us_instrument.pk])).status_code == 403
    post = client.post(reverse("legal:instrument_edit", args=[us_instrument.pk]), _instrument_form(region="DE"))
    assert post.status_code == 403
    us_instrument.refresh_from_db()
    assert us_instrument.region_id == "US"


def test_editing_an_instrument_keeps_its_identity(client, small_policy, us_legal, us_instrument):
    sign_in(client, us_legal)
    page = client.get(reverse("legal:instrument_edit", args=[us_instrument.pk])).content.decode()
    assert "US monitoring policy" in page
    data = _instrument_form(region="US", kind="company_written_policy", title="US monitoring policy, 2nd edition")
    assert client.post(reverse("legal:instrument_edit", args=[us_instrument.pk]), data).status_code == 302
    assert LegalInstrument.objects.get().title == "US monitoring policy, 2nd edition"


# Catalogue --------------------------------------------------------------------------------------


def test_the_catalogue_lists_notice_versions_with_the_material_flag_purposes_and_retention(
    client, small_policy, us_legal
):
    sign_in(client, us_legal)
    html = client.get(reverse("legal:catalogue")).content.decode()
    assert "Material: asks re-consent" in html
    assert "Prohibited: never consented, granted or used" in html
    assert "AI agent training" in html
    notice = client.get(reverse("legal:notice", args=[1])).content.decode()
    assert "Asked again" in notice
    assert client.get(reverse("legal:notice", args=[99])).status_code == 404
