"""The staff token page: who may list, issue and revoke, the secret shown once, and bad input explained."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_employee, make_user
from consentry.tests.roles import grant_role, make_auditor, make_legal, sign_in
from people.models import ApiToken, TokenKind
from people.roles import Role
from people.services import employee_terminate
from people.tokens import token_issue, token_resolve, token_revoke

pytestmark = pytest.mark.django_db
PAGE = "/tokens/"
PURPOSE = "ai_agent_training"


def with_perms(user, *codenames: str):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def browser_for(user) -> Client:
    client = Client()
    sign_in(client, user)
    return client


@pytest.fixture
def admin(small_policy):
    """Staff who manage machine access: see, issue and revoke tokens (not HR tokens: no employee rights)."""
    return with_perms(make_user("tokenadmin"), "view_apitoken", "add_apitoken", "change_apitoken")


@pytest.fixture
def viewer(small_policy):
    """Staff who may see tokens, but neither issue nor revoke other people's."""
    return with_perms(make_user("viewer"), "view_apitoken")


@pytest.fixture
def device_token(ny_employee):
    token, _ = token_issue(kind="device", name="laptop-7", employee=ny_employee, device_id="laptop-7", actor=SYSTEM)
    return token


def revoke_url(token: ApiToken) -> str:
    return reverse("tokens:revoke", args=[token.pk])


# Who may open the page ---------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client, device_token):
    for response in (client.get(PAGE), client.post(PAGE, {"kind": "hr"}), client.post(revoke_url(device_token))):
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    device_token.refresh_from_db()
    assert device_token.revoked_at is None and ApiToken.objects.count() == 1


@pytest.mark.parametrize("who", ["employee", "legal", "auditor", "outsider", "hr_admin"])
def test_people_without_token_permissions_get_403_on_every_page(small_policy, ny_employee, device_token, who):
    user = {
        "employee": ny_employee.user,
        "legal": make_legal(make_user("lena"), small_policy["regions"]["US"]),
        "auditor": make_auditor(make_user("aurelio")),
        "outsider": make_user("outsider"),
        "hr_admin": make_user("hana"),
    }[who]
    if who == "hr_admin":
        grant_role(user, Role.HR_ADMIN)
    client = browser_for(user)
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"kind": "pipeline", "purposes": [PURPOSE], "days": 30}).status_code == 403
    assert client.get(revoke_url(device_token)).status_code == 403
    assert client.post(revoke_url(device_token)).status_code == 403
    device_token.refresh_from_db()
    assert device_token.revoked_at is None and ApiToken.objects.count() == 1
    assert "API tokens" not in client.get(reverse("home"), follow=True).content.decode()


def test_staff_see_every_token_with_whom_it_speaks_for_but_never_a_secret(admin, ny_employee):
    _, device_raw = token_issue(
        kind="device", name="laptop-7", employee=ny_employee, device_id="laptop-7", actor=SYSTEM
    )
    _, pipeline_raw = token_issue(kind="pipeline", name="trainer", purposes=[PURPOSE], actor=SYSTEM)
    revoked, _ = token_issue(kind="hr", name="workday", actor=SYSTEM)
    token_revoke(token=revoked, actor=SYSTEM)

    response = browser_for(admin).get(PAGE)

    html = response.content.decode()
    assert response.status_code == 200
    assert "3 tokens" in html and "Nina (New York)" in html and ny_employee.hr_id in html
    assert "laptop-7" in html and "trainer" in html and f"purposes: {PURPOSE}" in html and "Revoked" in html
    assert device_raw not in html and pipeline_raw not in html
    assert 'href="/tokens/"' in html and 'aria-current="page"' in html, "the console navigation links the page"


def test_the_list_filters_by_kind_status_and_search(admin, ny_employee, device_token):
    token_issue(kind="pipeline", name="trainer", purposes=[PURPOSE], actor=SYSTEM)
    client = browser_for(admin)
    assert "1 token<" in client.get(PAGE, {"kind": "pipeline"}).content.decode()
    assert "0 tokens" in client.get(PAGE, {"state": "revoked"}).content.decode()
    found = client.get(PAGE, {"q": ny_employee.hr_id}).content.decode()
    assert "1 token<" in found and "laptop-7" in found and "trainer" not in found
    assert "0 tokens" in client.get(PAGE, {"kind": "nonsense"}).content.decode()


