"""An employee in New York: acknowledge, opt in, see what was captured, withdraw, pause, keep a receipt."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from conftest import SYSTEM
from consent.models import ConsentState, NoticeAcknowledgement, Pause
from consentry.signing import verify_jws
from decisions import engine
from decisions.services import capture_decide
from people.tokens import token_issue

pytestmark = pytest.mark.slow


def test_an_employee_grants_withdraws_everything_pauses_and_downloads_a_receipt(open_browser, people, tmp_path):
    nina = people["nina"]
    tab = open_browser("nina")
    page = tab.page
    assert page.url.endswith("/portal/")
    assert page.get_by_role("heading", name="Where you work: New York, United States").is_visible()

    # New York law: acknowledge the monitoring notice first (it turns nothing on).
    page.get_by_role("button", name="I have read and acknowledge notice version 1").click()
    assert page.get_by_text("Thank you: you acknowledged notice version 1.").is_visible()
    assert NoticeAcknowledgement.objects.filter(employee=nina).count() == 1

    # Every switch starts off; turn on two, one by keyboard.
    switches = page.locator("input.switch")
    assert switches.count() == 7
    assert all(not switches.nth(i).is_checked() for i in range(switches.count()))
    page.get_by_label("Keystrokes", exact=True).check()
    page.get_by_label("Mouse movement", exact=True).focus()
    page.keyboard.press("Space")
    tab.screenshot("portal-choosing")
    page.get_by_role("button", name="Save my choices").click()
    assert page.get_by_text("Saved: you turned on Keystrokes, Mouse movement.").is_visible()
    granted = ConsentState.objects.filter(employee=nina, state="granted").values_list("category_id", flat=True)
    assert sorted(granted) == ["keystrokes", "mouse_movement"]
    assert page.get_by_label("Keystrokes", exact=True).is_checked()

    # A capture agent on Nina's laptop asks, and is granted what she turned on.
    agent, _ = token_issue(kind="device", name="laptop", employee=nina, device_id="laptop-7", actor=SYSTEM)
    request = engine.CaptureRequest(purpose="ai_agent_training", categories=("keystrokes", "screenshots"))
    outcome = capture_decide(token=agent, request=request, at=timezone.now())
    assert outcome.decision.allowed_categories == ("keystrokes",)
    page.get_by_role("link", name="What was captured").click()
    assert page.locator("tbody tr", has_text="Keystrokes").locator("td.num").inner_text() == "1"
    assert page.locator("tbody tr", has_text="Screenshots").count() == 0
    tab.screenshot("portal-captured")
    page.get_by_role("link", name="My choices").click()

    # Withdrawing everything is one click, as easy as granting.
    page.get_by_role("button", name="Withdraw everything").click()
    assert page.get_by_text("Everything is withdrawn (2 item(s)).").is_visible()
    assert set(ConsentState.objects.filter(employee=nina).values_list("state", flat=True)) == {"withdrawn"}
    assert not page.get_by_label("Keystrokes", exact=True).is_checked()

    # Pause for 30 minutes, then resume.
    page.get_by_role("button", name="Pause 30 minutes").click()
    assert page.get_by_role("heading", name="Capture is paused").is_visible()
    assert Pause.objects.filter(employee=nina, resumed_at__isnull=True).count() == 1
    tab.screenshot("portal-paused")
    page.get_by_role("button", name="Resume capture now").click()
    assert page.get_by_text("Capture is resumed").is_visible()

    # The history shows every step, newest first.
    page.get_by_role("link", name="History and receipts").click()
    items = page.locator(".timeline li .what").all_inner_texts()
    assert items[:2] == ["You resumed capture", "You paused capture"]
    assert {items[2], items[3]} == {"You withdrew: Keystrokes", "You withdrew: Mouse movement"}
    assert "You acknowledged the monitoring notice" in items
    tab.screenshot("portal-history")

    # A receipt downloads as the signed document; its signature verifies with our public key.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download signed receipt").first.click()
    download = download_info.value
    assert download.suggested_filename.startswith("consent-receipt-rcpt_")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    document = json.loads(saved.read_text())
    claims = verify_jws(document["jws"], options={"verify_aud": False, "verify_exp": False})
    assert claims["consentReceiptID"] == document["id"]
    assert document["kind"] == "withdrawn"
    assert tab.console_errors == []


def test_the_portal_works_on_a_phone_sized_screen(open_browser, people):
    tab = open_browser("nina", mobile=True)
    page = tab.page
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page must not scroll sideways on a phone"
    assert page.get_by_role("button", name="Save my choices").is_visible()
    tab.screenshot("portal-phone")


def test_keyboard_users_reach_the_content_first_and_see_where_they_are(open_browser, people):
    tab = open_browser("nina")
    page = tab.page
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    assert skip.evaluate("element => element === document.activeElement")
    outline = skip.evaluate("element => getComputedStyle(element).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
