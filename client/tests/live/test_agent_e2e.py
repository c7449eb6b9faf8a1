"""The real capture agent under Xvfb against a live server, driven by xdotool.

Each test starts ``consentry-agent`` as its own process on a virtual X
display, types and moves the mouse with xdotool, and reads the agent's JSON
Lines spool afterwards: sealed envelopes, which a pipeline opens with the
keys the use decision releases (``UsageGate.decrypt``). Debian's ``xvfb`` and ``xdotool`` are installed by
``run.py test``; without them these tests are skipped (under ``CI=true`` they fail).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from consentry_client import Transport, UsageGate
from django.core.management import call_command
from django.utils import timezone

from conftest import SYSTEM, make_employee, make_user
from consentry.tests.dependencies import require
from decisions.models import CaptureGrant
from decisions.tests.conftest import PURPOSE, grant_consent, relay
from governance.models import PolicyRevision
from governance.selectors import current_notice
from people.tokens import token_issue
from tests.live.conftest import BEHIND_TLS_PROXY, Relay, eventually

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _virtual_display_tools() -> None:
    """Xvfb and xdotool, or the test skips (fails under CI, which must run it)."""
    tools = shutil.which("Xvfb") and shutil.which("xdotool")
    require(bool(tools), "needs Xvfb and xdotool: apt-get install xvfb xdotool (run.py test does it)")


CLIENT = Path(__file__).resolve().parents[2]
DEVICE = "e2e-laptop"
CAPTURED = ["keystrokes", "keystroke_timing", "mouse_movement", "mouse_clicks", "screenshots", "app_usage"]
EDITOR = ("code", "Code")
PASSWORD_MANAGER = ("1password", "1Password")


@pytest.fixture(scope="module")
def display():
    """A virtual X display for the module, and a connection to it for making windows."""
    from Xlib import display as xdisplay

    number = 90 + os.getpid() % 100
    server = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    name = f":{number}"
    socket_path = Path(f"/tmp/.X11-unix/X{number}")  # noqa: S108 - where X servers put their socket
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        if time.monotonic() > deadline or server.poll() is not None:
            pytest.fail("Xvfb did not start")
        time.sleep(0.05)
    connection = xdisplay.Display(name)
    yield name, connection
    connection.close()
    server.terminate()
    server.wait(timeout=10)


def window(display, wm_class: tuple[str, str]):
    """A mapped window of the given WM_CLASS; ``focus(w)`` gives it the keyboard."""
    from Xlib import X

    _, connection = display
    screen = connection.screen()
    win = screen.root.create_window(
        0, 0, 800, 600, 0, screen.root_depth, X.InputOutput, X.CopyFromParent, background_pixel=screen.white_pixel
    )
    win.set_wm_class(*wm_class)
    win.set_wm_name(f"{wm_class[1]} test window")
    win.map()
    connection.sync()
    return win


def focus(display, win) -> None:
    from Xlib import X

    _, connection = display
    win.set_input_focus(X.RevertToParent, X.CurrentTime)
    connection.sync()
    time.sleep(0.4)  # past the agent's focus guard


def xdotool(display, *args: str) -> None:
    subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display[0]}, check=True, timeout=30)


class Typist:
    """Types and moves the mouse in the background until stopped."""

    def __init__(self, display, text: str = "abc") -> None:
        self.display, self.text = display, text
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        step = 0
        while not self._stop.is_set():
            step += 1
            xdotool(self.display, "type", "--delay", "20", self.text)
            xdotool(self.display, "mousemove", str(100 + step % 300), str(100 + step % 200), "click", "1")
            time.sleep(0.05)

    def __enter__(self) -> Typist:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class AgentProcess:
    def __init__(self, display, url: str, token: str, spool: Path) -> None:
        self.spool = spool
        token_file = spool.parent / "device-token"
        token_file.write_text(token)
        self.log = spool.parent / "agent.log"
        header = "{}:{}".format(*next(iter(BEHIND_TLS_PROXY.items())))
        command = [
            sys.executable,
            "-m",
            "consentry_client.agent.cli",
            "--server",
            url,
            "--token-file",
            str(token_file),
            "--device-id",
            DEVICE,
            "--spool",
            str(spool),
            "--screenshot-interval",
            "0.5",
            "--header",
            header,
            "--categories",
            ",".join(CAPTURED),
        ]
        env = {**os.environ, "DISPLAY": display[0], "PYTHONPATH": str(CLIENT), "PYTHONUNBUFFERED": "1"}
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def status(self) -> dict:
        try:
            return json.loads((self.spool / "status.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def wait_until_capturing(self, *categories: str) -> None:
        eventually(
            lambda: set(categories) <= set(self.status().get("allowed", ())),
            within=20,
            every=0.1,
            explain=lambda: (self.status(), self.log.read_text()[-2000:]),
        )

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.log.read_text()

    def records(self) -> list[dict]:
        """The spooled envelopes: each record's metadata in the clear, its data sealed."""
        lines = []
        for path in sorted(self.spool.glob("records-*.jsonl")):
            lines += [json.loads(line) for line in path.read_text().splitlines() if line]
        assert all("data" not in line and line["v"] == 1 for line in lines), "plaintext in the spool"
        return lines

    def opened(self, url: str, pipeline_token: str) -> list[dict]:
        """The records a pipeline may use, decrypted (screenshots with their ``blob``)."""
        channel = Transport(url, pipeline_token, headers=BEHIND_TLS_PROXY)
        gate = UsageGate(url, pipeline_token, purpose=PURPOSE, transport=channel)
        return list(gate.decrypt(self.records(), blobs=self.spool))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def server(live_server, transactional_db) -> str:
    return live_server.url


