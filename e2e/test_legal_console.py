"""Legal users change a rule under four eyes; a user scoped to the EU cannot touch a US rule."""

from __future__ import annotations

import re

import pytest

from governance.models import ApprovalState, JurisdictionRule

pytestmark = pytest.mark.slow


def _simulate_screenshots_for_tess(tab) -> str:
    page = tab.page
    page.get_by_role("link", name="Simulator").click()
    page.get_by_label("Employee HR id").fill("E1003")
    page.get_by_label("Purpose").select_option("ai_agent_training")
    page.get_by_label("Screenshots", exact=True).check()
    page.get_by_role("button", name="Simulate").click()
    return page.locator("#decision tbody tr", has_text="Screenshots").inner_text()


def test_a_legal_user_drafts_a_change_and_a_second_legal_user_approves_it(open_browser, people):
    lena = open_browser("lena")
    page = lena.page
    assert page.get_by_role("heading", name="Regions and rules").is_visible()
    lena.screenshot("legal-regions")
    before = _simulate_screenshots_for_tess(lena)
    assert "Allowed" in before and "Denied" not in before
    page.get_by_role("link", name="Regions and rules").click()
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
    assert draft.approved_by is not None and draft.supersedes is not None
    assert draft.state == ApprovalState.APPROVED and draft.approved_by.username == "ada"
    assert draft.supersedes.state == ApprovalState.SUPERSEDED or draft.supersedes.effective_to is not None

    # The simulator, on the same engine as the capture API, now answers with the new rule.
    after = _simulate_screenshots_for_tess(lena)
    assert "Denied" in after and "category_blocked_in_jurisdiction" in after
    lena.screenshot("legal-simulator")
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


def test_legal_exports_the_policy_and_sees_what_to_fix_in_a_broken_pack(open_browser, people, tmp_path):
    lena = open_browser("lena")
    page = lena.page
    page.get_by_role("link", name="Policy packs").click()
    page.get_by_label("Version").fill("2026.12.1")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download pack").click()
    download = download_info.value
    assert download.suggested_filename == "consentry-policy-2026.12.1.yaml"
    exported = tmp_path / download.suggested_filename
    download.save_as(exported)
    text = exported.read_text()
    assert "format: consentry-policy-pack" in text and "US-NY" in text

    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("code: US-NY", "code: US-XX", 1))
    page.get_by_label("Policy pack file (YAML)").set_input_files(str(broken))
    page.get_by_role("button", name="Upload").click()
    errors = page.locator("#pack-errors")
    assert "broken.yaml" in errors.inner_text() and "US-XX" in errors.inner_text()
    lena.screenshot("legal-pack-errors")
