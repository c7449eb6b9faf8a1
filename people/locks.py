"""The employee's row lock: the one way every service takes it.

Consent changes, capture grants, rights requests, data-key destruction, HR
updates (SCIM, CSV, the API) and logins all serialise on the employee's row.
It lives here, beside ``Employee``, because ``people`` is the lowest layer
that owns the model: ``consent`` and ``decisions`` import it downward, and
``people``'s own services use it without reaching up.

Why FOR NO KEY UPDATE, and never FOR UPDATE: a row inserted with a foreign
key to the employee (a consent event, a grant, a data key, a device token)
has its key checked at commit, by a FOR KEY SHARE lock on the employee's row,
and many such transactions hold the ledger's head lock while they commit.
FOR UPDATE conflicts with that KEY SHARE lock: a service holding it and then
queueing for the ledger's head would wait on a committer that waits on it,
and PostgreSQL breaks the deadlock by failing one of them. FOR NO KEY UPDATE
(what an ``UPDATE`` that leaves the keys alone takes anyway) still
serialises every service that takes it, and lets those checks through.

Lock order: the employee's row first, then rows of theirs (consent states,
data keys, rights requests), then the ledger's head, which ``record()``
takes and holds until commit. Several employees are locked in primary-key
order, so two bulk writers cannot each hold one the other waits for. SQLite
has no row locks (its writers take the whole database), and the lock is a
no-op there, as ``select_for_update()`` already is.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from people.models import Employee

# The lock clause on PostgreSQL, for a fast path that reads and locks the row in one
# raw statement (decisions.services): it must match what employee_lock() sends.
EMPLOYEE_LOCK_CLAUSE = "FOR NO KEY UPDATE"


def employee_lock_clause() -> str:
    """The clause a raw ``SELECT`` of the employee's row ends with to take this lock ("" without row locks)."""
    return f" {EMPLOYEE_LOCK_CLAUSE}" if connection.features.has_select_for_update else ""


def employee_lock(*, employee_id: int) -> Employee:
    """Lock the employee's row until the transaction ends and return it as it stands once the lock is held.

    Call inside ``transaction.atomic()`` and before any ledger append of the
    transaction. Raises ``Employee.DoesNotExist`` for an unknown id.
    """
    return Employee.objects.select_for_update(no_key=True).get(pk=employee_id)


def employees_lock(*, hr_ids: Iterable[str]) -> dict[str, Employee]:
    """Lock the employees with these HR ids, in primary-key order; returns them by HR id (unknown ids are absent).

    The fixed order is what keeps two bulk writers (two CSV imports, say)
    from deadlocking on employees they share.
    """
    locked = Employee.objects.select_for_update(no_key=True).filter(hr_id__in=set(hr_ids)).order_by("pk")
    return {employee.hr_id: employee for employee in locked}
