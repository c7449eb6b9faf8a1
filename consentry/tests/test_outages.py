"""A database that is down answers 503 ``dependency_unavailable`` everywhere, in each caller's format.

API.md (Conventions): 503 when a dependency is down, problem+json, never a
500 and never HTML; clients treat it as a denial. SCIM clients get a SCIM
error, people a page. Each refused request logs one line, no traceback.

Three levels: which real database errors count as an outage; requests in
this process against a database connection pointed where nothing answers;
and a server process in front of a throwaway PostgreSQL cluster that is
stopped in the middle of traffic and started again.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.test import Client
from rest_framework.test import APIClient

from conftest import SYSTEM, build_small_policy, make_employee, make_user
from consentry.outages import is_database_outage
from consentry.tests.dependencies import require
from people.tokens import token_issue

PURPOSE = "ai_agent_training"
OUTAGE_LINE = "database unavailable, answered 503"
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable_settings(tmp_path: Path) -> dict:
    """The test database's settings, pointed where no database answers."""
    params = dict(connection.settings_dict)
    if connection.vendor == "postgresql":
        params.update(HOST="127.0.0.1", PORT=closed_port())
    else:
        params["NAME"] = str(tmp_path / "no-such-folder" / "db.sqlite3")
    return params


# Which errors are outages ---------------------------------------------------------------


def test_a_database_that_cannot_be_reached_is_an_outage(db, tmp_path):
    unreachable = type(connections["default"])(unreachable_settings(tmp_path), alias="unreachable")
    with pytest.raises(DatabaseError) as raised:
        unreachable.ensure_connection()
    assert is_database_outage(raised.value), repr(raised.value)


def test_bad_sql_is_a_programming_error_not_an_outage(db):
    with pytest.raises(DatabaseError) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT no_such_column FROM no_such_table")
    assert not is_database_outage(raised.value), repr(raised.value)


def test_a_broken_constraint_is_not_an_outage(db):
    make_user("ada")
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        get_user_model().objects.create(username="ada")
    assert not is_database_outage(raised.value)


@pytest.mark.postgres
def test_a_value_out_of_range_is_not_an_outage(db):
    with pytest.raises(DatabaseError) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT %s::bigint", ["99999999999999999999"])
    assert not is_database_outage(raised.value), repr(raised.value)


@pytest.mark.postgres
def test_a_statement_cut_short_by_the_server_is_an_outage(db):
    with pytest.raises(DatabaseError) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 50")
        cursor.execute("SELECT pg_sleep(2)")
    cause = raised.value.__cause__
    assert isinstance(cause, psycopg.Error) and cause.sqlstate == "57014" and is_database_outage(raised.value)


@pytest.mark.postgres
def test_a_connection_the_server_terminated_is_an_outage(db):
    other = type(connections["default"])(dict(connection.settings_dict), alias="terminated")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(DatabaseError) as raised, other.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert is_database_outage(raised.value), repr(raised.value)
    finally:
        other.close()


# Requests in this process ---------------------------------------------------------------


@dataclass
class Personas:
    device: APIClient
    pipeline: APIClient
    admin: APIClient
    employee: APIClient
    hr: APIClient
    writer: APIClient
    reader: APIClient
    device_in_view: APIClient
    pipeline_in_view: APIClient
    portal: Client


def bearer(raw: str) -> APIClient:
    # As a real server answers: the client must not re-raise what the server turned into a response.
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def forced(user=None, token=None) -> APIClient:
    """Authenticated without the database, so the request reaches the view and the idempotency layer."""
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(user, token)
    return api


@pytest.fixture
def personas(db) -> Personas:
    build_small_policy()
    root = make_user("root", is_superuser=True, is_staff=True)
    employee = make_employee(country="US", subdivision="US-NY", user=make_user("nina"))
    portal = Client(raise_request_exception=False)
    assert employee.user is not None
    portal.force_login(employee.user)
    device, device_raw = token_issue(kind="device", name="laptop", employee=employee, device_id="laptop", actor=SYSTEM)
    pipeline, pipeline_raw = token_issue(kind="pipeline", name="trainer", purposes=[PURPOSE], actor=SYSTEM)
    return Personas(
        device=bearer(device_raw),
        pipeline=bearer(pipeline_raw),
        admin=bearer(token_issue(kind="user", name="root", user=root, actor=SYSTEM)[1]),
        employee=bearer(token_issue(kind="user", name="nina", user=employee.user, actor=SYSTEM)[1]),
        hr=bearer(token_issue(kind="hr", name="workday", actor=SYSTEM)[1]),
        writer=forced(employee.user),
        reader=forced(root),
        device_in_view=forced(token=device),
        pipeline_in_view=forced(token=pipeline),
        portal=portal,
    )


