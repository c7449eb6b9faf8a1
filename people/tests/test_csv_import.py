from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_employee
from people.csv_import import import_csv, parse_csv
from people.models import Employee, EmployeeStatus
from people.roles import Role
from people.services import employee_terminate
from people.tests.conftest import verified_login

pytestmark = pytest.mark.django_db

HEADER = ["hr_id", "user_name", "display_name", "email", "country", "region", "entity", "site", "department", "status"]


def _csv(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def _row(n: int, country: str = "US", region: str = "CA", status: str = "active") -> list[str]:
    return [f"E{n}", f"user{n}", f"Person {n}", f"p{n}@example.com", country, region, "Corp", "HQ", "R&D", status]


def test_a_thousand_rows_with_one_bad_import_nothing_and_name_that_row():
    rows = [_row(n) for n in range(1, 1001)]
    rows[736] = _row(737, country="XX")
    outcome = import_csv(content=_csv(rows), source="hr.csv", actor=SYSTEM)
    assert not outcome.ok
    assert [(e.row, e.column) for e in outcome.errors] == [(738, "country")]
    assert "XX" in outcome.errors[0].message
    assert not Employee.objects.exists() and not AuditEntry.objects.exists()


def test_a_valid_file_is_imported_atomically_and_audited_once_as_a_whole():
    outcome = import_csv(
        content=_csv([_row(1), _row(2, "DE", "BE"), _row(3, "US", "US-NY")]), source="a.csv", actor=SYSTEM
    )
    assert outcome.summary is not None and outcome.summary.created == 3
    assert Employee.objects.get(hr_id="E2").subdivision == "DE-BE"
    assert Employee.objects.get(hr_id="E3").subdivision == "US-NY"
    summary = AuditEntry.objects.get(event_type=EventType.EMPLOYEES_IMPORTED)
    assert summary.payload["rows"] == 3 and summary.payload["created"] == 3 and len(summary.payload["sha256"]) == 64
    assert AuditEntry.objects.filter(event_type=EventType.EMPLOYEE_PROVISIONED).count() == 3


def test_reimporting_updates_transfers_and_terminates_existing_employees():
    import_csv(content=_csv([_row(1), _row(2)]), source="a.csv", actor=SYSTEM)
    outcome = import_csv(content=_csv([_row(1, "FR", ""), _row(2, status="terminated")]), source="b.csv", actor=SYSTEM)
    assert outcome.summary is not None and outcome.summary.updated == 2
    assert Employee.objects.get(hr_id="E1").region_code == "FR"
    assert Employee.objects.get(hr_id="E2").status == EmployeeStatus.TERMINATED
    assert AuditEntry.objects.filter(event_type=EventType.EMPLOYEE_TRANSFERRED).count() == 1
    again = import_csv(content=_csv([_row(1, "FR", "")]), source="c.csv", actor=SYSTEM)
    assert again.summary is not None and again.summary.unchanged == 1


def test_every_error_is_reported_with_its_row_and_column():
    make_employee(hr_id="E50", user_name="taken")
    employee_terminate(employee=make_employee(hr_id="E60"), actor=SYSTEM)
    rows = [
        _row(1, region="ZZ"),
        ["", "u2", "x", "bad-email@", "US", "", "", "", "", "active"],
        _row(3, status="fired"),
        _row(1),
        ["E4", "taken", "x", "", "US", "", "", "", "", ""],
        ["E60", "", "x", "", "US", "", "", "", "", "active"],
        ["E5", "", "x" * 300, "", "us", "ny", "", "", "", ""],
    ]
    errors = parse_csv(_csv(rows)).errors
    # Field errors and the checks across rows and against the database, all in one report.
    assert [(e.row, e.column) for e in errors] == [
        (2, "region"),
        (3, "email"),
        (3, "hr_id"),
        (4, "status"),
        (6, "user_name"),
        (7, "status"),
        (8, "display_name"),
    ]
    errors = parse_csv(_csv([_row(1), _row(1), ["E4", "taken", "", "", "US", "", "", "", "", ""]])).errors
    errors += parse_csv(_csv([["E60", "", "x", "", "US", "", "", "", "", "active"]])).errors
    assert [(e.row, e.column) for e in errors] == [(3, "hr_id"), (3, "user_name"), (4, "user_name"), (2, "status")]
    long_name = parse_csv(_csv([["E5", "", "x" * 300, "", "us", "ny", "", "", "", ""]])).errors
    assert [(e.row, e.column) for e in long_name] == [(2, "display_name")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe\x00bad", (0, "")),
        (b"name,country\nx,US\n", (1, "hr_id")),
        (b"hr_id,country,colour\nE1,US,blue\n", (1, "colour")),
        (b"hr_id,country\n", (2, "")),
        (b"hr_id,country\nE1,US,extra\n", (2, "")),
        (b'hr_id,country\n"E1,US\n', (2, "")),
    ],
)
def test_malformed_files_are_reported_not_raised(content, expected):
    errors = parse_csv(content).errors
    assert (errors[0].row, errors[0].column) == expected


