"""axe-core on every main page, as each kind of user sees it: no serious or critical violation."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from audit.access import access_for
from audit.actors import Actor
from audit.selectors import EntryFilters
from audit.services import export_request, ledger_verify
from conftest import make_user
from decisions import rights
from e2e.browser import describe
from governance.models import ApprovalState, JurisdictionRule
from people.tokens import token_issue

pytestmark = pytest.mark.slow


def _check(tab, pages: dict[str, str]) -> dict[str, list]:
    found = {}
    for name, path in pages.items():
        response = tab.go(path)
        assert response.status < 400 or name.endswith("denied"), (name, response.status)
        tab.screenshot(name)
        violations = tab.axe_violations()
        if violations:
            found[name] = violations
    return found


def test_the_sign_in_pages_are_accessible(open_browser, people):
    tab = open_browser()
    assert _check(tab, {"sign-in": "/accounts/login/"}) == {}
    tab.page.get_by_label("Username").fill("lena")
    tab.page.get_by_label("Password").fill("pw-lena")
    tab.page.get_by_role("button", name="Sign in").click()
    assert "/accounts/2fa/" in tab.page.url
    tab.screenshot("sign-in-second-factor")
    violations = tab.axe_violations()
    assert violations == [], describe(violations)
    assert tab.console_errors == []


def test_the_employee_portal_is_accessible(open_browser, people, monkeypatch):
    # A copy being prepared, so the rights pages show a live progress bar (no worker runs it here).
    monkeypatch.setattr(rights, "_enqueue", lambda kind, request_id: None)
    pending, _ = rights.rights_request_access(
        employee=people["nina"], user=people["nina"].user, actor=Actor.for_user(people["nina"].user)
    )
    tab = open_browser("nina")
    found = _check(
        tab,
        {
            "portal-home": "/portal/",
            "portal-history-empty": "/portal/history/",
            "portal-captured-empty": "/portal/captured/",
            "portal-rights": "/portal/rights/",
            "portal-rights-request": f"/portal/rights/{pending.pk}/",
            "portal-rights-erase": "/portal/rights/erase",
        },
    )
    assert found == {}, describe(found)
    assert tab.console_errors == []


def test_the_legal_console_is_accessible(open_browser, people):
    rule = JurisdictionRule.objects.filter(region="US", state=ApprovalState.APPROVED).first()
    assert rule is not None
    tab = open_browser("lena")
    pages = {
        "legal-regions-overview": "/legal/",
        "legal-region-us": "/legal/regions/US/",
        "legal-rule-form": "/legal/regions/US/draft",
        "legal-rule": f"/legal/rules/{rule.pk}/",
        "legal-instruments": "/legal/instruments/",
        "legal-instrument-form": "/legal/instruments/new",
        "legal-catalogue": "/legal/catalogue/",
        "legal-notice": "/legal/catalogue/notices/1/",
        "legal-opt-in-rates": "/legal/opt-in-rates/",
        "legal-policy-packs": "/legal/packs/",
        "legal-simulator-result": "/legal/simulate/?who=region&region=US-NY&purpose=ai_agent_training"
        "&categories=keystrokes&categories=keystroke_timing",
        "legal-page-denied": "/legal/regions/DE/",
    }
    found = _check(tab, pages)
    assert found == {}, describe(found)
    assert [error for error in tab.console_errors if "403" not in error] == []


def test_forms_with_errors_stay_accessible(open_browser, people):
    tab = open_browser("lena")
    tab.go("/legal/regions/US/draft")
    tab.page.get_by_label("Effective from (UTC)").fill("")
    tab.page.get_by_role("button", name="Save draft").click()
    assert tab.page.get_by_role("alert").is_visible()
    tab.screenshot("legal-rule-form-errors")
    violations = tab.axe_violations()
    assert violations == [], describe(violations)


def test_the_audit_console_is_accessible(open_browser, people, export_worker):
    auditor = people["aurelio"]
    # One finished export, one waiting for a worker, a signed checkpoint and a verification run.
    for format in ("jsonl", "csv"):
        export_request(user=auditor, access=access_for(auditor), filters=EntryFilters(), format=format)
    export_worker.run_next()
    ledger_verify(actor=Actor.system("audit-verify"))
    tab = open_browser("aurelio")
    pages = {
        "audit-log": "/audit/",
        "audit-log-entry": "/audit/entries/1/",
        "audit-exports-list": "/audit/exports/",
        "audit-checkpoints-page": "/audit/checkpoints/",
    }
    found = _check(tab, pages)
    assert found == {}, describe(found)
    tab.go("/audit/exports/")
    tab.page.get_by_text("Event types: every type").click()
    tab.page.get_by_label("From (UTC)").fill("2026-02-01T00:00")
    tab.page.get_by_label("Until (UTC)").fill("2026-01-01T00:00")
    tab.page.get_by_role("button", name="Start export").click()
    assert tab.page.get_by_role("alert").is_visible()
    tab.screenshot("audit-export-form-errors")
    violations = tab.axe_violations()
    assert violations == [], describe(violations)
    assert tab.console_errors == []


def test_the_audit_console_works_on_a_phone(open_browser, people, export_worker):
    tab = open_browser("aurelio", mobile=True)
    found = _check(tab, {"audit-exports-phone": "/audit/exports/", "audit-checkpoints-phone": "/audit/checkpoints/"})
    assert found == {}, describe(found)
    # Nothing wider than the screen: tables and commands scroll in their own frame.
    for path in ("/audit/exports/", "/audit/checkpoints/"):
        tab.go(path)
        assert tab.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path


def test_the_token_page_is_accessible(open_browser, people):
    """Staff who manage tokens: the list, the issue form with errors, the secret shown once, the revocation."""
    staff = make_user("tomas", first_name="Tomas", last_name="(tokens)")
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_apitoken", "add_apitoken", "change_apitoken"])
    )
    device, _ = token_issue(
        kind="device", name="laptop-7", employee=people["nina"], device_id="laptop-7", actor=Actor.system("e2e")
    )
    tab = open_browser("tomas")
    found = _check(tab, {"tokens-list": "/tokens/", "tokens-revoke": f"/tokens/{device.pk}/revoke"})
    assert found == {}, describe(found)

    tab.go("/tokens/")
    tab.page.get_by_label("Device: the capture agent on one employee's computer").check()
    tab.page.get_by_role("button", name="Issue token").click()
    assert tab.page.get_by_role("alert").is_visible()
    tab.screenshot("tokens-issue-form-errors")
    violations = tab.axe_violations()
    assert violations == [], describe(violations)

    tab.page.get_by_label("Employee HR id").fill("E1001")
    tab.page.get_by_label("Device id").fill("laptop-8")
    tab.page.get_by_role("button", name="Issue token").click()
    secret = tab.page.get_by_label("Token for laptop-8")
    assert secret.input_value().startswith("cst_device_")
    # The secret has the focus, so a keyboard or screen reader user lands on it.
    assert tab.page.evaluate("document.activeElement.id") == "token-secret"
    tab.screenshot("tokens-issued")
    violations = tab.axe_violations()
    assert violations == [], describe(violations)
    # The form with errors answers 422, which the browser reports; nothing else may fail.
    assert [error for error in tab.console_errors if "422" not in error] == []


def test_the_check_itself_catches_an_unlabelled_field(open_browser, people):
    """Guard against a silent checker: a page with a bare input must fail it."""
    tab = open_browser()
    tab.page.set_content('<html lang="en"><body><main><input type="text"></main></body></html>')
    ids = {violation["id"] for violation in tab.axe_violations(impacts=("serious", "critical"))}
    assert "label" in ids
