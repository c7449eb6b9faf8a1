"""Revocation propagation and the capture gate's check, against gunicorn on PostgreSQL.

    python bench/client_bench.py [--trials 200] [--workers 2] [--threads 8]

Sets up the default pack, one consented employee and a device token in a
fresh PostgreSQL database (BENCH_DATABASE_URL), starts gunicorn on loopback,
and measures:

1. propagation: ``--trials`` times, consent is granted again, then withdrawn
   in this process; the clock starts when the withdrawal commits (an
   on-commit hook registered before the service runs) and stops when
   (a) a raw long poll (``GET /api/v1/revocations?wait=25``) held open in a
   thread receives the event, and (b) a running ``CaptureGate`` stops
   allowing the category. Baseline: the round trip of ``GET /health`` on the
   same server, in the same run;
2. the check: the cost of one ``CaptureGate.may_capture`` (and ``allows``)
   call with a live grant, beside a dict lookup and a frozenset membership
   test, timed with ``timeit`` in this process.

The relay runs after the commit in this process (the outbox kick), its NOTIFY
reaches the listener thread of every gunicorn worker, which wakes the
waiting request. Nothing here is a pass or fail: it prints figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import statistics
import sys
import threading
import time
import timeit
from pathlib import Path
from typing import TYPE_CHECKING

# Run as a script (python bench/client_bench.py), which puts bench/ on the path; mypy reads bench as a package.
if TYPE_CHECKING:
    from bench.common import ROOT, gunicorn, percentile, setup_django
else:
    from common import ROOT, gunicorn, percentile, setup_django

sys.path.insert(0, str(ROOT / "client"))

PURPOSE = "ai_agent_training"
CATEGORY = "keystrokes"
DEVICE = "bench-laptop"


def prepare():
    setup_django()
    from django.utils import timezone

    from audit.actors import Actor
    from consent.services import consent_grant
    from governance.selectors import current_notice
    from people.services import employee_provision
    from people.tokens import token_issue

    actor = Actor.system("bench")
    employee = employee_provision(
        hr_id="B-REVOKE", display_name="Bench", country="US", subdivision="US-WA", actor=actor
    )
    notice = current_notice(at=timezone.now())
    assert notice is not None, "no notice in force: load a policy pack first"
    consent_grant(
        employee=employee,
        notice=notice,
        choices=[(PURPOSE, CATEGORY), (PURPOSE, "mouse_movement")],
        actor=actor,
    )
    _, raw = token_issue(kind="device", name=DEVICE, employee=employee, device_id=DEVICE, actor=actor)
    return employee, raw, actor


def summary(name: str, values_ms: list[float]) -> str:
    ordered = sorted(values_ms)
    return (
        f"{name:<42} n={len(ordered):>4}  p50={percentile(ordered, 0.50):8.2f} ms  "
        f"p90={percentile(ordered, 0.90):8.2f} ms  p99={percentile(ordered, 0.99):8.2f} ms  "
        f"max={ordered[-1]:8.2f} ms"
    )


class LongPoller(threading.Thread):
    """Holds a long poll open at all times; puts (receipt time, event) on a queue."""

    def __init__(self, port: int, token: str, cursor: str) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.cursor = port, token, cursor
        self.received: queue.Queue = queue.Queue()
        self.stopping = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=40)
        while not self.stopping.is_set():
            conn.request(
                "GET",
                f"/api/v1/revocations?after={self.cursor}&wait=25",
                headers={"Authorization": f"Bearer {self.token}"},
            )
            response = conn.getresponse()
            body = json.loads(response.read())
            now = time.monotonic()
            for event in body["events"]:
                self.received.put((now, event))
            self.cursor = body["cursor"]


def health_rtts(port: int, count: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    values = []
    for _ in range(count):
        start = time.perf_counter()
        conn.request("GET", "/health")
        conn.getresponse().read()
        values.append((time.perf_counter() - start) * 1000)
    return values


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--checks", type=int, default=1_000_000)
    args = parser.parse_args()

    employee, token, actor = prepare()
    from consentry_client import CaptureGate, Context
    from django.db import transaction
    from django.utils import timezone

    from consent.services import consent_grant, consent_withdraw
    from decisions.revocations import feed_head, format_cursor
    from governance.selectors import current_notice

    editor = Context(app="com.microsoft.VSCode")
    with gunicorn(workers=args.workers, threads=args.threads) as (port, _server):
        url = f"http://127.0.0.1:{port}"
        poller = LongPoller(port, token, format_cursor(feed_head()))
        poller.start()
        gate = CaptureGate(
            url, token, device_id=DEVICE, purpose=PURPOSE, categories=[CATEGORY, "mouse_movement"], recheck_denied=0.05
        )
        gate.set_context(editor)
        gate.start()
        deadline = time.monotonic() + 30
        while not gate.may_capture(CATEGORY, editor):
            if time.monotonic() > deadline:
                raise SystemExit(f"the gate never allowed capture: {gate.status()}")
            time.sleep(0.01)
        time.sleep(1)  # every worker's listener is up and every waiter parked

        baseline = health_rtts(port, args.trials)
        feed_ms, gate_ms, relay_ms = [], [], []
        notice = current_notice(at=timezone.now())
        assert notice is not None, "no notice in force: load a policy pack first"
        for _ in range(args.trials):
            consent_grant(employee=employee, notice=notice, choices=[(PURPOSE, CATEGORY)], actor=actor)
            gate.refresh()
            deadline = time.monotonic() + 30
            while not gate.may_capture(CATEGORY, editor):
                if time.monotonic() > deadline:
                    raise SystemExit(f"the gate did not allow again: {gate.status()}")
                time.sleep(0.002)
            committed: list[float] = []
            with transaction.atomic():
                # Runs first after commit, before the outbox kick: the moment the withdrawal is durable.
                def note_commit(done: list[float] = committed) -> None:
                    done.append(time.monotonic())

                transaction.on_commit(note_commit)
                consent_withdraw(employee=employee, purpose=PURPOSE, categories=[CATEGORY], actor=actor)
            relay_ms.append((time.monotonic() - committed[0]) * 1000)
            while gate.may_capture(CATEGORY, editor):
                time.sleep(0.0002)
            gate_ms.append((time.monotonic() - committed[0]) * 1000)
            received, event = poller.received.get(timeout=30)
            assert event["type"] == "consent_withdrawn", event
            feed_ms.append((received - committed[0]) * 1000)
            time.sleep(0.02)

        print(f"PostgreSQL, gunicorn {args.workers} workers x {args.threads} threads, loopback, {os.cpu_count()} cores")
        print(summary("baseline: GET /health round trip", baseline))
        print(summary("commit -> relay done (in the writer)", relay_ms))
        print(summary("commit -> long poll receives the event", feed_ms))
        print(summary("commit -> CaptureGate stops allowing", gate_ms))

        # 2. The check itself, with a live grant.
        while not gate.may_capture("mouse_movement", editor):
            time.sleep(0.01)
        allowed = {"mouse_movement": True}
        members = frozenset({"mouse_movement"})
        number = args.checks
        timings = {
            "baseline: dict.get": min(timeit.repeat(lambda: allowed.get("mouse_movement"), number=number, repeat=5)),
            "baseline: frozenset membership": min(
                timeit.repeat(lambda: "mouse_movement" in members, number=number, repeat=5)
            ),
            "CaptureGate.may_capture(category, context)": min(
                timeit.repeat(lambda: gate.may_capture("mouse_movement", editor), number=number, repeat=5)
            ),
            "CaptureGate.allows(category, context)": min(
                timeit.repeat(lambda: gate.allows("mouse_movement", editor), number=number, repeat=5)
            ),
            "CaptureGate.may_capture(category)": min(
                timeit.repeat(lambda: gate.may_capture("mouse_movement"), number=number, repeat=5)
            ),
        }
        assert gate.may_capture("mouse_movement", editor), "the grant lapsed during the measurement"
        for name, seconds in timings.items():
            print(f"{name:<46} {seconds / number * 1e9:8.1f} ns per call  (best of 5 x {number:,})")
        gate.stop()
        poller.stopping.set()
        print(f"python {sys.version.split()[0]}, stdev of gate latency {statistics.pstdev(gate_ms):.2f} ms")
    Path(ROOT / ".state" / "bench").mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    main()
