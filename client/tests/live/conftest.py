"""Client tests run against a real server: pytest-django's live server on the test database.

Nothing stands in for the server. Where a test needs the network to fail, a
small TCP relay between client and server (``Relay``) is cut for real.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.cache import cache

# The client is its own package (client/), importable without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from consentry_client import Transport

from conftest import SYSTEM, make_employee
from decisions.tests.conftest import (  # noqa: F401 - the session fixture stops the LISTEN thread
    PURPOSE,
    _feed_listener_stopped_before_the_database_is_dropped,
    build_decision_policy,
    grant_consent,
    relay,
)
from people.models import Employee
from people.tokens import token_issue

DEVICE = "laptop-7"
# The live server runs the production middleware, started before any test's
# settings: say a TLS-terminating proxy sits in front, as decisions' own live tests do.
BEHIND_TLS_PROXY = {"X-Forwarded-Proto": "https"}


def transport(url: str, token: str, **options) -> Transport:
    return Transport(url, token, headers=BEHIND_TLS_PROXY, **options)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@dataclass
class World:
    url: str
    employee: Employee
    device_token: str
    pipeline_token: str


@pytest.fixture
def world(live_server, transactional_db) -> World:
    build_decision_policy()
    employee = make_employee(country="US", subdivision="US-WA", display_name="Wanda (Washington)")
    grant_consent(employee, "keystrokes", "mouse_movement")
    relay()
    _, device = token_issue(kind="device", name=DEVICE, employee=employee, device_id=DEVICE, actor=SYSTEM)
    _, pipeline = token_issue(kind="pipeline", name="trainer", purposes=[PURPOSE], actor=SYSTEM)
    return World(live_server.url, employee, device, pipeline)


def eventually(
    check: Callable[[], bool], *, within: float = 10.0, every: float = 0.01, explain: Callable[[], object] = str
) -> float:
    """Seconds until ``check()`` holds; fails the test (saying ``explain()``) if it does not within ``within``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            pytest.fail(f"condition not met within {within}s: {explain()}")
        time.sleep(every)
    return time.monotonic() - start


class Relay:
    """A TCP relay to the live server that a test can cut (the server "goes away") and restore."""

    def __init__(self, target_url: str) -> None:
        host, port = target_url.split("//", 1)[1].split(":")
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        self._open = False
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def restore(self) -> None:
        self._open = True

    def close(self) -> None:
        self.cut()
        self._listener.close()


@pytest.fixture
def network(world):
    relay_ = Relay(world.url)
    yield relay_
    relay_.close()
