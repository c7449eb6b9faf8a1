"""Lock tests on PostgreSQL: wait until another connection of the test is queued on a lock."""

from __future__ import annotations

import time

from django.db import connection


def wait_for_a_lock_waiter(*, what: str, within: float = 10.0) -> None:
    """Return once another backend in this database waits on a lock; fail naming ``what`` after ``within`` s."""
    since = time.monotonic()
    while time.monotonic() - since < within:
        with connection.cursor() as cursor:
            # Activity is read once per transaction unless the snapshot is cleared (this runs inside one).
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            row = cursor.fetchone()
            if row is not None and row[0]:
                return
        time.sleep(0.01)
    raise AssertionError(f"{what} never waited for the lock")