# Issuing -----------------------------------------------------------------------------------


def test_issuing_a_device_token_shows_the_secret_once_and_records_who_issued_it(admin, ny_employee):
    client = browser_for(admin)
    response = client.post(
        PAGE, {"kind": "device", "employee": ny_employee.hr_id, "device_id": "laptop-9", "name": "", "days": 30}
    )

    assert response.status_code == 200
    token = ApiToken.objects.get()
    raw = response.context["raw"]
    assert token_resolve(raw) == token and token.employee == ny_employee and token.device_id == "laptop-9"
    html = response.content.decode()
    assert raw in html and "only time the token is shown" in html and 'role="alert"' in html
    assert 'id="token-secret"' in html and "autofocus" in html and "--device-id laptop-9" in html
    assert "no-store" in response["Cache-Control"]
    entry = AuditEntry.objects.get(event_type=EventType.TOKEN_ISSUED)
    assert entry.actor == "user:tokenadmin" and entry.subject == ny_employee.hr_id
    # Never again: the list names it by its prefix only.
    listed = client.get(PAGE).content.decode()
    assert raw not in listed and token.prefix in listed


def test_issuing_a_pipeline_token_offers_only_purposes_that_may_be_used(admin):
    client = browser_for(admin)
    page = client.get(PAGE).content.decode()
    assert 'value="ai_agent_training"' in page and 'value="performance_evaluation"' not in page

    refused = client.post(PAGE, {"kind": "pipeline", "purposes": ["performance_evaluation"], "days": 30})
    assert refused.status_code == 422 and not ApiToken.objects.exists()

    issued = client.post(PAGE, {"kind": "pipeline", "name": "trainer", "purposes": [PURPOSE], "days": 30})
    assert issued.status_code == 200
    assert ApiToken.objects.get().purposes == [PURPOSE]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "device", "device_id": "laptop-9", "days": 30}, "employee", "needs the HR id"),
        ({"kind": "device", "employee": "E-none", "device_id": "x", "days": 30}, "employee", "No employee has"),
        ({"kind": "device", "employee": "NY", "days": 30}, "device_id", "needs the device id"),
        ({"kind": "pipeline", "days": 30}, "purposes", "at least one purpose"),
        ({"kind": "pipeline", "purposes": [PURPOSE], "days": 400}, "days", "less than or equal to 366"),
        ({"kind": "pipeline", "purposes": [PURPOSE], "days": 0}, "days", "greater than or equal to 1"),
        ({"kind": "dragon", "days": 30}, "kind", "Select a valid choice"),
    ],
)
def test_bad_input_is_explained_next_to_its_field_and_issues_nothing(admin, ny_employee, data, field, message):
    if data.get("employee") == "NY":
        data = {**data, "employee": ny_employee.hr_id}
    response = browser_for(admin).post(PAGE, data)
    assert response.status_code == 422
    form = response.context["form"]
    assert message in " ".join(form.errors[field])
    assert 'role="alert"' in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_device_token_is_refused_for_an_employee_who_left(admin, ny_employee):
    employee_terminate(employee=ny_employee, actor=SYSTEM)
    response = browser_for(admin).post(
        PAGE, {"kind": "device", "employee": ny_employee.hr_id, "device_id": "laptop-9", "days": 30}
    )
    assert response.status_code == 422
    assert "not active" in " ".join(response.context["form"].errors["employee"])
    assert not ApiToken.objects.exists()


def test_a_user_token_always_acts_as_the_person_who_issues_it(admin, ny_employee):
    response = browser_for(admin).post(PAGE, {"kind": "user", "user": ny_employee.user.pk, "days": 30})
    assert response.status_code == 200
    token = ApiToken.objects.get()
    assert token.kind == TokenKind.USER and token.user == admin