@pytest.fixture
def setup(server, display, tmp_path):
    """The default policy pack, an employee in Washington with consent for everything the agent captures."""
    # Made by a data migration, which a transactional test's flush removed.
    PolicyRevision.objects.get_or_create(pk=1)
    call_command("load_policy_pack", verbosity=0)
    user = make_user()
    employee = make_employee(country="US", subdivision="US-WA", user=user)
    grant_consent(employee, *CAPTURED)
    relay()
    _, device = token_issue(kind="device", name=DEVICE, employee=employee, device_id=DEVICE, actor=SYSTEM)
    _, personal = token_issue(kind="user", name="portal", user=user, actor=SYSTEM)
    _, pipeline = token_issue(kind="pipeline", name="trainer", purposes=[PURPOSE], actor=SYSTEM)
    editor = window(display, EDITOR)
    focus(display, editor)
    agents: list[AgentProcess] = []

    def start(url: str | None = None) -> AgentProcess:
        agent = AgentProcess(display, url or server, device, tmp_path / "spool")
        agents.append(agent)
        return agent

    yield {"employee": employee, "start": start, "editor": editor, "user_token": personal, "pipeline": pipeline}
    for agent in agents:
        agent.stop()
    editor.destroy()


def test_with_consent_the_agent_records_every_allowed_category(setup, display, server):
    agent = setup["start"]()
    agent.wait_until_capturing("keystrokes", "mouse_movement", "screenshots")

    with Typist(display, "hello"):
        time.sleep(2.5)
    output = agent.stop()
    records = agent.opened(server, setup["pipeline"])
    assert len(records) == len(agent.records()), output

    categories = {record["category"] for record in records}
    assert {"keystrokes", "keystroke_timing", "mouse_movement", "mouse_clicks", "screenshots", "app_usage"} <= (
        categories
    ), output
    typed = "".join(record["data"]["key"] for record in records if record["category"] == "keystrokes")
    assert "hello" in typed
    grants = {grant.id: grant for grant in CaptureGrant.objects.filter(employee=setup["employee"])}
    for record in records:
        grant = grants[record["grant_id"]]
        assert record["subject"] == grant.subject and record["purpose"] == PURPOSE
        assert record["id"].startswith("r_") and record["category"] in grant.categories
        assert grant.issued_at - timedelta(seconds=1) <= _time(record["captured_at"]) < grant.expires_at
    shot = next(record for record in records if record["category"] == "screenshots")
    assert shot["blob"][:8] == b"\x89PNG\r\n\x1a\n"
    assert not (agent.spool / shot["data"]["file"]).read_bytes().startswith(b"\x89PNG")
    assert "capturing" in output
    assert json.loads((agent.spool / "status.json").read_text())["state"] == "stopped"


