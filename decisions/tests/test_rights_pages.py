"""The "Your data rights" portal pages: permission matrix, asking, confirming erasure, downloading."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from audit.actors import Actor
from conftest import make_employee, make_user
from consentry.tests.roles import make_auditor, make_legal, sign_in
from decisions.models import RightsKind, RightsRequest, RightsStatus
from decisions.rights import rights_access_build, rights_erasure_carry_out, rights_request_access
from decisions.tests.conftest import grant_consent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def nina(policy):
    return make_employee(country="US", subdivision="US-NY", user=make_user("nina"), display_name="Nina")


@pytest.fixture
def dieter(policy):
    return make_employee(country="DE", subdivision="DE-BE", user=make_user("dieter"), display_name="Dieter")


def ready_copy(employee) -> RightsRequest:
    rights, _ = rights_request_access(employee=employee, user=employee.user, actor=Actor.for_user(employee.user))
    return rights_access_build(request_id=rights.id)


def pages(rights: RightsRequest) -> list[str]:
    return [
        reverse("portal:rights"),
        reverse("portal:rights_erasure"),
        reverse("portal:rights_detail", kwargs={"pk": rights.pk}),
        reverse("portal:rights_download", kwargs={"pk": rights.pk}),
    ]


def test_anonymous_visitors_are_sent_to_sign_in(client, nina):
    for url in pages(ready_copy(nina)):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    assert client.post(reverse("portal:rights_access")).status_code == 302
    assert RightsRequest.objects.count() == 1


def test_people_without_an_employee_record_are_refused(client, policy, nina):
    rights = ready_copy(nina)
    for user in (make_user("outsider"), make_auditor(make_user("aurelio")), make_legal(make_user("lena"))):
        sign_in(client, user)
        for url in pages(rights):
            assert client.get(url).status_code == 403, (user, url)
        assert client.post(reverse("portal:rights_access")).status_code == 403
    assert RightsRequest.objects.count() == 1


def test_another_employees_request_is_not_found(client, nina, dieter):
    rights = ready_copy(dieter)
    sign_in(client, nina.user)
    for url in pages(rights)[2:]:
        assert client.get(url).status_code == 404, url


def test_the_page_is_in_the_portal_navigation_and_lists_the_callers_requests(client, nina, dieter):
    ready_copy(dieter)
    mine = ready_copy(nina)
    sign_in(client, nina.user)
    home = client.get(reverse("portal:home")).content.decode()
    assert f'href="{reverse("portal:rights")}"' in home and "Your data rights" in home
    response = client.get(reverse("portal:rights"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'aria-current="page">Your data rights' in html
    assert [card["request"].pk for card in response.context["cards"]] == [mine.pk]
    assert reverse("portal:rights_download", kwargs={"pk": mine.pk}) in html
    assert "Your copy is ready to download." in html
    # Live updates come from our own script; no inline script or style.
    assert "/static/consentry/rights.js" in html
    assert "<script>" not in html and " style=" not in html and "<style" not in html


def test_asking_for_a_copy_from_the_page_records_one_request_and_shows_it_polling(client, nina):
    sign_in(client, nina.user)
    response = client.post(reverse("portal:rights_access"), follow=True)
    assert "We are preparing a copy of your data." in response.content.decode()
    rights = RightsRequest.objects.get(employee=nina)
    assert rights.kind == RightsKind.ACCESS and rights.status == RightsStatus.RECEIVED
    html = response.content.decode()
    assert f'data-poll-url="{reverse("me-rights-request", kwargs={"pk": rights.pk})}"' in html
    assert '<progress id="rq-' in html and 'max="100"' in html
    again = client.post(reverse("portal:rights_access"), follow=True)
    assert "already being prepared" in again.content.decode()
    assert RightsRequest.objects.filter(employee=nina).count() == 1


def test_asking_needs_a_post_with_a_csrf_token(nina):
    strict = Client(enforce_csrf_checks=True)
    sign_in(strict, nina.user)
    assert strict.get(reverse("portal:rights_access")).status_code == 405
    assert strict.post(reverse("portal:rights_access")).status_code == 403
    assert strict.post(reverse("portal:rights_erasure"), {"understood": "on"}).status_code == 403
    assert not RightsRequest.objects.exists()


def test_erasure_asks_for_confirmation_and_explains_the_consequences_first(client, nina):
    sign_in(client, nina.user)
    page = client.get(reverse("portal:rights_erasure"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Erase your data?" in html and "cannot be undone" in html
    assert "Nothing more is captured about you." in html and "What is kept, and why" in html
    assert '<label for="id_understood"' in html
    refused = client.post(reverse("portal:rights_erasure"), {})
    assert refused.status_code == 200 and 'role="alert"' in refused.content.decode()
    assert not RightsRequest.objects.exists()


def test_confirmed_erasure_is_recorded_and_its_page_says_what_is_deleted_and_kept(client, nina):
    grant_consent(nina, "keystrokes")
    sign_in(client, nina.user)
    response = client.post(reverse("portal:rights_erasure"), {"understood": "on"}, follow=True)
    rights = RightsRequest.objects.get(employee=nina, kind=RightsKind.ERASURE)
    assert response.redirect_chain[-1][0] == reverse("portal:rights_detail", kwargs={"pk": rights.pk})
    html = response.content.decode()
    assert "Your erasure request is recorded." in html and "being deleted now" in html
    rights_erasure_carry_out(request_id=rights.id)
    html = client.get(reverse("portal:rights_detail", kwargs={"pk": rights.pk})).content.decode()
    assert "Your data was erased" in html
    assert "What is deleted" in html and "Encryption keys for your recorded activity" in html
    assert "What is kept, and why" in html and "GDPR Art. 7(1)" in html and "append-only" in html
    # While it was pending the rights page offered no second erasure; afterwards it may be asked again.
    assert "Request erasure" in client.get(reverse("portal:rights")).content.decode()


def test_the_download_is_the_owners_zip_and_is_never_cached(client, nina):
    rights = ready_copy(nina)
    sign_in(client, nina.user)
    response = client.get(reverse("portal:rights_download", kwargs={"pk": rights.pk}))
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "index.html" in archive.namelist() and "data.json" in archive.namelist()


def test_a_copy_not_ready_sends_the_employee_back_with_a_message(client, nina):
    rights, _ = rights_request_access(employee=nina, user=nina.user, actor=Actor.for_user(nina.user))
    sign_in(client, nina.user)
    response = client.get(reverse("portal:rights_download", kwargs={"pk": rights.pk}), follow=True)
    assert "The copy is not ready" in response.content.decode()
