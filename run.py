#!/usr/bin/env python3
"""Set up and run Consentry with nothing but Python installed.

    python3 run.py                 set up, then start web server, Celery worker and
                                   beat on SQLite and the embedded broker, with the
                                   default policy pack and demo data
    python3 run.py manage CMD ...  set up, then run a management command
                                   (python manage.py CMD ... in the virtualenv);
                                   exits with the command's status
    python3 run.py test [ARGS]     set up, then lint and run the whole test suite on
                                   SQLite and on PostgreSQL (ARGS go to pytest)
    python3 run.py setup           only create the virtualenv and install dependencies
    python3 run.py clean           delete the local state (database, queue, secrets)

Uses only the standard library until the virtualenv exists. Safe to run again:
every step is idempotent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("CONSENTRY_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
# The management commands every start runs, in order. Each is safe to run again: the
# default pack seeds a new installation only, so a restart never touches the policy legal
# maintains, and the demo only adds what is missing.
START_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("migrate", "--noinput", "-v", "0"),
    ("collectstatic", "--noinput", "-v", "0"),
    ("load_policy_pack", "--if-empty"),
    ("load_demo",),
)


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(*args: str | Path, env: dict[str, str] | None = None, check: bool = True) -> int:
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)  # noqa: S603
    if check and result.returncode != 0:
        sys.exit(f"command failed ({result.returncode}): {' '.join(map(str, args))}")
    return result.returncode


def _stamp(requirements: str) -> Path:
    """The marker file saying ``requirements`` (and the runtime set) are installed as they are now."""
    wanted = hashlib.sha256()
    for name in sorted({requirements, "requirements.txt"}):
        wanted.update((ROOT / name).read_bytes())
    return VENV / f".installed-{Path(requirements).stem}-{wanted.hexdigest()[:16]}"


def ensure_venv(requirements: str) -> None:
    """Create .venv and install ``requirements`` unless the same set is already installed."""
    if not PY.exists():
        say(f"creating virtualenv in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = _stamp(requirements)
    # The test requirements include the runtime ones, so a current test install will do for running.
    if stamp.exists() or (requirements == "requirements.txt" and _stamp("requirements-dev.txt").exists()):
        return
    say(f"installing {requirements}")
    run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements)
    # Exactly 16 characters of digest: "requirements-*" must not match "requirements-dev-…".
    for old in VENV.glob(f".installed-{Path(requirements).stem}-{'?' * 16}"):
        old.unlink()
    stamp.touch()


def manage(*args: str, env: dict[str, str]) -> None:
    run(PY, "manage.py", *args, env=env)


def manage_command(args: list[str]) -> int:
    """Run ``manage.py`` with ``args`` in the virtualenv; returns its exit status."""
    ensure_venv("requirements.txt")
    if not args:
        args = ["help"]
    # The local defaults ``start`` uses, so a command sees the same state folder and settings.
    env = {**os.environ}
    env.setdefault("DJANGO_DEBUG", "true")
    try:
        return subprocess.run([str(PY), "manage.py", *args], cwd=ROOT, env=env).returncode  # noqa: S603
    except KeyboardInterrupt:
        return 130


class StartupFailed(Exception):
    """The web server did not come up: it exited, or did not answer in time."""


def wait_for_port(
    port: int,
    *,
    process: subprocess.Popen | None = None,
    host: str = "127.0.0.1",
    timeout: float = 60.0,
    interval: float = 0.2,
) -> None:
    """Return once ``host:port`` accepts a connection; raise ``StartupFailed`` if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise StartupFailed(
                f"the web server exited with status {process.returncode} before it answered on {host}:{port}; "
                "its output is above"
            )
        try:
            with socket.create_connection((host, port), timeout=interval):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise StartupFailed(f"the web server did not answer on {host}:{port} within {timeout:g} seconds")
        time.sleep(interval)