def test_after_a_withdrawal_through_the_api_the_category_stops_within_two_seconds(setup, display, server):
    import urllib.request

    agent = setup["start"]()
    agent.wait_until_capturing("keystrokes", "mouse_movement")
    with Typist(display, "abc"):
        time.sleep(1.5)
        request = urllib.request.Request(  # noqa: S310 - the test's own live server
            f"{server}/api/v1/me/consent",
            method="PUT",
            data=json.dumps(
                {
                    "notice_version": _notice_version(),
                    "choices": [{"purpose": PURPOSE, "category": "keystrokes", "granted": False}],
                }
            ).encode(),
            headers={
                "Authorization": f"Bearer {setup['user_token']}",
                "Content-Type": "application/json",
                **BEHIND_TLS_PROXY,
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert response.status == 200
        committed = datetime.now(UTC)  # the withdrawal committed before its answer was sent
        time.sleep(4)
    output = agent.stop()
    records = agent.records()

    late = [
        record
        for record in records
        if record["category"] == "keystrokes" and _time(record["captured_at"]) > committed + timedelta(seconds=2)
    ]
    assert not late, output
    assert any(r["category"] == "keystrokes" and _time(r["captured_at"]) < committed for r in records)
    # The other categories carried on.
    assert any(
        r["category"] == "mouse_movement" and _time(r["captured_at"]) > committed + timedelta(seconds=2)
        for r in records
    )


def test_with_the_server_stopped_capture_ends_no_later_than_the_grants_expiry(setup, display, server, settings):
    settings.CONSENTRY_GRANT_LIFETIME_SECONDS = 4
    network = Relay(server)
    agent = setup["start"](network.url)
    try:
        agent.wait_until_capturing("keystrokes", "mouse_movement")
        with Typist(display, "xyz"):
            time.sleep(1.0)
            network.cut()
            cut = datetime.now(UTC)
            time.sleep(6)
            status = agent.status()
    finally:
        network.close()
    output = agent.stop()
    records = agent.records()

    grants = {grant.id: grant for grant in CaptureGrant.objects.filter(employee=setup["employee"])}
    assert all(_time(record["captured_at"]) < grants[record["grant_id"]].expires_at for record in records)
    last_expiry = max(grant.expires_at for grant in grants.values())
    assert last_expiry <= cut + timedelta(seconds=5)
    assert not [r for r in records if _time(r["captured_at"]) > last_expiry], output
    assert any(_time(r["captured_at"]) < cut for r in records)
    assert status["state"] == "offline" and status["allowed"] == []


def test_with_an_excluded_app_focused_no_keystroke_is_recorded(setup, display, server):
    agent = setup["start"]()
    agent.wait_until_capturing("keystrokes")
    vault = window(display, PASSWORD_MANAGER)
    try:
        focus(display, vault)
        eventually(lambda: agent.status().get("context", {}).get("app") == "com.1password.1password", within=10)
        xdotool(display, "type", "--delay", "30", "qqzzqq")
        focus(display, setup["editor"])
        agent.wait_until_capturing("keystrokes")
        xdotool(display, "type", "--delay", "30", "okok")
        time.sleep(1.0)
    finally:
        vault.destroy()
    output = agent.stop()
    records = agent.opened(server, setup["pipeline"])

    keys = [record["data"]["key"] for record in records if record["category"] == "keystrokes"]
    assert "q" not in keys and "z" not in keys, output
    assert "o" in keys and "k" in keys
    assert "excluded_context" in output


def _notice_version() -> int:
    return current_notice(at=timezone.now()).version
