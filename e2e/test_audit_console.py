"""An auditor searches the ledger, reads an entry, exports a bundle and verifies it offline."""

from __future__ import annotations

import json
import re

import pytest
from consentry_client.verify import main as consentry_verify
from consentry_client.verify import verify_bundle
from playwright.sync_api import expect

from audit.actors import Actor
from audit.models import AuditEntry, AuditExport, EventType
from audit.services import ledger_verify

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


def test_auditor_exports_and_downloads_a_bundle_that_verifies(open_browser, people, export_worker, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    queued = export_worker.queued
    tab = open_browser("aurelio")
    page = tab.page
    page.get_by_role("navigation", name="Audit console").get_by_role("link", name="Exports").click()
    assert page.get_by_role("heading", name="Exports", level=1).is_visible()
    assert page.get_by_text("You have not exported anything yet.").is_visible()

    # Rule approvals and policy pack loads, as CSV: a filtered bundle, verified through its leaves.
    page.get_by_text("Event types: every type").click()
    page.get_by_label("Jurisdiction rule approved", exact=True).check()
    page.get_by_label("Policy pack loaded", exact=True).check()
    page.get_by_label("CSV", exact=True).check()
    page.get_by_role("button", name="Start export").click()
    assert page.get_by_text("Export started.").is_visible()
    export = AuditExport.objects.get()
    assert export.requested_by.username == "aurelio" and export.format == "csv"
    assert queued == [str(export.pk)]

    row = page.locator(f"#export-{export.pk}")
    progress = row.get_by_role("progressbar")
    expect(progress).to_have_js_property("value", 0)
    expect(row.locator('[data-role="status"]')).to_have_text("Pending")
    tab.screenshot("audit-exports-pending")

    # The worker builds the bundle; the page's script sees it finish without a reload.
    export_worker.run_next()
    expect(row.locator('[data-role="status"]')).to_have_text("Done", timeout=15_000)
    expect(progress).to_have_js_property("value", 100)
    expect(page.locator("#export-announcer")).to_contain_text("is done: its bundle is ready to download")
    link = row.get_by_role("link", name=re.compile(r"^Download the export requested"))
    tab.screenshot("audit-exports")
    with page.expect_download() as info:
        link.click()
    bundle = tmp_path / info.value.suggested_filename
    info.value.save_as(bundle)
    assert bundle.name == f"consentry-audit-{export.pk}.zip"

    # The auditor fetches the public keys from the address the checkpoints page gives.
    ledger_verify(actor=Actor.system("audit-verify"))
    page.get_by_role("link", name="Checkpoints and verification").click()
    assert page.get_by_text("Passed").is_visible()
    assert page.locator("tbody .badge-ok", has_text="Valid").count() >= 1
    tab.screenshot("audit-checkpoints")
    command = page.get_by_text(re.compile(r"^curl -o jwks\.json ")).inner_text()
    keys = page.request.get(command.split()[-1])
    assert keys.ok
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(keys.body())

    result = verify_bundle(bundle, jwks=json.loads(keys.body()))
    wanted = AuditEntry.objects.filter(
        event_type__in=[EventType.RULE_APPROVED, EventType.POLICY_PACK_LOADED], seq__lte=result.size
    )
    assert result.ok, result.findings
    assert result.keys_pinned and result.entries == wanted.count() > 0
    assert consentry_verify(["bundle", str(bundle), "--keys", str(jwks)]) == 0
    assert tab.console_errors == []
