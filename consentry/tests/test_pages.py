"""Sign-in, the start page and what every page sends: security headers, error pages."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from conftest import make_user
from consentry.tests.roles import make_auditor, make_legal, sign_in

pytestmark = pytest.mark.django_db


def test_the_sign_in_page_has_labelled_fields_and_a_csrf_token(client):
    html = client.get(reverse("login")).content.decode()
    assert '<label for="id_username">' in html and '<label for="id_password">' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_signing_in_without_the_csrf_token_is_refused(db):
    make_user("nina")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("login"), {"username": "nina", "password": "pw-nina"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


def test_a_wrong_password_says_so_without_revealing_which_part_was_wrong(client):
    make_user("nina")
    response = client.post(reverse("login"), {"username": "nina", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("who", "lands_on"), [("employee", "portal:home"), ("legal", "legal:regions"), ("auditor", "audit:entries")]
)
def test_after_sign_in_each_person_lands_in_their_own_console(client, small_policy, ny_employee, who, lands_on):
    user = {
        "employee": ny_employee.user,
        "legal": make_legal(make_user("lena"), small_policy["regions"]["US"]),
        "auditor": make_auditor(make_user("aurelio")),
    }[who]
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.post(reverse("login"), {"username": user.username, "password": f"pw-{user.username}"})
    response = client.get(reverse("home"))
    if who != "employee":
        # Legal and auditors prove a second factor first, then go on to their console.
        assert response["Location"] == reverse("otp-verify") + "?next=%2F"
        code = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token()
        client.post(reverse("otp-verify"), {"token": f"{code:06d}", "next": "/"})
        response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"] == reverse(lands_on)


def test_an_account_with_no_role_is_told_there_is_nothing_to_show(client):
    sign_in(client, make_user("nobody"))
    response = client.get(reverse("home"))
    assert response.status_code == 200 and "There is nothing here for your account yet" in response.content.decode()


def test_sign_out_is_a_post_and_ends_the_session(client, ny_employee):
    sign_in(client, ny_employee.user)
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("portal:home")).status_code == 302


def test_every_page_carries_a_strict_content_security_policy_and_the_usual_headers(client, ny_employee):
    sign_in(client, ny_employee.user)
    for url in (reverse("login"), reverse("portal:home"), "/no/such/page"):
        response = client.get(url)
        csp = response["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp and "unsafe-inline" not in csp
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"


def test_pages_use_no_inline_script_or_style(client, small_policy, ny_employee):
    sign_in(client, ny_employee.user)
    html = client.get(reverse("portal:home")).content.decode()
    assert "<script>" not in html and "<style" not in html and " style=" not in html and " onclick=" not in html


def test_a_missing_page_renders_the_friendly_404(client, ny_employee):
    sign_in(client, ny_employee.user)
    response = client.get("/portal/does-not-exist")
    assert response.status_code == 404 and "This page does not exist" in response.content.decode()


def test_the_api_docs_load_swagger_from_our_own_origin_without_inline_script(client, ny_employee):
    sign_in(client, ny_employee.user)
    response = client.get("/api/docs/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "cdn.jsdelivr.net" not in html and "<script>" not in html and "<style>" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
