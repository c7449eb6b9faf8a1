"""An auditor searches the ledger and reads an entry."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_an_auditor_filters_the_log_and_opens_an_entry(open_browser, people):
    tab = open_browser("aurelio")
    page = tab.page
    assert page.url.endswith("/audit/")
    page.get_by_label("Event type").select_option("rule.approved")
    page.get_by_label("Region").fill("US")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("tbody tr")
    assert rows.count() >= 1
    assert all("rule.approved" in text for text in rows.all_inner_texts())
    tab.screenshot("audit-search")
    rows.first.get_by_role("link").click()
    assert page.get_by_role("heading", name="Payload").is_visible()
    assert len(page.locator("dd.hash").first.inner_text()) == 64
    tab.screenshot("audit-entry")


def test_a_bad_filter_is_explained_not_a_crash(open_browser, people):
    tab = open_browser("aurelio")
    response = tab.go("/audit/?since=not-a-date&event_type=nope")
    assert response.status == 200
    assert tab.page.get_by_role("alert").is_visible()
    assert "Please fix the following and try again." in tab.page.get_by_role("alert").inner_text()
