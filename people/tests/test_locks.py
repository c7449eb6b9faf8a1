"""The employee's row lock: one definition, FOR NO KEY UPDATE, taken nowhere else.

An HR change locked the employee FOR UPDATE and then appended to the ledger;
a transaction that held the ledger's head and inserted a row referencing the
employee (a device token) checked that key at commit with a KEY SHARE lock,
which FOR UPDATE blocks: each waited for the other until PostgreSQL failed one.
"""

from __future__ import annotations

import ast
import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import TypeGuard

import pytest
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import EventType
from audit.services import record
from conftest import SYSTEM, make_employee
from consentry.tests.locks import wait_for_a_lock_waiter
from people.locks import EMPLOYEE_LOCK_CLAUSE, employee_lock, employee_lock_clause, employees_lock
from people.models import ApiToken, Employee
from people.services import employee_update_details
from people.tokens import hash_token

# The apps whose production code must take the employee's lock through people.locks.
APPS = ("consentry", "audit", "people", "governance", "consent", "decisions")
HELPER = Path("people/locks.py")
ROW_LOCK_SQL = re.compile(r"\bFOR\s+(NO\s+KEY\s+)?UPDATE\b", re.IGNORECASE)


def _chain(node: ast.AST) -> list[ast.AST]:
    """A call chain from the outermost call down to its root (``Employee.objects.filter(...).first()``)."""
    nodes = [node]
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        else:
            return nodes
        nodes.append(node)


def _mentions_employee(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Name) and n.id == "Employee")
        or (isinstance(n, ast.Constant) and isinstance(n.value, str) and "people_employee" in n.value)
        for n in ast.walk(node)
    )


def _is_call_to(node: ast.AST, name: str) -> TypeGuard[ast.Call]:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name