def test_hr_tokens_are_offered_only_to_those_who_may_provision_employees(admin):
    client = browser_for(admin)
    assert 'name="kind" value="hr"' not in client.get(PAGE).content.decode()
    assert client.post(PAGE, {"kind": "hr", "name": "workday", "days": 30}).status_code == 422
    assert not ApiToken.objects.exists()

    with_perms(admin, "add_employee", "change_employee")
    # Permissions are cached on the user object: read the person afresh.
    client = browser_for(get_user_model().objects.get(pk=admin.pk))
    assert 'name="kind" value="hr"' in client.get(PAGE).content.decode()
    assert client.post(PAGE, {"kind": "hr", "name": "workday", "days": 30}).status_code == 200
    assert ApiToken.objects.get().kind == TokenKind.HR


def test_staff_who_may_only_view_get_no_issue_form_and_403_when_they_post(viewer):
    client = browser_for(viewer)
    page = client.get(PAGE).content.decode()
    assert "may see tokens but not issue them" in page and 'name="kind" value=' not in page
    assert client.post(PAGE, {"kind": "pipeline", "purposes": [PURPOSE], "days": 30}).status_code == 403
    assert not ApiToken.objects.exists()


def test_issuing_without_the_csrf_token_is_refused(admin):
    strict = Client(enforce_csrf_checks=True)
    sign_in(strict, admin)
    response = strict.post(PAGE, {"kind": "pipeline", "purposes": [PURPOSE], "days": 30})
    assert response.status_code == 403 and not ApiToken.objects.exists()


# Revoking ----------------------------------------------------------------------------------


def test_revoking_asks_first_then_revokes_once_with_one_audit_entry(admin, device_token):
    client = browser_for(admin)
    confirm = client.get(revoke_url(device_token)).content.decode()
    assert "Revoke laptop-7?" in confirm and "stops capturing" in confirm and "csrfmiddlewaretoken" in confirm
    device_token.refresh_from_db()
    assert device_token.revoked_at is None, "opening the confirmation changes nothing"

    done = client.post(revoke_url(device_token), follow=True)
    again = client.post(revoke_url(device_token), follow=True)

    device_token.refresh_from_db()
    assert device_token.revoked_at is not None
    assert "Revoked laptop-7" in done.content.decode() and "already revoked" in again.content.decode()
    revocations = AuditEntry.objects.filter(event_type=EventType.TOKEN_REVOKED, object_id=str(device_token.pk))
    assert [entry.actor for entry in revocations] == ["user:tokenadmin"]


def test_staff_who_may_only_view_cannot_revoke_someone_elses_token(viewer, device_token):
    client = browser_for(viewer)
    assert 'href="/tokens/' not in client.get(PAGE).content.decode().split("<tbody>")[1]
    assert client.get(revoke_url(device_token)).status_code == 403
    assert client.post(revoke_url(device_token)).status_code == 403
    device_token.refresh_from_db()
    assert device_token.revoked_at is None
    assert not AuditEntry.objects.filter(event_type=EventType.TOKEN_REVOKED).exists()


def test_staff_who_may_only_view_may_still_revoke_a_token_that_acts_as_them(viewer):
    own, raw = token_issue(kind="user", name="cli", user=viewer, actor=SYSTEM)
    response = browser_for(viewer).post(revoke_url(own))
    assert response.status_code == 302
    assert token_resolve(raw) is None


def test_an_unknown_token_answers_404(admin):
    assert browser_for(admin).post(reverse("tokens:revoke", args=[999999])).status_code == 404


def test_revoking_without_the_csrf_token_is_refused(admin, device_token):
    strict = Client(enforce_csrf_checks=True)
    sign_in(strict, admin)
    assert strict.post(revoke_url(device_token)).status_code == 403
    device_token.refresh_from_db()
    assert device_token.revoked_at is None


def test_a_long_token_list_is_paged(admin, settings):
    settings.CONSENTRY_PAGE_SIZE = 5
    employee = make_employee(country="US", subdivision="US-NY")
    for number in range(7):
        token_issue(kind="device", name=f"dev-{number}", employee=employee, device_id=f"dev-{number}", actor=SYSTEM)
    html = browser_for(admin).get(PAGE).content.decode()
    assert "7 tokens" in html and "Page 1 of 2" in html and html.count("/revoke") == 5
