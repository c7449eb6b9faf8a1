"""Logging filters: what an operator needs to read, once (settings.LOGGING installs them).

- ``QuietRoutineTasks`` drops beat's "Sending due task" and the worker's
  "received" and "succeeded" lines for periodic tasks that run every few
  seconds and mostly find nothing to do (``QUIET_TASKS``), and "Discarding
  revoked task" for a run that expired unclaimed (the next one covers it);
  such a task logs what it did when it did something. Warnings and errors
  about it (a failure, a retry, a time limit) are always logged.
- ``ClientErrorsWithoutTraceback`` keeps Django's one line for a refused or
  missing page (4xx) but drops the traceback of the ``PermissionDenied`` or
  ``Http404`` behind it: the request was wrong, not the code. 5xx keep theirs.
"""

from __future__ import annotations

import logging

QUIET_TASKS = frozenset(
    {
        "audit.queue_seal",
        "audit.checkpoint_tick",
        "consentry.outbox_relay",
        "governance.policy_boundaries_announce",
    }
)
# The loggers the routine task lines come from.
ROUTINE_TASK_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.worker.request", "celery.app.trace")


class QuietRoutineTasks(logging.Filter):
    """Drop the routine INFO lines about ``QUIET_TASKS`` from beat and the worker."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or _task_name(record) not in QUIET_TASKS


def _task_name(record: logging.LogRecord) -> str | None:
    # The worker passes the task's details as ``extra={"data": {...}}``, or as the arguments
    # of "Discarding revoked task: %s[%s]" (the task, then the id); beat as the arguments of
    # "Scheduler: Sending due task %s (%s)": the entry, then the task.
    data = getattr(record, "data", None)
    if isinstance(data, dict):
        return data.get("name")
    args = record.args if isinstance(record.args, tuple) else ()
    if record.name == "celery.beat" and len(args) == 2:
        return str(args[1])
    if record.name == "celery.worker.request" and len(args) == 2:
        return str(args[0])
    return None


class ClientErrorsWithoutTraceback(logging.Filter):
    """Log a 4xx response as its one line, without the exception's traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
