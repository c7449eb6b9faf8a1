"""The capture and use engines in process, beside a hand-written chain of dict lookups.

    python bench/engine_bench.py [--iterations 200000]

Compiles the default policy pack (PostgreSQL database named by
BENCH_DATABASE_URL, recreated), then times ``decide_capture`` for a New York
employee asking for three categories in an ordinary app and web domain (so
every check runs, exclusions included), and ``decide_use`` for one record.
The baseline does as many dict look-ups as the capture decision needs, and
nothing else: the floor for any Python implementation of the same checks.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING

# Run as a script (python bench/engine_bench.py), which puts bench/ on the path; mypy reads bench as a package.
if TYPE_CHECKING:
    from bench.common import percentile, setup_django
else:
    from common import percentile, setup_django

# Look-ups a three-category capture decision makes against the default pack:
# chain memo, rules per code (2), purpose, notice, then per category the two
# precondition look-ups, consent, notice pair, re-consent map and category.
LOOKUPS = 23


def timed(function, iterations: int) -> tuple[list[float], list[float], float]:
    """Per-call wall and CPU latencies (µs, sorted), and calls per second from a loop without timers.

    CPU time (this thread's) is shown beside wall time because benchmarks may
    share the machine: a descheduled call inflates its wall time, not its CPU time.
    """
    for _ in range(min(iterations // 10, 10_000)):
        function()
    clock, cpu = time.perf_counter_ns, time.thread_time_ns
    wall_samples, cpu_samples = [], []
    for _ in range(iterations):
        start, start_cpu = clock(), cpu()
        function()
        cpu_samples.append((cpu() - start_cpu) / 1000)
        wall_samples.append((clock() - start) / 1000)
    wall_samples.sort()
    cpu_samples.sort()
    loop_start = time.perf_counter()
    for _ in range(iterations):
        function()
    return wall_samples, cpu_samples, iterations / (time.perf_counter() - loop_start)


def report(name: str, wall: list[float], cpu: list[float], rate: float) -> None:
    print(
        f"{name:<34} wall p50 {percentile(wall, 0.5):6.2f} µs  p99 {percentile(wall, 0.99):7.2f} µs   "
        f"cpu p50 {percentile(cpu, 0.5):6.2f} µs  p99 {percentile(cpu, 0.99):6.2f} µs   {rate:>10,.0f} /s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=200_000)
    args = parser.parse_args()
    setup_django()

    from decisions import engine
    from decisions.snapshot import build_policy

    _, policy = build_policy()
    at = datetime.now(UTC)
    since = at - timedelta(days=1)
    categories = ("keystrokes", "mouse_movement", "screenshots")
    purpose = "ai_agent_training"
    facts = engine.EmployeeFacts(
        hr_id="E1001",
        country="US",
        subdivision="US-NY",
        consents=MappingProxyType(
            {(purpose, c): engine.ConsentFacts("granted", policy.notices[-1].version, since) for c in categories}
        ),
        consent_version=3,
        acknowledgements=((policy.notices[-1].version, since),),
    )
    request = engine.CaptureRequest(
        purpose=purpose,
        categories=categories,
        context=engine.Context(app="com.microsoft.VSCode", domain="github.com"),
    )
    decision = engine.decide_capture(policy, facts, request, at=at)
    assert decision.allowed_categories == categories, decision

    grant = engine.GrantFacts(
        id="g_1",
        employee="E1001",
        subject="p_1",
        purpose=purpose,
        categories=frozenset(categories),
        issued_at=since,
        expires_at=since + timedelta(seconds=60),
        country="US",
        subdivision="US-NY",
    )
    record = engine.UseRecord("r1", "p_1", "keystrokes", since + timedelta(seconds=1), "g_1")
    assert engine.decide_use(policy, record=record, purpose=purpose, grant=grant, employee=facts, at=at) == ()

    tables = [{f"k{i}": f"k{i + 1}" for i in range(8)} for _ in range(LOOKUPS)]

    def baseline() -> str:
        key = "k0"
        for table in tables:
            key = table.get(key, "k0")
        return key

    print(f"engine: default pack, policy {policy.version[:12]}, {args.iterations:,} iterations")
    report(
        "capture decision (3 categories)",
        *timed(lambda: engine.decide_capture(policy, facts, request, at=at), args.iterations),
    )
    report(
        "use decision (1 record)",
        *timed(
            lambda: engine.decide_use(policy, record=record, purpose=purpose, grant=grant, employee=facts, at=at),
            args.iterations,
        ),
    )
    report(f"baseline: {LOOKUPS} chained dict look-ups", *timed(baseline, args.iterations))


if __name__ == "__main__":
    main()