def start() -> None:
    ensure_venv("requirements.txt")
    env = {**os.environ}
    env.setdefault("DJANGO_DEBUG", "true")
    env.setdefault("PYTHONUNBUFFERED", "1")
    port = env.get("CONSENTRY_PORT", "8000")
    for command in START_COMMANDS:
        manage(*command, env=env)
    processes = {
        "web": [PY, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "worker": [BIN / "celery", "-A", "consentry", "worker", "--loglevel", "INFO", "--concurrency", "2"],
        "beat": [BIN / "celery", "-A", "consentry", "beat", "--loglevel", "INFO"],
    }
    children = {
        name: subprocess.Popen([str(a) for a in cmd], cwd=ROOT, env=env)  # noqa: S603
        for name, cmd in processes.items()
    }

    def stop(*_: object) -> None:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()

    def stop_and_exit(*_: object) -> None:
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop_and_exit)
    # Say it is running only once it is: the port answers.
    try:
        wait_for_port(int(port), process=children["web"])
    except StartupFailed as failure:
        stop()
        sys.exit(f"Consentry did not start: {failure}; stopped the worker and beat")
    except KeyboardInterrupt:
        say("stopping")
        stop()
        return
    say(f"Consentry is running at http://127.0.0.1:{port}/  (admin: /admin/, API docs: /api/docs/)")
    say("sign in with a demo login printed above; legal, approver and auditor logins enrol TOTP (docs/sign-in.md)")
    say("press Ctrl-C to stop web server, worker and beat")
    try:
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    stop()
                    sys.exit(f"{name} exited with status {child.returncode}; stopped the others")
            time.sleep(1)
    except KeyboardInterrupt:
        say("stopping")
        stop()


def postgres_reachable(url: str) -> bool:
    probe = "import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=5).close()"
    dsn = url.replace("postgres://", "postgresql://", 1)
    return subprocess.run([str(PY), "-c", probe, dsn], capture_output=True).returncode == 0  # noqa: S603


E2E = ROOT / "e2e"


def ensure_axe() -> None:
    """Install axe-core (pinned in e2e/package-lock.json) for the accessibility checks."""
    if (E2E / "node_modules" / "axe-core" / "axe.min.js").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        say("npm not found: accessibility checks will be skipped (or fail in CI)")
        return
    say("installing axe-core for the accessibility checks (npm ci)")
    run(npm, "ci", "--prefix", E2E, "--no-audit", "--no-fund", check=False)


def ensure_system_packages(packages: list[str]) -> None:
    """Install the Debian packages the tests need that are missing (only where apt-get exists; CI runs as root).

    Without them the tests that need them are skipped, not failed, so a
    machine without apt-get (or without root) still runs the rest.
    """
    apt, dpkg = shutil.which("apt-get"), shutil.which("dpkg-query")
    if not apt or not dpkg:
        say(f"no apt-get: install {' '.join(packages)} by hand, or the tests that need them are skipped")
        return
    missing = [
        package
        for package in packages
        if subprocess.run([dpkg, "-W", "-f=${Status}", package], capture_output=True, text=True).stdout.strip()  # noqa: S603
        != "install ok installed"
    ]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else [shutil.which("sudo") or "sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say(f"installing system packages: {' '.join(missing)}")
    subprocess.run([*sudo, apt, "update", "-qq"], env=env, check=False)  # noqa: S603
    install = [*sudo, apt, "install", "-y", "-qq", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env).returncode != 0:  # noqa: S603
        say(f"could not install {' '.join(missing)}; the tests that need them will be skipped")


def test(args: list[str]) -> None:
    ensure_venv("requirements-dev.txt")
    # Browser tests drive Debian's chromium (never a downloaded browser); the capture
    # agent's end-to-end tests need a virtual X display and xdotool to type into it.
    ensure_system_packages(["chromium", "xvfb", "xdotool"])
    ensure_axe()
    say("ruff check")
    run(BIN / "ruff", "check", ".")
    say("ruff format --check")
    run(BIN / "ruff", "format", "--check", ".")
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    base["DJANGO_DEBUG"] = "false"
    base.setdefault("CONSENTRY_STATE_DIR", str(ROOT / ".state" / "test"))
    say("mypy")
    run(BIN / "mypy", env=base)
    manage("check", "--deploy", "--fail-level", "WARNING", env=base)
    say("tests on SQLite")
    run(PY, "-m", "pytest", *args, env=base)
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    if not postgres_reachable(url):
        sys.exit(f"PostgreSQL is not reachable at {url}; start it or set TEST_DATABASE_URL.")
    say(f"tests on PostgreSQL ({url.rsplit('@', 1)[-1]})")
    run(PY, "-m", "pytest", *args, env={**base, "DATABASE_URL": url})
    say("all checks passed")


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    if command == "start":
        start()
    elif command == "test":
        test(sys.argv[2:])
    elif command == "manage":
        sys.exit(manage_command(sys.argv[2:]))
    elif command == "setup":
        ensure_venv("requirements-dev.txt")
    elif command == "clean":
        shutil.rmtree(ROOT / ".state", ignore_errors=True)
        say("removed local state (database, broker queue, generated secrets)")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
