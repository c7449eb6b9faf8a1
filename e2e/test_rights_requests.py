"""An employee asks for a copy of their data, watches it being prepared, and downloads it; then asks for erasure."""

from __future__ import annotations

import json
import zipfile

import pytest

from decisions import rights as rights_services
from decisions.models import RightsKind, RightsRequest, RightsStatus

pytestmark = pytest.mark.slow


@pytest.fixture
def worker(monkeypatch, settings, tmp_path):
    """Stand in for the Celery worker: the page enqueues, the test runs the job when it chooses."""
    settings.MEDIA_ROOT = tmp_path / "media"
    queued: list[tuple[str, str]] = []
    monkeypatch.setattr(rights_services, "_enqueue", lambda kind, request_id: queued.append((kind, request_id)))
    return queued


def test_an_employee_requests_a_copy_sees_it_progress_to_done_and_downloads_it(open_browser, people, worker, tmp_path):
    nina = people["nina"]
    tab = open_browser("nina")
    page = tab.page
    page.get_by_role("link", name="Your data rights").click()
    assert page.get_by_role("heading", name="Your data rights", level=1).is_visible()

    page.get_by_role("button", name="Request a copy of my data").click()
    assert page.get_by_text("We are preparing a copy of your data.").is_visible()
    rights = RightsRequest.objects.get(employee=nina, kind=RightsKind.ACCESS)
    assert worker == [("access", rights.id)]
    card = page.locator("article.rights-card")
    progress = card.get_by_label("Progress")
    assert progress.get_attribute("value") == "0"
    assert card.get_by_role("link", name="Download your copy (zip)").is_hidden()

    # The worker reports progress; the page follows without a reload.
    RightsRequest.objects.filter(pk=rights.pk).update(status=RightsStatus.RUNNING, progress=40)
    card.get_by_text("Your copy is being prepared (40% done).").wait_for()
    assert progress.get_attribute("value") == "40"
    assert card.locator(".badge").inner_text() == "In progress"
    tab.screenshot("portal-rights-progress")

    rights_services.rights_access_build(request_id=rights.id)
    download_link = card.get_by_role("link", name="Download your copy (zip)")
    download_link.wait_for(state="visible")
    assert card.get_by_text("Your copy is ready to download.").is_visible()
    assert card.locator(".badge").inner_text() == "Completed"
    assert card.locator('[data-part="progress-wrap"]').is_hidden()
    assert page.get_by_role("button", name="Request a copy of my data").is_enabled()
    tab.screenshot("portal-rights-ready")

    with page.expect_download() as download_info:
        download_link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("consentry-my-data-") and download.suggested_filename.endswith(".zip")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        data = json.loads(archive.read("data.json"))
        index = archive.read("index.html").decode()
    assert data["employee"]["hr_id"] == "E1001" and data["request"]["id"] == str(rights.id)
    assert "Your data held by Consentry" in index
    assert tab.console_errors == []


def test_an_employee_confirms_erasure_and_reads_what_was_deleted_and_kept(open_browser, people, worker):
    nina = people["nina"]
    tab = open_browser("nina")
    page = tab.page
    tab.go("/portal/rights/")
    page.get_by_role("link", name="Request erasure…").click()
    assert page.get_by_role("heading", name="Erase your data?").is_visible()
    tab.screenshot("portal-rights-erase-confirm")
    # Confirming without ticking the box changes nothing and says why.
    page.get_by_role("button", name="Erase my data").click()
    assert page.get_by_role("alert").is_visible()
    assert not RightsRequest.objects.filter(employee=nina).exists()
    page.get_by_label("I understand that my consents are withdrawn", exact=False).check()
    page.get_by_role("button", name="Erase my data").click()
    assert page.get_by_text("Your erasure request is recorded. Use of your earlier data is refused").is_visible()
    rights = RightsRequest.objects.get(employee=nina, kind=RightsKind.ERASURE)
    rights_services.rights_erasure_carry_out(request_id=rights.id)
    page.locator('[data-part="message"]', has_text="Your data was erased").wait_for()
    tab.go(f"/portal/rights/{rights.pk}/")
    assert page.get_by_role("heading", name="What is kept, and why").is_visible()
    tab.screenshot("portal-rights-erased")
    assert tab.console_errors == []
