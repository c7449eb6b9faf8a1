"""The capture decision over HTTP under gunicorn, beside a bare Django JSON view on the same server.

    python bench/capture_http_bench.py [--seconds 10] [--clients 8] [--workers 2]

Sets up the default pack with 200 consented employees and their device
tokens in a fresh PostgreSQL database (BENCH_DATABASE_URL), starts gunicorn
on loopback, then for each endpoint:

1. saturation: ``--clients`` concurrent closed-loop clients for ``--seconds``;
2. half load: an open-loop schedule at half the saturated rate, latency
   measured from each request's scheduled start (no coordinated omission).

The capture requests are allowed, so each one signs a grant and queues its
audit entry: the expensive path. A sealer process chains the queue every
second throughout, as beat does in production, sharing the same cores. A second run uses employees in a blocked
region, whose decisions deny (no grant, no audit entry, one counter upsert).
Clients run in separate processes on the same machine as the server, so they
share its cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import threading
import time
from typing import TYPE_CHECKING

# Run as a script (python bench/capture_http_bench.py), which puts bench/ on the path; mypy reads bench as a package.
if TYPE_CHECKING:
    from bench.common import children_of, cpu_seconds, gunicorn, percentile, setup_django
else:
    from common import children_of, cpu_seconds, gunicorn, percentile, setup_django

EMPLOYEES = 200
CAPTURE_BODY = json.dumps(
    {
        "purpose": "ai_agent_training",
        "categories": ["keystrokes", "mouse_movement", "screenshots"],
        "context": {"app": "com.microsoft.VSCode", "domain": "github.com"},
    }
).encode()


def prepare() -> tuple[list[str], list[str]]:
    setup_django()
    from django.utils import timezone

    from audit.actors import Actor
    from consent.services import consent_grant
    from governance.selectors import current_notice
    from people.services import employee_provision
    from people.tokens import token_issue

    actor = Actor.system("bench")
    notice = current_notice(at=timezone.now())
    assert notice is not None, "no notice in force: load a policy pack first"
    tokens = []
    for index in range(EMPLOYEES):
        employee = employee_provision(
            hr_id=f"B{index:05d}", display_name=f"Bench {index}", country="US", subdivision="US-WA", actor=actor
        )
        consent_grant(
            employee=employee,
            notice=notice,
            choices=[("ai_agent_training", c) for c in ("keystrokes", "mouse_movement", "screenshots")],
            actor=actor,
        )
        _, raw = token_issue(kind="device", name=f"d{index}", employee=employee, device_id=f"d{index}", actor=actor)
        tokens.append(raw)
    # Employees in Germany: every decision is a denial (no grant, no audit entry, a counter bump).
    blocked = []
    for index in range(EMPLOYEES):
        employee = employee_provision(
            hr_id=f"D{index:05d}", display_name=f"Blocked {index}", country="DE", subdivision="DE-BE", actor=actor
        )
        _, raw = token_issue(kind="device", name=f"b{index}", employee=employee, device_id=f"b{index}", actor=actor)
        blocked.append(raw)
    return tokens, blocked


def request_once(port: int, path: str, token: str | None) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request("POST", path, body=CAPTURE_BODY if token else b"{}", headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")


def _client_process(port, path, tokens, threads, begin, deadline, interval, first, total, queue) -> None:
    """Closed loop when ``interval`` is 0, else one request every ``interval`` seconds per thread.

    Open-loop threads are spread evenly over the interval (this process's are
    numbers ``first`` to ``first + threads - 1`` of ``total``): started
    together they would arrive in bursts of ``total`` requests, and the
    latency measured would be the queue of each burst, not the server's.
    """
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def run(thread_index: int) -> None:
        mine: list[float] = []
        count = 0
        time.sleep(max(0.0, begin - time.monotonic()))
        start = begin + (first + thread_index) * interval / total
        while True:
            scheduled = start + count * interval if interval else time.monotonic()
            if scheduled >= deadline:
                break
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            token = tokens[(thread_index * 7919 + count) % len(tokens)] if tokens else None
            try:
                request_once(port, path, token)
            except Exception:  # noqa: BLE001 - counted and reported
                with lock:
                    errors[0] += 1
            mine.append(time.monotonic() - scheduled)
            count += 1
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((latencies, errors[0]))


def load(port: int, path: str, tokens: list[str], *, clients: int, seconds: float, rate: float = 0.0) -> dict:
    """Run ``clients`` clients (two processes) for ``seconds``; open loop at ``rate`` requests/s if given."""
    processes = 2
    per_process = max(1, clients // processes)
    interval = (clients / rate) if rate else 0.0
    # A common start a little ahead, so the processes' threads keep their spacing (the clock is system-wide).
    begin = time.monotonic() + 0.3
    deadline = begin + seconds
    queue: multiprocessing.Queue = multiprocessing.Queue()
    children = [
        multiprocessing.Process(
            target=_client_process,
            args=(
                port,
                path,
                tokens[i::processes],
                per_process,
                begin,
                deadline,
                interval,
                i * per_process,
                clients,
                queue,
            ),
        )
        for i in range(processes)
    ]
    for child in children:
        child.start()
    latencies: list[float] = []
    errors = 0
    for _ in children:
        got, failed = queue.get()
        latencies.extend(got)
        errors += failed
    for child in children:
        child.join()
    elapsed = time.monotonic() - begin
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "errors": errors,
        "count": len(latencies),
    }


def _seal_every(seconds: float, stop, sealed) -> None:
    """What beat's ``audit.queue_seal`` does: chain the queued grant entries every ``seconds``."""
    from django.db import connection

    from audit.services import queue_seal

    try:
        while not stop.wait(seconds):
            sealed.value += queue_seal()
        sealed.value += queue_seal()
    finally:
        connection.close()


