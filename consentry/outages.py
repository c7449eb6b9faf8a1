"""Which database errors mean "the database is down", as opposed to "this code is wrong".

An outage (the server stopped, restarting, unreachable, out of connections,
disk or memory, or too busy to answer in time) is answered 503
``dependency_unavailable`` (API.md, Conventions): nothing was decided or
changed and the client retries later. Every other database error (bad SQL,
a broken constraint, a value out of range, a deadlock) is a defect to fix,
so it stays a 500 with its traceback in the log; turning it into a 503 would
hide it behind "try again".

``consentry.problems`` turns an outage into the answer each caller expects;
this module only classifies, so any layer may use it.
"""

from __future__ import annotations

import logging
import sqlite3

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest

logger = logging.getLogger(__name__)

# PostgreSQL SQLSTATE classes of an unavailable server (appendix A of its manual):
# 08 connection exception, 53 insufficient resources (disk full, out of memory,
# too many connections), 57 operator intervention (admin or crash shutdown,
# cannot connect now, statement timeout), 58 system error (I/O error).
_POSTGRES_OUTAGE_CLASSES = frozenset({"08", "53", "57", "58"})
# SQLite primary result codes of a database that cannot be reached or written
# right now; SQLITE_ERROR ("no such table", syntax errors) is not among them.
_SQLITE_OUTAGE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
    }
)


def _driver_error(exc: BaseException) -> BaseException:
    # Django re-raises the driver's exception as its own class, the original as the cause.
    return exc.__cause__ if isinstance(exc.__cause__, Exception) else exc


def is_database_outage(exc: BaseException) -> bool:
    """True for errors that say the database is unavailable, false for programming errors."""
    if isinstance(exc, InterfaceError):
        # "connection already closed": the connection died under us.
        return True
    if not isinstance(exc, OperationalError):
        return False
    driver = _driver_error(exc)
    sqlstate = getattr(driver, "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] in _POSTGRES_OUTAGE_CLASSES
    sqlite_code = getattr(driver, "sqlite_errorcode", None)
    if sqlite_code is not None:
        return sqlite_code & 0xFF in _SQLITE_OUTAGE_CODES
    # No code from the server at all: the driver never reached it (refused, reset, timed out).
    return True


def log_outage(request: HttpRequest, exc: BaseException) -> None:
    """One line per refused request: the error's first line, no traceback (it says nothing about our code)."""
    summary = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    logger.error(
        "database unavailable, answered 503: %s %s (%s: %s)", request.method, request.path, type(exc).__name__, summary
    )