@contextlib.contextmanager
def database_unreachable(tmp_path: Path):
    """Point this process's default connection where no database answers, then back."""
    params = connection.settings_dict
    saved = dict(params)
    if connection.vendor == "sqlite":
        # Closing an in-memory test database would destroy it: set its connection aside instead.
        kept, connection.connection = connection.connection, None
    else:
        connection.close()
    params.update(
        {key: value for key, value in unreachable_settings(tmp_path).items() if key in ("HOST", "PORT", "NAME")}
    )
    try:
        yield
    finally:
        connection.close()
        params.update(saved)
        if connection.vendor == "sqlite":
            connection.connection = kept


RECORD = {
    "id": "r1",
    "subject": "p_unknown",
    "category": "keystrokes",
    "captured_at": "2026-11-21T09:30:00Z",
    "grant_id": "g_unknown",
}


def api_calls(p: Personas) -> dict:
    """One request per stage where the database is first needed."""
    return {
        # Bearer tokens: the token lookup in authentication fails first.
        "capture": lambda: p.device.post(
            "/api/v1/decisions/capture", {"purpose": PURPOSE, "categories": ["keystrokes"]}, format="json"
        ),
        "use": lambda: p.pipeline.post(
            "/api/v1/decisions/use", {"purpose": PURPOSE, "records": [RECORD]}, format="json"
        ),
        "governance list": lambda: p.admin.get("/api/v1/regions/"),
        "me/consent": lambda: p.employee.get("/api/v1/me/consent"),
        # Already authenticated: the view's selector and serializer, and the idempotency layer.
        "audit entries": lambda: p.reader.get("/api/v1/audit/entries"),
        "capture, in the view": lambda: p.device_in_view.post(
            "/api/v1/decisions/capture", {"purpose": PURPOSE, "categories": ["keystrokes"]}, format="json"
        ),
        "use, in the view": lambda: p.pipeline_in_view.post(
            "/api/v1/decisions/use", {"purpose": PURPOSE, "records": [RECORD]}, format="json"
        ),
        "idempotent write": lambda: p.writer.post(
            "/api/v1/me/rights-requests", {"kind": "access"}, format="json", HTTP_IDEMPOTENCY_KEY="outage-1"
        ),
    }


