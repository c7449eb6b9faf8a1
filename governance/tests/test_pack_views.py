"""Policy packs in the legal console: export the approved policy, check or load an upload."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from guardian.shortcuts import assign_perm

from audit.models import AuditEntry, EventType
from conftest import make_user
from consentry.tests.roles import make_approver, make_legal, sign_in
from governance.models import JurisdictionRule, Region
from governance.packs import DEFAULT_PACK_PATH, check_pack, parse_pack

pytestmark = pytest.mark.django_db


def _upload(content: bytes, name: str = "pack.yaml") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/yaml")


@pytest.fixture
def pack_admin(db):
    """Legal who may draft and approve everywhere: the only kind allowed to load packs."""
    user = make_approver(make_legal(make_user("paula")))
    assign_perm("governance.manage_region_policy", user)
    return user


def test_the_pack_pages_are_for_the_legal_console_only(client, small_policy, ny_employee, us_legal):
    for url in (reverse("legal:packs"), reverse("legal:pack_export") + "?name=x&version=1"):
        assert client.get(url).status_code == 302
        sign_in(client, ny_employee.user)
        assert client.get(url).status_code == 403
        sign_in(client, us_legal)
        assert client.get(url).status_code == 200
        client.logout()


def test_the_export_is_a_pack_file_that_checks_clean_against_the_same_policy(client, small_policy, us_legal):
    sign_in(client, us_legal)
    response = client.get(reverse("legal:pack_export"), {"name": "acme-policy", "version": "2026.11.2"})
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="acme-policy-2026.11.2.yaml"'
    source = parse_pack(response.content, filename="export.yaml")
    assert source.data["name"] == "acme-policy" and source.data["version"] == "2026.11.2"
    assert check_pack(source) == []
    assert {rule["region"] for rule in source.data["rules"]} == {"US", "US-NY", "EU"}


@pytest.mark.parametrize(
    "params", [{}, {"name": "Bad Name!", "version": "1"}, {"name": "ok", "version": "../../etc"}, {"name": "x" * 90}]
)
def test_a_bad_export_name_or_version_says_what_to_fix(client, small_policy, us_legal, params):
    sign_in(client, us_legal)
    response = client.get(reverse("legal:pack_export"), params)
    assert response.status_code == 400
    assert "Please fix the following and try again." in response.content.decode()


def test_checking_a_pack_lists_every_problem_with_its_line(client, small_policy, us_legal):
    sign_in(client, us_legal)
    content = DEFAULT_PACK_PATH.read_bytes().replace(
        b"{code: US-NY, kind: subdivision}", b"{code: US-XX, kind: subdivision}"
    )
    response = client.post(reverse("legal:packs"), {"pack": _upload(content, "mine.yaml"), "load": "0"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "mine.yaml:" in html and "problem" in html and "US-XX" in html
    assert '<td class="num">36</td>' in html or '<td class="num">' in html


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"rules: [unclosed", "YAML syntax error"),
        (b"", "The submitted file is empty"),
        (b"key: \x80\x81", "YAML syntax error"),
        (b"\xff\xfe\x00garbage", "is not a mapping of keys to values"),
        (b"a: &x 1\nb: *x\n", "aliases (*name) are not allowed"),
        (b"[" * 5000 + b"]" * 5000, "nests too deeply"),
        (b"just a string", "problem"),
    ],
)
def test_a_broken_upload_is_explained_never_a_crash(client, small_policy, us_legal, content, message):
    sign_in(client, us_legal)
    response = client.post(reverse("legal:packs"), {"pack": _upload(content), "load": "0"})
    assert response.status_code == 200
    assert message in response.content.decode()


def test_an_oversized_or_missing_file_is_refused_with_what_to_fix(client, small_policy, us_legal):
    sign_in(client, us_legal)
    big = client.post(reverse("legal:packs"), {"pack": _upload(b"#" * (1024 * 1024 + 1)), "load": "0"})
    assert "larger than 1 MB" in big.content.decode()
    missing = client.post(reverse("legal:packs"), {"load": "0"})
    assert "This field is required" in missing.content.decode()


def test_legal_without_rights_in_every_region_can_check_but_not_load(client, small_policy, us_legal):
    sign_in(client, us_legal)
    page = client.get(reverse("legal:packs")).content.decode()
    assert "Check it and load it" not in page
    before = JurisdictionRule.objects.count()
    response = client.post(reverse("legal:packs"), {"pack": _upload(DEFAULT_PACK_PATH.read_bytes()), "load": "1"})
    assert "Select a valid choice" in response.content.decode()
    assert JurisdictionRule.objects.count() == before


def test_loading_a_pack_applies_it_and_records_who_imported_it(client, pack_admin):
    sign_in(client, pack_admin)
    response = client.post(
        reverse("legal:packs"), {"pack": _upload(DEFAULT_PACK_PATH.read_bytes(), "default.yaml"), "load": "1"}
    )
    html = response.content.decode()
    assert "Policy pack consentry-default" in html and "loaded:" in html
    assert Region.objects.filter(code="CA-ON").exists()
    entry = AuditEntry.objects.get(event_type=EventType.POLICY_PACK_IMPORTED)
    assert entry.actor == "user:paula" and entry.payload["filename"] == "default.yaml"
    again = client.post(reverse("legal:packs"), {"pack": _upload(DEFAULT_PACK_PATH.read_bytes()), "load": "1"})
    assert "already up to date" in again.content.decode()
    assert AuditEntry.objects.filter(event_type=EventType.POLICY_PACK_IMPORTED).count() == 1