def show(name: str, result: dict) -> None:
    cpu = f"   server CPU {result['cpu_ms']:.2f} ms/req" if "cpu_ms" in result else ""
    print(
        f"{name:<38} {result['rate']:8.0f} req/s   p50 {result['p50']:7.2f} ms   p99 {result['p99']:7.2f} ms"
        f"   ({result['count']} requests, {result['errors']} errors){cpu}"
    )


def measured(server, *args, **kwargs) -> dict:
    """``load`` plus the gunicorn workers' CPU time per request: independent of what else runs on the machine."""
    workers = children_of(server.pid)
    before = cpu_seconds(workers)
    result = load(*args, **kwargs)
    result["cpu_ms"] = (cpu_seconds(workers) - before) * 1000 / max(result["count"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (gthread when > 1)")
    args = parser.parse_args()
    tokens, blocked = prepare()
    from django.db import connections

    connections.close_all()
    stop, sealed = multiprocessing.Event(), multiprocessing.Value("q", 0)
    sealer = multiprocessing.Process(target=_seal_every, args=(1.0, stop, sealed))
    sealer.start()
    with gunicorn(workers=args.workers, threads=args.threads) as (port, server):
        for token in tokens[:4]:
            request_once(port, "/api/v1/decisions/capture", token)
        request_once(port, "/bench/bare", None)
        kind = f"{args.threads} threads each" if args.threads > 1 else "sync"
        print(f"gunicorn: {args.workers} workers, {kind}; {args.clients} clients; {multiprocessing.cpu_count()} CPUs")
        print(f"load average at start: {os.getloadavg()[0]:.1f}")
        bare = measured(server, port, "/bench/bare", [], clients=args.clients, seconds=args.seconds)
        show("bare JSON view, saturated", bare)
        capture = measured(
            server, port, "/api/v1/decisions/capture", tokens, clients=args.clients, seconds=args.seconds
        )
        show("capture decision, saturated", capture)
        denied = measured(
            server, port, "/api/v1/decisions/capture", blocked, clients=args.clients, seconds=args.seconds
        )
        show("capture denied (no grant), saturated", denied)
        print(f"capture / bare throughput: {capture['rate'] / bare['rate']:.2f}x (target >= 0.5x)")
        half = load(
            port,
            "/api/v1/decisions/capture",
            tokens,
            clients=args.clients,
            seconds=args.seconds,
            rate=capture["rate"] / 2,
        )
        show("capture decision, half of saturation", half)
        bare_half = load(port, "/bench/bare", [], clients=args.clients, seconds=args.seconds, rate=bare["rate"] / 2)
        show("bare JSON view, half of saturation", bare_half)
        print(f"capture p99 at half load: {half['p99']:.2f} ms (target <= 10 ms)")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    stop.set()
    sealer.join()
    from audit.models import AuditQueuedEntry
    from audit.verifiers import verify_live

    report = verify_live()
    print(
        f"grant entries sealed during the run: {sealed.value:,}; left queued: {AuditQueuedEntry.objects.count()};"
        f" chain verified: {report.ok} ({report.size:,} entries)"
    )


if __name__ == "__main__":
    main()