def assert_outage_problem(response, what: str) -> None:
    assert response.status_code == 503, (what, response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/problem+json", (what, response["Content-Type"])
    body = json.loads(response.content)
    assert body["status"] == 503 and body["code"] == "dependency_unavailable", (what, body)
    assert response["Retry-After"].isdigit()


@pytest.mark.django_db(transaction=True)
def test_with_the_database_unreachable_every_caller_gets_a_503_in_its_own_format_logged_once(
    personas, tmp_path, caplog
):
    calls = api_calls(personas)
    caplog.set_level(logging.INFO)
    with database_unreachable(tmp_path):
        for what, call in calls.items():
            assert_outage_problem(call(), what)
        scim = personas.hr.get("/scim/v2/Users")
        page = personas.portal.get("/portal/")
    assert scim.status_code == 503 and scim["Content-Type"] == "application/scim+json"
    assert scim.json()["schemas"] == [SCIM_ERROR] and scim.json()["status"] == "503"
    assert page.status_code == 503 and page["Content-Type"].startswith("text/html")
    assert "temporarily unavailable" in page.content.decode()
    # One line per request, from one place; no traceback anywhere.
    outage_lines = [r for r in caplog.records if r.name == "consentry.outages"]
    assert len(outage_lines) == len(calls) + 2, [r.getMessage() for r in caplog.records]
    others = [r for r in caplog.records if r not in outage_lines]
    assert [r.getMessage() for r in others if r.exc_info or r.levelno >= logging.ERROR] == []
    assert not any(r.exc_info for r in outage_lines)

    # Back up: the same requests succeed.
    assert (
        personas.device.post(
            "/api/v1/decisions/capture", {"purpose": PURPOSE, "categories": ["keystrokes"]}, format="json"
        ).status_code
        == 200
    )
    assert personas.admin.get("/api/v1/regions/").status_code == 200
    assert personas.employee.get("/api/v1/me/consent").status_code == 200
    assert personas.hr.get("/scim/v2/Users").status_code == 200
    assert personas.portal.get("/portal/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_with_debug_pages_on_a_portal_page_still_shows_the_503_page_not_a_traceback(personas, tmp_path, settings):
    """``python3 run.py`` runs with DEBUG on, where Django would show its traceback page instead."""
    settings.DEBUG = True
    with database_unreachable(tmp_path):
        page = personas.portal.get("/portal/")
        api = personas.admin.get("/api/v1/regions/")
    assert page.status_code == 503 and "temporarily unavailable" in page.content.decode()
    assert_outage_problem(api, "governance list")


@pytest.mark.django_db(transaction=True)
def test_a_programming_error_in_an_api_request_stays_a_500_with_its_traceback(personas, monkeypatch, caplog):
    """Only outages become 503s: a bug must not hide behind "try again"."""
    from governance import api as governance_api

    def bad_sql(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM no_such_table")

    monkeypatch.setattr(governance_api.RegionListView, "get_queryset", bad_sql)
    response = personas.admin.get("/api/v1/regions/")
    assert response.status_code == 500 and response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content)["code"] == "server_error"
    assert any(r.exc_info for r in caplog.records if r.name == "django.request")


# A real PostgreSQL stopped mid-traffic --------------------------------------------------


class ThrowawayPostgres:
    """A PostgreSQL cluster of this test's own, on a free port, in a temporary folder."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
        self.bin = Path(found[-1]).parent if found else None
        self.as_postgres = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="consentry-outage-pg-"))
        self.data = self.root / "data"
        self.port = closed_port()

    @property
    def available(self) -> bool:
        return self.bin is not None and (not self.as_postgres or shutil.which("runuser") is not None)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        assert self.bin is not None, "only run when available"
        command = [str(self.bin / program), *args]
        if self.as_postgres:
            # PostgreSQL refuses to run as root.
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def create(self) -> None:
        if self.as_postgres:
            shutil.chown(self.root, user="postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        # "fast": what an operator's restart or a failover does to open sessions.
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


SETUP = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client
from conftest import SYSTEM, build_small_policy, make_employee, make_user
from people.tokens import token_issue

build_small_policy()
root = make_user("root", is_superuser=True, is_staff=True)
nina = make_employee(country="US", subdivision="US-NY", user=make_user("nina"))
raw = {
    "device": token_issue(kind="device", name="laptop", employee=nina, device_id="laptop", actor=SYSTEM)[1],
    "pipeline": token_issue(kind="pipeline", name="trainer", purposes=["ai_agent_training"], actor=SYSTEM)[1],
    "admin": token_issue(kind="user", name="root", user=root, actor=SYSTEM)[1],
    "employee": token_issue(kind="user", name="nina", user=nina.user, actor=SYSTEM)[1],
    "hr": token_issue(kind="hr", name="workday", actor=SYSTEM)[1],
}
browser = Client()
browser.force_login(nina.user)
raw["session"] = browser.cookies[settings.SESSION_COOKIE_NAME].value
print(json.dumps(raw))
"""


@dataclass
class Answer:
    what: str
    status: int
    content_type: str
    body: bytes


# name: (method, path, credential, JSON body); every kind of caller the review named.
SERVER_CALLS = {
    "capture": ("POST", "/api/v1/decisions/capture", "device", {"purpose": PURPOSE, "categories": ["keystrokes"]}),
    "use": ("POST", "/api/v1/decisions/use", "pipeline", {"purpose": PURPOSE, "records": [RECORD]}),
    "governance list": ("GET", "/api/v1/regions/", "admin", None),
    "me/consent": ("GET", "/api/v1/me/consent", "employee", None),
    "scim users": ("GET", "/scim/v2/Users", "hr", None),
    "portal": ("GET", "/portal/", "session", None),
}


def call(base: str, credentials: dict, what: str) -> Answer:
    method, path, credential, body = SERVER_CALLS[what]
    headers = {"Content-Type": "application/json"}
    if credential == "session":
        headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={credentials[credential]}"
    else:
        headers["Authorization"] = f"Bearer {credentials[credential]}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)  # noqa: S310 - local
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own server on loopback
            return Answer(what, response.status, response.headers.get("Content-Type", ""), response.read())
    except urllib.error.HTTPError as error:
        return Answer(what, error.code, error.headers.get("Content-Type", ""), error.read())


def is_outage_answer(answer: Answer) -> bool:
    """The 503 each caller expects: problem+json for the API, a SCIM error for SCIM, a page for people."""
    if answer.status != 503:
        return False
    if answer.what == "portal":
        return answer.content_type.startswith("text/html") and b"temporarily unavailable" in answer.body
    body = json.loads(answer.body)
    if answer.what == "scim users":
        return answer.content_type == "application/scim+json" and body["schemas"] == [SCIM_ERROR]
    return answer.content_type == "application/problem+json" and body["code"] == "dependency_unavailable"


def wait_until(condition, *, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if value := condition():
                return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; server log:\n{log.read_text()[-3000:]}")


@pytest.mark.postgres
@pytest.mark.slow
def test_postgresql_stopped_mid_traffic_answers_503_to_every_caller_and_recovers_when_it_returns(tmp_path):
    cluster = ThrowawayPostgres()
    require(
        cluster.available, "needs PostgreSQL's initdb and pg_ctl in /usr/lib/postgresql/*/bin (and runuser as root)"
    )
    log = tmp_path / "server.log"
    http_port = closed_port()
    base = f"http://127.0.0.1:{http_port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "consentry.settings",
        "DATABASE_URL": cluster.url,
        "CONSENTRY_STATE_DIR": str(tmp_path / "state"),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "INFO",
    }
    env.pop("CELERY_BROKER_URL", None)
    server = None
    try:
        cluster.create()
        cluster.start()

        def run(*command: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=300)

        migrated = run(sys.executable, "manage.py", "migrate", "-v0")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        setup = run(sys.executable, "-c", SETUP)
        assert setup.returncode == 0, setup.stderr[-3000:]
        credentials = json.loads(setup.stdout.strip().splitlines()[-1])
        command = [sys.executable, "-m", "gunicorn", "consentry.wsgi:application", "--bind", f"127.0.0.1:{http_port}"]
        command += ["--workers", "1", "--threads", "4", "--timeout", "60"]
        with log.open("wb") as output:
            server = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT)
        wait_until(
            lambda: call(base, credentials, "governance list").status == 200, timeout=60, what="the server", log=log
        )
        up = [call(base, credentials, what) for what in SERVER_CALLS]
        assert all(answer.status < 400 for answer in up), [(a.what, a.status, a.body[:200]) for a in up]

        # Traffic from another thread while the cluster stops under it (bounded in count and time).
        answers: list[Answer] = []
        done = threading.Event()

        def traffic() -> None:
            started = time.monotonic()
            while not done.is_set() and len(answers) < 3000 and time.monotonic() - started < 60:
                for what in SERVER_CALLS:
                    answers.append(call(base, credentials, what))

        sender = threading.Thread(target=traffic)
        sender.start()
        time.sleep(1.0)
        cluster.stop()
        stopped_at = len(answers)
        time.sleep(2.0)
        done.set()
        sender.join(timeout=60)
        assert stopped_at > 0 and len(answers) > stopped_at
        wrong = [
            (a.what, a.status, a.content_type, a.body[:200])
            for a in answers
            if a.status >= 400 and not is_outage_answer(a)
        ]
        assert wrong == []
        # After the stop every answer was the outage's, for every kind of caller.
        assert {a.what for a in answers[-len(SERVER_CALLS) :] if is_outage_answer(a)} == set(SERVER_CALLS)

        down = [call(base, credentials, what) for what in SERVER_CALLS]
        assert all(is_outage_answer(a) for a in down), [(a.what, a.status, a.content_type, a.body[:200]) for a in down]

        cluster.start()
        recovering: list[Answer] = []

        def recovered() -> bool:
            round_ = [call(base, credentials, what) for what in SERVER_CALLS]
            recovering.extend(round_)
            return all(answer.status < 400 for answer in round_)

        wait_until(recovered, timeout=30, what="requests to succeed after PostgreSQL came back", log=log)
        assert all(a.status < 400 or is_outage_answer(a) for a in recovering)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        cluster.destroy()

    # One line per 503, from one place; no traceback, no 500 in the server's log.
    text = log.read_text()
    refused = sum(1 for a in [*answers, *down, *recovering] if a.status == 503)
    assert "Traceback" not in text and "Internal Server Error" not in text, text[-3000:]
    assert text.count(OUTAGE_LINE) == refused, (text.count(OUTAGE_LINE), refused)
