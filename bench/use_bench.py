"""The use decision for 1,000,000 records over 10,000 employees: in process and over HTTP NDJSON.

    python bench/use_bench.py [--records 1000000] [--employees 10000] [--grants-per-employee 10]

Builds, in a fresh PostgreSQL database (BENCH_DATABASE_URL): the default
pack, the employees, their consent (a tenth have withdrawn one category),
and their capture grants; rows are bulk-inserted (a benchmark fixture, not
the product path). Writes the records as NDJSON to a file, in random order
across employees, with a few unknown grant ids mixed in.

In process: the file is streamed through the same code the endpoint runs
(block reader → validation → chunked evaluation → result lines), beside a
baseline that only parses each line and writes a constant result line.
Over HTTP: the file is POSTed to gunicorn on loopback as NDJSON while the
answer is read concurrently, once with a tenth of the records and once with
all of them, so the server's peak memory can be compared.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

# Run as a script (python bench/use_bench.py), which puts bench/ on the path; mypy reads bench as a package.
if TYPE_CHECKING:
    from bench.common import ROOT, children_of, cpu_seconds, gunicorn, peak_rss_mb, rss_mb, setup_django
else:
    from common import ROOT, children_of, cpu_seconds, gunicorn, peak_rss_mb, rss_mb, setup_django

PURPOSE = "ai_agent_training"
CATEGORIES = ("keystrokes", "mouse_movement", "screenshots")


def prepare(employees: int, grants_per_employee: int, records: int, path: Path) -> str:
    """Fill the database and write the NDJSON file; returns a pipeline token."""
    setup_django()
    from audit.actors import Actor
    from consent.models import ConsentEvent, ConsentState
    from decisions.models import CaptureGrant
    from decisions.pseudonyms import pseudonym
    from governance.models import Notice
    from people.models import Employee
    from people.tokens import token_issue

    rng = random.Random(7)
    notice = Notice.objects.get(version=1)
    now = datetime.now(UTC)
    people = Employee.objects.bulk_create(
        Employee(hr_id=f"U{i:06d}", display_name=f"U{i}", country="US", subdivision="US-WA") for i in range(employees)
    )
    events: list[ConsentEvent] = []
    version: dict[int, int] = {}
    for person in people:
        for category in CATEGORIES:
            version[person.pk] = version.get(person.pk, 0) + 1
            events.append(
                ConsentEvent(
                    employee=person,
                    purpose_id=PURPOSE,
                    category_id=category,
                    kind="granted",
                    notice=notice,
                    channel="import",
                    actor="bench",
                    at=now - timedelta(days=20),
                    expires_at=now + timedelta(days=300),
                    version=version[person.pk],
                    receipt_id=f"rcpt_{person.pk}_{category}",
                )
            )
    events = ConsentEvent.objects.bulk_create(events, batch_size=5000)
    states = []
    for event in events:
        withdrawn = event.employee.pk % 10 == 0 and event.category_id == "screenshots"
        states.append(
            ConsentState(
                employee_id=event.employee_id,
                purpose_id=PURPOSE,
                category_id=event.category_id,
                state="withdrawn" if withdrawn else "granted",
                since=event.at,
                notice=notice,
                expires_at=None if withdrawn else event.expires_at,
                last_event=event,
                version=event.version,
                withdrawn_at=now - timedelta(hours=1) if withdrawn else None,
            )
        )
    ConsentState.objects.bulk_create(states, batch_size=5000)
    grants = []
    for person in people:
        subject = pseudonym(purpose=PURPOSE, hr_id=person.hr_id)
        for index in range(grants_per_employee):
            issued = now - timedelta(days=10, minutes=index * 7)
            grants.append(
                CaptureGrant(
                    id=f"g_{person.pk}_{index}",
                    employee=person,
                    device_id="laptop",
                    purpose_id=PURPOSE,
                    categories=list(CATEGORIES),
                    subject=subject,
                    country="US",
                    subdivision="US-WA",
                    policy_version="bench",
                    consent_version=3,
                    issued_at=issued,
                    expires_at=issued + timedelta(seconds=60),
                )
            )
    CaptureGrant.objects.bulk_create(grants, batch_size=5000)
    with path.open("w") as handle:
        for index in range(records):
            grant = grants[rng.randrange(len(grants))]
            captured = grant.issued_at + timedelta(seconds=rng.randrange(60))
            handle.write(
                json.dumps(
                    {
                        "id": f"r{index}",
                        "subject": grant.subject,
                        "category": rng.choice(CATEGORIES),
                        "captured_at": captured.isoformat().replace("+00:00", "Z"),
                        "grant_id": grant.id if index % 1000 else "g_unknown",
                    }
                )
                + "\n"
            )
    _, raw = token_issue(kind="pipeline", name="bench", purposes=[PURPOSE], actor=Actor.system("bench"))
    settle()
    return raw


def settle() -> None:
    """What autovacuum does to a live database: statistics for the planner, visibility for index-only reads.

    Without it the first run reads freshly bulk-loaded tables (setting hint
    bits, planning without statistics) and measures the fixture, not the product.
    """
    import gc

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    gc.collect()


def in_process(path: Path) -> dict:
    from django.utils import timezone

    from decisions.snapshot import current_policy
    from decisions.usebatch import InvalidRecord, UseEvaluator, ndjson_lines, parse_line, result_blocks

    evaluator = UseEvaluator(policy=current_policy(), purpose=PURPOSE, at=timezone.now())
    out_bytes, samples = 0, []
    start, start_cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as handle:
        lines = ndjson_lines(handle)
        items = (line if type(line) is InvalidRecord else parse_line(line) for line in lines)
        for number, block in enumerate(result_blocks(evaluator, items)):
            out_bytes += len(block)
            if number % 50 == 0:
                samples.append(rss_mb())
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    total = evaluator.allowed + evaluator.denied
    return {
        "records": total,
        "seconds": elapsed,
        "rate": total / elapsed,
        "cpu_rate": total / cpu,
        "rss": samples,
        "summary": evaluator.summary(),
    }


def baseline(path: Path) -> dict:
    """Parse each line and write a constant result: the floor of any NDJSON service in Python."""
    count, start, start_cpu = 0, time.perf_counter(), time.process_time()
    with path.open("rb") as handle:
        for line in handle:
            record = json.loads(line)
            json.dumps({"id": record["id"], "allowed": True, "reasons": []})
            count += 1
    elapsed = time.perf_counter() - start
    return {
        "records": count,
        "seconds": elapsed,
        "rate": count / elapsed,
        "cpu_rate": count / (time.process_time() - start_cpu),
    }


def over_http(port: int, token: str, path: Path, server) -> dict:
    size = path.stat().st_size
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.putrequest("POST", f"/api/v1/decisions/use?purpose={PURPOSE}")
    connection.putheader("Authorization", f"Bearer {token}")
    connection.putheader("Content-Type", "application/x-ndjson")
    connection.putheader("Content-Length", str(size))
    workers = children_of(server.pid)
    start, start_cpu = time.perf_counter(), cpu_seconds(workers)
    connection.endheaders()

    def send() -> None:
        # Results stream back while the body is still going out: read them concurrently.
        with path.open("rb") as handle:
            connection.sock.sendfile(handle)

    sender = threading.Thread(target=send)
    sender.start()
    response = connection.getresponse()
    assert response.status == 200, response.read()[:500]
    lines, last = 0, b""
    for line in response:
        lines += 1
        last = line
    elapsed = time.perf_counter() - start
    sender.join()
    summary = json.loads(last)
    records = lines - 1
    return {
        "records": records,
        "seconds": elapsed,
        "rate": records / elapsed,
        "cpu_rate": records / max(cpu_seconds(workers) - start_cpu, 1e-9),
        "summary": summary.get("summary"),
    }


def head(source: Path, target: Path, lines: int) -> None:
    with source.open("rb") as src, target.open("wb") as dst:
        for _, line in zip(range(lines), src, strict=False):
            dst.write(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--grants-per-employee", type=int, default=10)
    parser.add_argument("--reuse", action="store_true", help="keep the database and records of the previous run")
    args = parser.parse_args()
    work = ROOT / ".state" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    data = work / "records.ndjson"
    small = work / "records-tenth.ndjson"
    started = time.perf_counter()
    saved = work / "pipeline-token"
    if args.reuse and data.exists():
        setup_django(fresh=False)
        if not saved.exists():
            from audit.actors import Actor
            from people.tokens import token_issue

            saved.write_text(
                token_issue(kind="pipeline", name="bench", purposes=[PURPOSE], actor=Actor.system("bench"))[1]
            )
        token = saved.read_text()
    else:
        token = prepare(args.employees, args.grants_per_employee, args.records, data)
        saved.write_text(token)
    head(data, small, args.records // 10)
    print(
        f"setup: {args.employees:,} employees, {args.employees * args.grants_per_employee:,} grants, "
        f"{args.records:,} records ({data.stat().st_size / 1e6:.0f} MB NDJSON) in {time.perf_counter() - started:.0f} s"
    )

    floor = baseline(data)
    print(
        f"baseline (parse + constant line)   {floor['rate']:>10,.0f} records/s   "
        f"{floor['cpu_rate']:>10,.0f} per CPU-second"
    )
    result = in_process(data)
    rss = result["rss"]
    print(
        f"in process                         {result['rate']:>10,.0f} records/s   "
        f"{result['cpu_rate']:>10,.0f} per CPU-second   "
        f"{result['records']:,} records in "
        f"{result['seconds']:.1f} s   RSS {rss[0]:.0f} MB after the first chunk, {max(rss):.0f} MB peak, "
        f"{rss[-1]:.0f} MB at the end   (target >= 100,000 records/s)"
    )
    print(f"  summary: {result['summary']}")

    with gunicorn(workers=2, timeout=600) as (port, server):
        small_run = over_http(port, token, small, server)
        small_peak = max(peak_rss_mb(pid) for pid in children_of(server.pid))
        full = over_http(port, token, data, server)
        full_peak = max(peak_rss_mb(pid) for pid in children_of(server.pid))
    print(
        f"HTTP NDJSON, {small_run['records']:>9,} records  {small_run['rate']:>10,.0f} records/s   "
        f"{small_run['cpu_rate']:>10,.0f} per worker CPU-second   worker peak RSS {small_peak:.0f} MB"
    )
    print(
        f"HTTP NDJSON, {full['records']:>9,} records  {full['rate']:>10,.0f} records/s   "
        f"{full['cpu_rate']:>10,.0f} per worker CPU-second   worker peak RSS {full_peak:.0f} MB   "
        "(target >= 50,000 records/s, flat memory)"
    )
    print(f"  summary: {full['summary']}")
    os.remove(small)


if __name__ == "__main__":
    main()
