"""Legal users change a rule under four eyes; a user scoped to the EU cannot touch a US rule."""

from __future__ import annotations

import re

import pytest

from governance.models import ApprovalState, JurisdictionRule

pytestmark = pytest.mark.slow


def test_a_legal_user_drafts_a_change_and_a_second_legal_user_approves_it(open_browser, people):
    lena = open_browser("lena")
    page = lena.page
    assert page.get_by_role("heading", name="Regions and rules").is_visible()
    lena.screenshot("legal-regions")
    page.get_by_role("link", name=re.compile(r"^US-TX")).first.click()
    page.get_by_role("link", name="Draft a change").click()
    page.get_by_label("Screenshots", exact=True).check()
    page.get_by_label("Notes").fill("Screenshots paused in Texas pending counsel review.")
    lena.screenshot("legal-rule-draft")
    page.get_by_role("button", name="Save draft").click()
    assert page.get_by_text("Draft saved. It changes nothing until a second person approves it").is_visible()
    diff = page.locator("table.diff")
    assert "Added: Screenshots" in diff.inner_text()
    assert page.get_by_text("You do not hold approval rights for US-TX.").is_visible()
    draft = JurisdictionRule.objects.get(state=ApprovalState.DRAFT, region="US-TX")
    lena.screenshot("legal-rule-diff")

    ada = open_browser("ada")
    ada.go(f"/legal/rules/{draft.pk}/")
    ada.page.get_by_role("button", name=f"Approve rule #{draft.pk}").click()
    assert ada.page.get_by_text(f"Approved. Rule #{draft.pk} now decides for US-TX").is_visible()
    draft.refresh_from_db()
    assert draft.state == ApprovalState.APPROVED and draft.approved_by.username == "ada"
    assert draft.supersedes.state == ApprovalState.SUPERSEDED or draft.supersedes.effective_to is not None
    assert lena.console_errors == [] and ada.console_errors == []


def test_nobody_approves_their_own_draft_and_the_refusal_is_shown(open_browser, people):
    ada = open_browser("ada")
    ada.go("/legal/regions/US-NY/")
    ada.page.get_by_role("link", name="Draft a change").click()
    ada.page.get_by_role("button", name="Save draft").click()
    ada.page.get_by_role("button", name=re.compile(r"^Approve rule")).click()
    alert = ada.page.get_by_role("alert")
    assert "Not approved: A rule must be approved by someone other than its author." in alert.inner_text()
    assert JurisdictionRule.objects.filter(state=ApprovalState.DRAFT, region="US-NY").count() == 1
    ada.screenshot("legal-four-eyes-refused")


def test_an_eu_scoped_legal_user_is_denied_on_a_us_rule(open_browser, people):
    elias = open_browser("elias")
    page = elias.page
    us_tile = page.locator(".tile", has_text="US-NY").first
    assert us_tile.evaluate("element => element.tagName") == "DIV"  # shown, not a link
    us_rule = JurisdictionRule.objects.get(region="US", state=ApprovalState.APPROVED)
    response = elias.go(f"/legal/rules/{us_rule.pk}/")
    assert response.status == 403
    assert page.get_by_role("heading", name="You may not open this page").is_visible()
    assert page.get_by_text("Your account does not cover US").is_visible()
    elias.screenshot("legal-eu-user-denied-on-us-rule")
    assert elias.go("/legal/regions/US/draft").status == 403
    assert elias.go("/legal/regions/DE/draft").status == 200
