"""Provisioned employees' logins: created or linked by SCIM and CSV, renamed, disabled, and set-password links."""

from __future__ import annotations

import io
import json
import re
import threading
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_user
from consentry.errors import Conflict
from people.csv_import import import_csv
from people.models import Employee
from people.passwords import set_password_url
from people.roles import Role, has_role
from people.services import HRRecord, employee_apply_hr_record
from people.tests.conftest import bearer_client, patch_op, scim_user

if TYPE_CHECKING:
    from django.contrib.auth.models import User as AuthUser

pytestmark = pytest.mark.django_db
User = get_user_model()


def _login(employee: Employee) -> AuthUser:
    """The login of an employee these tests have just provisioned, so it exists."""
    assert employee.user is not None
    return employee.user


def _provision(hr_client, hr_id: str = "E3001", **extra) -> dict:
    response = hr_client.post("/scim/v2/Users", scim_user(hr_id, **extra), format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _user_token(username: str) -> str:
    out = io.StringIO()
    call_command("issue_token", "user", "--username", username, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_a_scim_provisioned_employee_gets_a_user_token_and_sees_their_consent(hr_client):
    body = _provision(hr_client, "E3001", userName="Carla.Reyes@example.com")
    raw = _user_token("Carla.Reyes@example.com")
    response = bearer_client(raw).get("/api/v1/me/consent")
    assert response.status_code == 200, response.content
    assert response.json()["employee"] == "E3001"
    employee = Employee.objects.get(pk=body["id"])
    login = _login(employee)
    assert login.get_username() == "Carla.Reyes@example.com"
    assert not login.has_usable_password()
    assert has_role(login, Role.EMPLOYEE)


def test_provisioning_links_an_existing_account_of_that_name(hr_client):
    existing = make_user("e3002@example.com")
    body = _provision(hr_client, "E3002")
    assert Employee.objects.get(pk=body["id"]).user == existing
    # A local account keeps its password: linking is not a reset.
    assert User.objects.get(pk=existing.pk).check_password("pw-e3002@example.com")


def test_an_account_linked_to_another_employee_or_an_administrator_is_never_taken(hr_client):
    _provision(hr_client, "E3003", userName="shared")
    Employee.objects.filter(hr_id="E3003").update(user_name="")  # the login stays "shared"
    response = hr_client.post("/scim/v2/Users", scim_user("E3004", userName="SHARED"), format="json")
    assert response.status_code == 409 and response.json()["scimType"] == "uniqueness"
    User.objects.create_superuser("root", password="x")
    response = hr_client.post("/scim/v2/Users", scim_user("E3005", userName="root"), format="json")
    assert response.status_code == 409 and response.json()["scimType"] == "uniqueness"
    assert not Employee.objects.filter(hr_id__in=["E3004", "E3005"]).exists()


def test_a_user_name_change_renames_the_login_and_refuses_a_clash(hr_client):
    body = _provision(hr_client, "E3006")
    operation = {"op": "replace", "path": "userName", "value": "carla@example.com"}
    response = hr_client.patch(f"/scim/v2/Users/{body['id']}", patch_op(operation), format="json")
    assert response.status_code == 200, response.content
    assert _login(Employee.objects.get(pk=body["id"])).get_username() == "carla@example.com"
    make_user("legal-carla")
    operation["value"] = "Legal-Carla"
    response = hr_client.patch(f"/scim/v2/Users/{body['id']}", patch_op(operation), format="json")
    assert response.status_code == 409 and response.json()["scimType"] == "uniqueness"
    employee = Employee.objects.get(pk=body["id"])
    assert employee.user_name == "carla@example.com" and _login(employee).get_username() == "carla@example.com"


@pytest.mark.parametrize("how", ["active_false", "delete"])
def test_termination_disables_the_login_its_sessions_and_its_tokens(hr_client, how):
    body = _provision(hr_client, "E3007")
    user = _login(Employee.objects.get(pk=body["id"]))
    session = APIClient()
    session.force_login(user)
    tokened = bearer_client(_user_token(user.get_username()))
    assert session.get("/api/v1/me/consent").status_code == 200
    assert tokened.get("/api/v1/me/consent").status_code == 200
    if how == "delete":
        assert hr_client.delete(f"/scim/v2/Users/{body['id']}").status_code == 204
    else:
        operation = {"op": "replace", "path": "active", "value": False}
        assert hr_client.patch(f"/scim/v2/Users/{body['id']}", patch_op(operation), format="json").status_code == 200
    assert not User.objects.get(pk=user.pk).is_active
    assert session.get("/api/v1/me/consent").status_code in (401, 403)
    assert tokened.get("/api/v1/me/consent").status_code == 401


def test_a_person_provisioned_as_inactive_gets_a_disabled_login(hr_client):
    body = _provision(hr_client, "E3008", active=False)
    user = _login(Employee.objects.get(pk=body["id"]))
    assert user.get_username() == "e3008@example.com" and not user.is_active
    with pytest.raises(CommandError, match="terminated"):
        call_command("set_password_link", "E3008", stdout=io.StringIO())
    with pytest.raises(CommandError, match="active logins"):
        _user_token("e3008@example.com")


def test_a_csv_import_creates_renames_and_disables_logins_like_scim():
    header = "hr_id,user_name,country,region,status,email\n"
    outcome = import_csv(
        content=(header + "E3101,ana,US,NY,active,ana@example.com\nE3102,,DE,,on_leave,\n").encode(),
        source="hr.csv",
        actor=SYSTEM,
    )
    assert outcome.ok, outcome.errors
    ana, ben = Employee.objects.get(hr_id="E3101"), Employee.objects.get(hr_id="E3102")
    assert _login(ana).get_username() == "ana" and _login(ana).is_active
    # No user name from HR: the HR id is the login, as single sign-on would name it.
    assert _login(ben).get_username() == "E3102" and _login(ben).is_active
    outcome = import_csv(
        content=(header + "E3101,ana.b,US,NY,terminated,\nE3102,ben,DE,,active,\n").encode(),
        source="hr2.csv",
        actor=SYSTEM,
    )
    assert outcome.ok, outcome.errors
    _login(ana).refresh_from_db()
    _login(ben).refresh_from_db()
    assert _login(ana).get_username() == "ana.b" and not _login(ana).is_active
    assert _login(ben).get_username() == "ben" and _login(ben).is_active


def test_a_csv_row_whose_login_belongs_to_an_administrator_is_reported_and_nothing_is_imported():
    User.objects.create_superuser("boss", password="x")
    content = b"hr_id,user_name,country\nE3201,ann,US\nE3202,boss,US\n"
    outcome = import_csv(content=content, source="hr.csv", actor=SYSTEM)
    assert [(e.row, e.column) for e in outcome.errors] == [(3, "user_name")]
    assert not Employee.objects.filter(hr_id__startswith="E32").exists()
    assert not User.objects.filter(username="ann").exists()


# Set-password links --------------------------------------------------------------------------


def test_the_command_mails_a_set_password_link_that_sets_a_password_once(hr_client, client):
    _provision(hr_client, "E3301", userName="dora")
    out = io.StringIO()
    call_command("set_password_link", "dora", stdout=out, stderr=io.StringIO())
    url = out.getvalue().strip().splitlines()[-1]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["e3301@example.com"]
    assert url in mail.outbox[0].body
    # Whoever holds the link can act as the employee: its issue is on the ledger, the link itself is not.
    entry = AuditEntry.objects.get(event_type=EventType.SET_PASSWORD_LINK_ISSUED)
    assert entry.subject == "E3301" and entry.actor == "system:set_password_link"
    assert entry.payload == {"login": "dora", "emailed": True}
    assert url.rsplit("/", 2)[-2] not in json.dumps(entry.payload)
    path = re.sub(r"^https?://[^/]+", "", url)
    # Django's confirmation view moves the token into the session and redirects to a token-less URL.
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200 and b"Set your password" in form_page.content
    form_url = form_page.redirect_chain[-1][0]
    response = client.post(form_url, {"new_password1": "a-Long-passphrase-42", "new_password2": "a-Long-passphrase-42"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    user = User.objects.get(username="dora")
    assert user.check_password("a-Long-passphrase-42")
    # Used once: the token hashed the old (unusable) password.
    again = APIClient().get(path, follow=True)
    assert b"not valid any more" in again.content


def test_a_terminated_employees_link_is_refused(hr_client, client):
    body = _provision(hr_client, "E3302")
    employee = Employee.objects.get(pk=body["id"])
    url = set_password_url(employee.user)
    hr_client.delete(f"/scim/v2/Users/{body['id']}")
    with pytest.raises(CommandError, match="terminated"):
        call_command("set_password_link", _login(employee).get_username(), stdout=io.StringIO())
    page = client.get(re.sub(r"^https?://[^/]+", "", url), follow=True)
    assert b"not valid any more" in page.content


def test_the_command_only_prints_with_no_email_and_refuses_unknown_logins(hr_client):
    _provision(hr_client, "E3303")
    out = io.StringIO()
    call_command("set_password_link", "E3303", "--no-email", stdout=out)
    assert "/people/set-password/" in out.getvalue() and not mail.outbox
    with pytest.raises(CommandError, match="No employee"):
        call_command("set_password_link", "nobody", stdout=io.StringIO())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_provisioning_of_one_person_makes_one_employee_and_one_login():
    record = HRRecord(hr_id="E3401", country="US", subdivision="US-NY", user_name="Eve@example.com")
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def worker() -> None:
        try:
            start.wait()
            employee_apply_hr_record(hr_record=record, actor=SYSTEM)
            outcomes.append("created")
        except Conflict:
            outcomes.append("conflict")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    close_old_connections()
    assert sorted(outcomes) == ["conflict"] * 5 + ["created"]
    assert User.objects.filter(username__iexact="eve@example.com").count() == 1
    assert _login(Employee.objects.get(hr_id="E3401")).get_username() == "Eve@example.com"


def test_provision_logins_gives_earlier_employees_a_login_and_reports_clashes():
    # Employees provisioned before logins were: no account yet.
    ana = Employee.objects.create(hr_id="E3501", user_name="ana.old", country="US", subdivision="US-NY")
    bob = Employee.objects.create(hr_id="E3502", user_name="taken", country="US", subdivision="US-NY")
    make_user("taken", is_staff=True)
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError, match="got no login"):
        call_command("provision_logins", stdout=out, stderr=err)

    ana.refresh_from_db()
    bob.refresh_from_db()
    assert _login(ana).get_username() == "ana.old" and not _login(ana).has_usable_password()
    assert bob.user is None and "E3502" in err.getvalue()
    assert "1 logins created or linked, 1 refused." in out.getvalue()
    # Run again: nothing new for Ana, still nothing for Bob.
    with pytest.raises(CommandError):
        call_command("provision_logins", stdout=io.StringIO(), stderr=io.StringIO())
    assert User.objects.filter(username__iexact="ana.old").count() == 1