def test_a_byte_order_mark_and_column_order_do_not_matter():
    outcome = import_csv(content="\ufeffcountry,hr_id\nUS,E1\n".encode(), source="x.csv", actor=SYSTEM)
    assert outcome.ok and Employee.objects.get().hr_id == "E1"


def test_the_management_command_imports_or_lists_every_error(tmp_path, capsys):
    good = tmp_path / "good.csv"
    good.write_bytes(_csv([_row(1)]))
    call_command("import_employees", str(good))
    assert "1 created" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv([_row(2), _row(3, country="ZZ")]))
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_employees", str(bad))
    assert "row 3, column country" in capsys.readouterr().err
    assert not Employee.objects.filter(hr_id="E2").exists()
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_employees", str(tmp_path / "missing.csv"))


# The upload page -----------------------------------------------------------------


def _upload(client: Client, content: bytes):
    return client.post("/people/import/", {"file": io.BytesIO(content)}, format="multipart")


@pytest.mark.parametrize(("caller", "status"), [("employee", 403), ("legal", 403), ("auditor", 403), ("hr_admin", 200)])
def test_only_hr_administrators_may_open_the_upload_page(role_user, caller, status):
    client = Client()
    verified_login(client, role_user(caller))
    assert client.get("/people/import/").status_code == status


def test_legal_users_meet_the_second_factor_before_any_page(role_user):
    client = Client()
    client.force_login(role_user(Role.LEGAL))
    response = client.get("/people/import/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/enrol/")


def test_anonymous_visitors_are_sent_to_sign_in():
    response = Client().get("/people/import/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_tokens_cannot_use_the_upload_page(clients):
    for name in ("hr_token", "user_token", "device_token"):
        assert clients[name].get("/people/import/").status_code == 302


def test_the_upload_page_imports_a_valid_file(role_user):
    client = Client()
    client.force_login(role_user(Role.HR_ADMIN, "hannah"))
    response = _upload(client, _csv([_row(1), _row(2)]))
    assert response.status_code == 200
    assert b"2 created" in response.content
    assert AuditEntry.objects.get(event_type=EventType.EMPLOYEES_IMPORTED).actor == "user:hannah"


def test_the_upload_page_lists_errors_and_imports_nothing(role_user):
    client = Client()
    client.force_login(role_user(Role.HR_ADMIN))
    response = _upload(client, _csv([_row(1), _row(2, country="XX")]))
    assert response.status_code == 422
    assert b"<td>3</td><td>country</td>" in response.content
    assert not Employee.objects.exists()
    assert _upload(client, b"").status_code == 422


def test_the_upload_page_requires_a_csrf_token(role_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(role_user(Role.HR_ADMIN))
    assert _upload(client, _csv([_row(1)])).status_code == 403
    assert not Employee.objects.exists()
