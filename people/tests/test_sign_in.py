"""Sign-in: single sign-on through a real OpenID provider, lockout, and the TOTP second factor."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_employee, make_user
from people.models import Employee
from people.roles import Role
from people.services import employee_terminate
from people.tests.conftest import scim_user

pytestmark = pytest.mark.django_db
REDIRECT = "http://testserver/oidc/callback/"


# Single sign-on ------------------------------------------------------------------


@pytest.fixture
def oidc(iam_server, settings):
    """A client registered at a real OpenID provider (pytest-iam runs Canaille in a thread)."""
    client_id, secret = f"consentry-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    client = iam_server.models.Client(
        client_id=client_id,
        client_secret=secret,
        client_name="Consentry",
        redirect_uris=[REDIRECT],
        grant_types=["authorization_code"],
        response_types=["code"],
        token_endpoint_auth_method="client_secret_basic",
        scope=["openid", "email", "profile"],
        id_token_signed_response_alg="RS256",
    )
    iam_server.backend.save(client)
    discovery = requests.get(f"{iam_server.url}.well-known/openid-configuration", timeout=10).json()
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = client_id, secret
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = discovery["authorization_endpoint"]
    settings.OIDC_OP_TOKEN_ENDPOINT = discovery["token_endpoint"]
    settings.OIDC_OP_USER_ENDPOINT = discovery["userinfo_endpoint"]
    settings.OIDC_OP_JWKS_ENDPOINT = discovery["jwks_uri"]
    settings.OIDC_TOKEN_USE_BASIC_AUTH = True
    settings.CONSENTRY_OIDC_ENABLED = True
    settings.CONSENTRY_OIDC_EMPLOYEE_CLAIM = "email"
    settings.CONSENTRY_OIDC_EMPLOYEE_FIELD = "email"
    yield client
    iam_server.logout()


def _sso(iam_server, person, browser: Client):
    """Run the authorization-code flow: our redirect, the provider's answer, our callback."""
    iam_server.login(person)
    iam_server.consent(person)
    start = browser.get("/oidc/authenticate/", {"next": "/people/import/"})
    assert start.status_code == 302 and start["Location"].startswith(iam_server.url)
    assert "code_challenge" in parse_qs(urlparse(start["Location"]).query)
    answer = requests.get(start["Location"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    callback = urlparse(answer.headers["Location"])
    return browser.get(callback.path, parse_qs(callback.query))


def test_single_sign_on_signs_in_the_employee_the_provider_names(iam_server, oidc):
    employee = make_employee(hr_id="E4001", email="dana@example.com")
    person = iam_server.random_user(emails=["dana@example.com"])
    browser = Client()
    response = _sso(iam_server, person, browser)
    assert response.status_code == 302 and response["Location"] == "/people/import/"
    employee.refresh_from_db()
    assert employee.user is not None
    assert int(browser.session["_auth_user_id"]) == employee.user.pk
    assert not employee.user.has_usable_password()
    assert AuditEntry.objects.filter(event_type=EventType.EMPLOYEE_UPDATED, subject="E4001").exists()
    # The second sign-in reuses the linked account.
    again = Client()
    _sso(iam_server, person, again)
    assert int(again.session["_auth_user_id"]) == employee.user.pk


def test_single_sign_on_refuses_people_who_are_not_current_employees(iam_server, oidc):
    employee_terminate(employee=make_employee(email="gone@example.com"), actor=SYSTEM)
    for email in ("stranger@example.com", "gone@example.com"):
        browser = Client()
        response = _sso(iam_server, iam_server.random_user(emails=[email]), browser)
        assert response.status_code == 302 and "sso=failed" in response["Location"]
        assert "_auth_user_id" not in browser.session
    assert not Employee.objects.filter(user__isnull=False).exists()


def test_single_sign_on_signs_in_to_the_login_provisioning_made_and_a_termination_ends_that_session(
    iam_server, oidc, hr_client
):
    created = hr_client.post("/scim/v2/Users", scim_user("E4101"), format="json")
    employee = Employee.objects.get(pk=created.json()["id"])
    browser = Client()
    response = _sso(iam_server, iam_server.random_user(emails=["e4101@example.com"]), browser)
    assert response.status_code == 302 and response["Location"] == "/people/import/"
    assert employee.user is not None and int(browser.session["_auth_user_id"]) == employee.user.pk
    assert browser.get("/api/v1/me/consent").status_code == 200
    assert hr_client.delete(f"/scim/v2/Users/{employee.pk}").status_code == 204
    assert browser.get("/api/v1/me/consent").status_code in (401, 403)


def test_single_sign_on_links_a_local_account_of_that_name_but_never_an_administrators(iam_server, oidc):
    local = make_user("E4201")
    make_employee(hr_id="E4201", email="erin@example.com")
    browser = Client()
    _sso(iam_server, iam_server.random_user(emails=["erin@example.com"]), browser)
    assert int(browser.session["_auth_user_id"]) == local.pk
    get_user_model().objects.create_superuser("E4202", password="x")
    make_employee(hr_id="E4202", email="mallory@example.com")
    browser = Client()
    response = _sso(iam_server, iam_server.random_user(emails=["mallory@example.com"]), browser)
    assert "sso=failed" in response["Location"] and "_auth_user_id" not in browser.session
    assert Employee.objects.get(hr_id="E4202").user is None


def test_single_sign_on_is_off_until_configured(settings):
    settings.CONSENTRY_OIDC_ENABLED = False
    assert Client().get("/oidc/authenticate/").status_code == 404
    page = Client().get("/accounts/login/")
    assert page.status_code == 200 and b"company account" not in page.content


def test_the_sign_in_page_offers_single_sign_on_when_configured(settings):
    settings.CONSENTRY_OIDC_ENABLED = True
    assert b"Sign in with your company account" in Client().get("/accounts/login/").content


# Lockout -------------------------------------------------------------------------


def test_repeated_failed_sign_ins_lock_the_account_even_with_the_right_password(settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user("erin")
    browser = Client()
    for _ in range(3):
        response = browser.post("/accounts/login/", {"username": "erin", "password": "wrong"})
    assert response.status_code in (403, 429)
    locked = browser.post("/accounts/login/", {"username": "erin", "password": "pw-erin"})
    assert locked.status_code in (403, 429) and b"Too many failed sign-ins" in locked.content
    assert "_auth_user_id" not in browser.session
    # Another person is not locked out by erin's failures.
    make_user("fred")
    assert browser.post("/accounts/login/", {"username": "fred", "password": "pw-fred"}).status_code == 302


def test_admin_sign_in_is_protected_too(settings):
    settings.AXES_FAILURE_LIMIT = 2
    make_user("gina", is_staff=True)
    browser = Client()
    for _ in range(2):
        browser.post("/admin/login/", {"username": "gina", "password": "nope"})
    response = browser.post("/admin/login/", {"username": "gina", "password": "pw-gina"})
    assert response.status_code in (403, 429)


def test_a_good_password_before_the_limit_signs_in_and_resets_the_count(settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user("hugo")
    browser = Client()
    browser.post("/accounts/login/", {"username": "hugo", "password": "wrong"})
    browser.post("/accounts/login/", {"username": "hugo", "password": "wrong"})
    assert browser.post("/accounts/login/", {"username": "hugo", "password": "pw-hugo"}).status_code == 302


# Second factor -------------------------------------------------------------------


def _code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():06d}"


@pytest.mark.parametrize("role", [Role.LEGAL, Role.APPROVER, Role.AUDITOR])
def test_policy_and_audit_roles_enrol_an_authenticator_before_anything_else(role_user, role, settings):
    # Without django-otp's back-off, so the right code may follow a wrong one at once.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = role_user(role)
    browser = Client()
    browser.post("/accounts/login/", {"username": user.username, "password": f"pw-{user.username}"})
    response = browser.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/enrol/")
    page = browser.get(response["Location"])
    assert page.status_code == 200 and b"<svg" in page.content and b"otpauth://totp/" in page.content
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    wrong = browser.post("/accounts/2fa/enrol/", {"token": "000000", "next": "/admin/"})
    assert wrong.status_code == 422
    done = browser.post("/accounts/2fa/enrol/", {"token": _code(device), "next": "/admin/"})
    assert done.status_code == 302 and done["Location"] == "/admin/"
    assert AuditEntry.objects.filter(event_type=EventType.OTP_DEVICE_CONFIRMED).exists()
    assert "2fa" not in browser.get("/admin/").get("Location", "")


def test_wrong_codes_slow_down_further_tries(role_user):
    user = role_user(Role.LEGAL)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    browser = Client()
    browser.force_login(user)
    assert browser.post("/accounts/2fa/", {"token": "000000"}).status_code == 422
    # Even the right code is refused during the back-off that follows a failure.
    assert browser.post("/accounts/2fa/", {"token": _code(device)}).status_code == 422


def test_an_enrolled_person_verifies_in_each_new_session(role_user):
    user = role_user(Role.AUDITOR)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    browser = Client()
    browser.force_login(user)
    response = browser.get("/people/import/")
    assert response["Location"].startswith("/accounts/2fa/?")
    assert browser.post("/accounts/2fa/", {"token": "123456x"}).status_code == 422
    ok = browser.post("/accounts/2fa/", {"token": _code(device), "next": "https://evil.example/"})
    assert ok.status_code == 302 and ok["Location"] == "/"
    assert browser.get("/people/import/").status_code == 403  # verified, but not an HR administrator


def test_api_calls_in_an_unverified_session_are_refused_as_problems(role_user):
    browser = Client()
    browser.force_login(role_user(Role.LEGAL))
    response = browser.get("/api/v1/anything")
    assert response.status_code == 403 and response.json()["code"] == "second_factor_required"


def test_employees_and_hr_administrators_need_no_second_factor(role_user):
    for role in (Role.EMPLOYEE, Role.HR_ADMIN):
        browser = Client()
        browser.force_login(role_user(role))
        assert browser.get("/people/import/").status_code in (200, 403)


def test_the_enrol_command_prints_a_provisioning_uri_for_demo_staff(role_user, capsys):
    user = role_user(Role.LEGAL, "lena")
    call_command("enrol_totp", "lena")
    out = capsys.readouterr().out
    assert "otpauth://totp/" in out
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed
    browser = Client()
    browser.force_login(user)
    assert browser.post("/accounts/2fa/", {"token": _code(device)}).status_code == 302