def employee_locks_written_out(source: str) -> list[int]:
    """Lines of ``source`` that lock an employee's row without people.locks.

    Three shapes: ``select_for_update()`` on a queryset of employees (directly,
    or from a function of the module that returns one); ``select_for_update()``
    without ``of=`` on a query that joins the employee by ``select_related``
    (PostgreSQL then locks the joined row too); and ``FOR UPDATE`` or ``FOR NO
    KEY UPDATE`` written in SQL by a function that reads the employee table.
    """
    tree = ast.parse(source)
    employee_querysets = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(
            isinstance(n, ast.Return) and n.value is not None and _mentions_employee(n.value) for n in ast.walk(node)
        )
    }
    found: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        chain = _chain(node)
        if _is_call_to(node, "select_for_update"):
            root = chain[-1]
            if (isinstance(root, ast.Name) and root.id == "Employee") or any(
                isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in employee_querysets
                for n in chain
            ):
                found.add(node.lineno)
        locks = [n for n in chain if _is_call_to(n, "select_for_update") and not any(k.arg == "of" for k in n.keywords)]
        joins = [
            n
            for n in chain
            if _is_call_to(n, "select_related") and any("employee" in ast.unparse(arg) for arg in n.args)
        ]
        if locks and joins:
            found.update(n.lineno for n in locks)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    module_level = [
        stmt for stmt in tree.body if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    for scope in [*([ast.Module(body=module_level, type_ignores=[])] if module_level else []), *functions]:
        inner = list(ast.walk(scope))
        sql = [
            n
            for n in inner
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and ROW_LOCK_SQL.search(n.value)
        ]
        if sql and any(_mentions_employee(n) for n in inner):
            found.update(n.lineno for n in sql)
    return sorted(found)


def _production_modules() -> list[Path]:
    base = Path(settings.BASE_DIR)
    return sorted(
        path.relative_to(base)
        for app in APPS
        for path in (base / app).rglob("*.py")
        if not {"tests", "migrations"} & set(path.relative_to(base).parts)
    )


def test_no_module_but_people_locks_locks_the_employee_row_itself():
    base = Path(settings.BASE_DIR)
    modules = _production_modules()
    assert HELPER in modules and Path("decisions/services.py") in modules
    written_out = {
        str(path): lines
        for path in modules
        if path != HELPER and (lines := employee_locks_written_out((base / path).read_text()))
    }
    assert written_out == {}, "lock the employee with people.locks.employee_lock() or employees_lock()"


@pytest.mark.parametrize(
    "source",
    [
        "Employee.objects.select_for_update().get(pk=employee.pk)",
        "Employee.objects.select_for_update(no_key=True).get(pk=employee_id)",
        "existing = {e.hr_id: e for e in Employee.objects.select_for_update().filter(hr_id__in=ids)}",
        "def _provisioned():\n    return Employee.objects.filter(deprovisioned_at__isnull=True)\n"
        "def _employee(pk):\n    return _provisioned().select_for_update().filter(pk=pk).first()\n",
        "def _lock_query():\n    rows = ModelRows(Employee, 'e')\n"
        "    lock = ' FOR NO KEY UPDATE' if connection.features.has_select_for_update else ''\n"
        "    return f'SELECT {rows.columns} FROM {rows.table} WHERE e.id = %s{lock}'\n",
        "cursor.execute('SELECT * FROM people_employee WHERE id = %s FOR UPDATE', [pk])",
        "RightsRequest.objects.select_for_update().select_related('employee').get(pk=pk)",
    ],
)
def test_the_source_check_finds_an_employee_lock_written_out(source):
    assert employee_locks_written_out(source)


@pytest.mark.parametrize(
    "source",
    [
        "employee = employee_lock(employee_id=employee.pk)",
        "ConsentState.objects.select_for_update(no_key=True, of=('self',)).filter(employee=employee)",
        "RightsRequest.objects.select_for_update(no_key=True, of=('self',)).select_related('employee').get(pk=pk)",
        "def head():\n    return f'{_LOCK_HEAD} FOR UPDATE'\ndef other():\n    return Employee.objects.filter(pk=1)\n",
        "def _lock_query():\n    rows = ModelRows(Employee, 'e')\n"
        "    return f'SELECT {rows.columns} FROM {rows.table} WHERE e.id = %s{employee_lock_clause()}'\n",
    ],
)
def test_the_source_check_lets_other_row_locks_and_the_helper_through(source):
    assert employee_locks_written_out(source) == []


@pytest.mark.django_db(transaction=True)
def test_the_lock_is_for_no_key_update_where_the_database_has_row_locks():
    employee = make_employee()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert employee_lock(employee_id=employee.pk) == employee
    (sql,) = [q["sql"] for q in queries.captured_queries if "people_employee" in q["sql"]]
    if connection.features.has_select_for_update:
        assert sql.endswith(f" {EMPLOYEE_LOCK_CLAUSE}")
        assert employee_lock_clause() == f" {EMPLOYEE_LOCK_CLAUSE}"
    else:
        assert not ROW_LOCK_SQL.search(sql)
        assert employee_lock_clause() == ""


@pytest.mark.django_db
def test_an_unknown_employee_cannot_be_locked():
    with transaction.atomic(), pytest.raises(Employee.DoesNotExist):
        employee_lock(employee_id=987654)


@pytest.mark.django_db(transaction=True)
def test_several_employees_are_locked_in_primary_key_order_and_returned_by_hr_id():
    late, early = make_employee(hr_id="Z-1"), make_employee(hr_id="A-1")
    assert late.pk < early.pk
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = employees_lock(hr_ids=["A-1", "Z-1", "NOBODY"])
    assert locked == {"A-1": early, "Z-1": late}
    (sql,) = [q["sql"] for q in queries.captured_queries if "people_employee" in q["sql"]]
    # By primary key, not by the model's default order (HR id).
    assert re.search(r'ORDER BY "people_employee"\."id" ASC', sql)
    if connection.features.has_select_for_update:
        assert sql.endswith(f" {EMPLOYEE_LOCK_CLAUSE}")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_hr_change_while_a_device_token_for_the_employee_commits_under_the_ledger_head():
    employee = make_employee(country="US", subdivision="US-WA")
    failures: list[BaseException] = []
    head_held = threading.Event()

    def hr_change() -> None:
        try:
            head_held.wait(10)
            # Locks the employee, then queues for the ledger's head behind the token below.
            employee_update_details(employee=employee, department="Research", actor=SYSTEM)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            failures.append(exc)
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=hr_change)
    thread.start()
    with transaction.atomic():
        record(event_type=EventType.TOKEN_ISSUED, actor=SYSTEM, subject=employee.hr_id)
        # Its foreign key to the employee is checked at this commit, under the head lock.
        ApiToken.objects.create(
            kind="device",
            name="laptop",
            prefix="cst_device_lockor",
            token_hash=hash_token("cst_device_lockorder"),
            employee=employee,
            device_id="laptop",
            created_by="test",
            expires_at=timezone.now() + timedelta(hours=1),
        )
        head_held.set()
        wait_for_a_lock_waiter(what="the HR change")
    thread.join(15)
    assert not failures, failures
    assert Employee.objects.get(pk=employee.pk).department == "Research"
    assert ApiToken.objects.filter(employee=employee).count() == 1
