"""Side effects after commit that must never fail the request that committed.

``after_commit(func, *args, what=...)`` runs ``func(*args)`` once the current
transaction commits (at once outside one). A failure is logged and
swallowed: the change the client asked for is committed, so its answer must
stay the 202 or 201 it was, and what the side effect was for is repaired
later (a periodic sweep enqueues jobs a broker outage missed; an orphaned file
is only disk space). Use it for every Celery enqueue and file clean-up that
follows a commit.

Django's ``on_commit(..., robust=True)`` is not used: its error path names the
callable by ``__qualname__``, which a ``functools.partial`` lacks, so a broker
outage became an ``AttributeError`` and a 500 for a request that had committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError as BrokerUnavailable

logger = logging.getLogger(__name__)

# A broker or disk that is down: expected now and then, and repaired by a sweep, so one line, no traceback.
_OUTAGES = (BrokerUnavailable, ConnectionError, TimeoutError, OSError)


def after_commit(func: Callable[..., Any], *args: Any, what: str) -> None:
    """Run ``func(*args)`` after the current transaction commits; log a failure instead of raising it.

    ``what`` names the side effect in the log ("enqueue export 3f2…").
    """

    def run() -> None:
        try:
            func(*args)
        except _OUTAGES as exc:
            logger.warning("%s failed after commit; the change stands (%s: %s)", what, type(exc).__name__, exc)
        except Exception:
            logger.exception("%s failed after commit", what)

    transaction.on_commit(run)
