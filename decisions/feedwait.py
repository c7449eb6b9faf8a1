"""Waking long polls and event streams when the revocation feed grows.

Waiters never hold a database connection while they wait: they sleep on an
in-process signal and query when it fires (or when their poll interval runs
out, as a safety net). What fires it:

- the relay, after its transaction commits, when it ran in this process;
- on PostgreSQL, one listener thread per process holding one dedicated
  connection with ``LISTEN``: the relay's ``NOTIFY`` reaches every web
  process at commit, whichever process relayed;
- nothing else on SQLite, where waiters in other processes poll every
  ``CONSENTRY_FEED_POLL_MS``.

Waiting ties up a server thread, so each process lets at most
``CONSENTRY_FEED_MAX_WAITERS`` requests wait at once; the rest are answered
at once and told when to come back (README, "Long polls and threads").
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

CHANNEL = "consentry_revocations"


class FeedSignal:
    """A generation counter waiters sleep on: ``bump`` wakes every waiter that saw an older generation."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def bump(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Sleep until the generation moves past ``seen`` or ``timeout`` passes; True when it moved."""
        with self._changed:
            return self._changed.wait_for(lambda: self._generation != seen, timeout=max(timeout, 0))


feed_signal = FeedSignal()


class _Listener(threading.Thread):
    """LISTEN on a dedicated psycopg connection and bump the signal on every notification."""

    def __init__(self) -> None:
        super().__init__(name="consentry-feed-listener", daemon=True)
        self.healthy = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        backoff = 0.5
        while not self.stopping.is_set():
            try:
                params = connections["default"].get_connection_params()
                with psycopg.connect(**params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.healthy.set()
                    backoff = 0.5
                    # Anything relayed while this connection was down: let waiters look.
                    feed_signal.bump()
                    checked = time.monotonic()
                    while not self.stopping.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            feed_signal.bump()
                        if time.monotonic() - checked > 30:
                            # A quiet half minute: prove the connection still works.
                            conn.execute("SELECT 1")
                            checked = time.monotonic()
            except Exception:  # noqa: BLE001 - any failure: waiters fall back to polling until reconnected
                self.healthy.clear()
                logger.warning("revocation feed listener lost its connection; retrying in %.1fs", backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        self.healthy.clear()


_listener: _Listener | None = None
_listener_lock = threading.Lock()


def _postgres() -> bool:
    return connections["default"].vendor == "postgresql"


def ensure_listener() -> None:
    """Start this process's listener on first use (PostgreSQL only)."""
    global _listener
    if _listener is not None or not _postgres():
        return
    with _listener_lock:
        if _listener is None:
            _listener = _Listener()
            _listener.start()


def stop_listener() -> None:
    """Stop and forget this process's listener (tests do, before their database is dropped)."""
    global _listener
    with _listener_lock:
        listener, _listener = _listener, None
    if listener is not None:
        listener.stopping.set()
        listener.join(timeout=5)


def poll_interval() -> float:
    """How long a waiter sleeps before looking again when nothing wakes it."""
    if _listener is not None and _listener.healthy.is_set():
        # NOTIFY wakes us (and a reconnected listener wakes everyone once):
        # this only bounds how long a waiter sleeps through a broken connection.
        return 15.0
    return settings.CONSENTRY_FEED_POLL_MS / 1000


class WaiterSlots:
    """A per-process cap on requests waiting at once, so waiting never takes every server thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0

    def acquire(self) -> bool:
        with self._lock:
            if self._busy >= settings.CONSENTRY_FEED_MAX_WAITERS:
                return False
            self._busy += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._busy -= 1


waiter_slots = WaiterSlots()
