"""Data keys: key release in a 1,000,000-record use decision, and shredding throughput.

    python bench/keys_bench.py [--records 1000000] [--employees 1000] [--shred 10000]

Builds, in a fresh PostgreSQL database (BENCH_DATABASE_URL, default
``h7keys_bench``): the default pack, employees with consent, capture grants
spread over ten UTC days and the data key of each employee × category × day
(bulk-inserted: a fixture, not the product path). Then, in process, through
the code the endpoint runs:

- the use decision over the NDJSON records without ``release_keys`` (the
  baseline), then with it, including writing the summary line with every
  released key: records/s, keys/s, bytes of the answer;
- shredding: the sweep destroying ``--shred`` overdue keys (tombstone, one
  audit entry per key, revocations), beside a plain batched row delete of as
  many keys (the baseline: what deleting costs without any evidence).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

# Run as a script (python bench/keys_bench.py), which puts bench/ on the path; mypy reads bench as a package.
if TYPE_CHECKING:
    from bench.common import ROOT, rss_mb, setup_django
else:
    from common import ROOT, rss_mb, setup_django

PURPOSE = "ai_agent_training"
CATEGORIES = ("keystrokes", "mouse_movement", "screenshots")
DAYS = 10
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h7keys_bench")


def prepare(employees: int, records: int, path: Path) -> None:
    setup_django()
    from consent.models import ConsentEvent, ConsentState
    from decisions.datakeys import new_key_id
    from decisions.kms import key_encryption_key
    from decisions.models import CaptureGrant, DataKey
    from decisions.pseudonyms import pseudonym
    from governance.models import Notice
    from people.models import Employee

    rng = random.Random(7)
    notice = Notice.objects.get(version=1)
    now = datetime.now(UTC)
    people = Employee.objects.bulk_create(
        Employee(hr_id=f"K{i:06d}", display_name=f"K{i}", country="US", subdivision="US-WA") for i in range(employees)
    )
    events = ConsentEvent.objects.bulk_create(
        [
            ConsentEvent(
                employee=person,
                purpose_id=PURPOSE,
                category_id=category,
                kind="granted",
                notice=notice,
                channel="import",
                actor="bench",
                at=now - timedelta(days=DAYS + 5),
                expires_at=now + timedelta(days=300),
                version=number + 1,
                receipt_id=f"rcpt_{person.pk}_{category}",
            )
            for person in people
            for number, category in enumerate(CATEGORIES)
        ],
        batch_size=5000,
    )
    ConsentState.objects.bulk_create(
        [
            ConsentState(
                employee_id=event.employee_id,
                purpose_id=PURPOSE,
                category_id=event.category_id,
                state="granted",
                since=event.at,
                notice=notice,
                expires_at=event.expires_at,
                last_event=event,
                version=event.version,
            )
            for event in events
        ],
        batch_size=5000,
    )
    grants, keys = [], []
    kek = key_encryption_key()
    for person in people:
        subject = pseudonym(purpose=PURPOSE, hr_id=person.hr_id)
        for day in range(1, DAYS + 1):
            issued = now - timedelta(days=day)
            grants.append(
                CaptureGrant(
                    id=f"g_{person.pk}_{day}",
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
            for category in CATEGORIES:
                key_id = new_key_id()
                keys.append(
                    DataKey(
                        id=key_id,
                        employee=person,
                        category=category,
                        day=issued.date(),
                        purposes=[PURPOSE],
                        country="US",
                        subdivision="US-WA",
                        wrapped=kek.wrap(secrets.token_bytes(32), key_id=key_id),
                        master_version=kek.version,
                        created_at=issued,
                    )
                )
    CaptureGrant.objects.bulk_create(grants, batch_size=5000)
    DataKey.objects.bulk_create(keys, batch_size=5000)
    with path.open("w") as handle:
        for index in range(records):
            grant = grants[rng.randrange(len(grants))]
            captured = grant.issued_at + timedelta(seconds=rng.randrange(60))
            record = {
                "id": f"r{index}",
                "subject": grant.subject,
                "category": rng.choice(CATEGORIES),
                "captured_at": captured.isoformat().replace("+00:00", "Z"),
                "grant_id": grant.id,
            }
            handle.write(json.dumps(record) + "\n")


def use_decision(path: Path, *, release: bool) -> dict:
    """The NDJSON answer as the endpoint writes it (results, then the summary line with any keys)."""
    from django.utils import timezone

    from decisions.datakeys import data_keys_release
    from decisions.snapshot import current_policy
    from decisions.usebatch import InvalidRecord, UseEvaluator, chunked, ndjson_lines, parse_line

    evaluator = UseEvaluator(policy=current_policy(), purpose=PURPOSE, at=timezone.now(), release_keys=release)
    out_bytes, peak = 0, 0.0
    start = time.perf_counter()
    with path.open("rb") as handle:
        items = (line if type(line) is InvalidRecord else parse_line(line) for line in ndjson_lines(handle))
        for number, chunk in enumerate(chunked(items)):
            out_bytes += sum(len(line) for line in map(evaluator.result_line, evaluator.evaluate(chunk)))
            if number % 50 == 0:
                peak = max(peak, rss_mb())
    decided = time.perf_counter()
    summary = json.dumps({"summary": evaluator.summary(), "batch_id": "x" * 32})
    released = 0
    if release:
        out_bytes += len(summary) + len(', "keys": {}}\n')
        for key_id, key in data_keys_release(sorted(evaluator.released)):
            out_bytes += len(f'"{key_id}": "{key}", ')
            released += 1
    else:
        out_bytes += len(summary) + 1
    end = time.perf_counter()
    return {
        "records": evaluator.allowed + evaluator.denied,
        "seconds": end - start,
        "key_seconds": end - decided,
        "released": released,
        "bytes": out_bytes,
        "peak": max(peak, rss_mb()),
    }


def shred(count: int) -> dict:
    """The sweep over ``count`` overdue keys, then a plain delete of ``count`` others in equal batches."""
    from django.db import transaction

    from decisions.datakeys import sweep_overdue_keys
    from decisions.kms import key_encryption_key
    from decisions.models import DataKey
    from people.models import Employee

    kek = key_encryption_key()
    people = list(Employee.objects.order_by("pk")[:100])
    old = datetime(2020, 1, 1, tzinfo=UTC)

    def seed(prefix: str) -> list[str]:
        rows = []
        for index in range(count):
            key_id = f"k_{prefix}{index:08d}"
            day = old + timedelta(days=index // len(people))
            rows.append(
                DataKey(
                    id=key_id,
                    employee=people[index % len(people)],
                    category="keystrokes",
                    day=day.date(),
                    purposes=[PURPOSE],
                    country="US",
                    subdivision="US-WA",
                    wrapped=kek.wrap(secrets.token_bytes(32), key_id=key_id),
                    master_version=kek.version,
                    created_at=day,
                )
            )
        DataKey.objects.bulk_create(rows, batch_size=5000)
        return [row.id for row in rows]

    seed("s")
    start = time.perf_counter()
    result = sweep_overdue_keys(batch_size=100)
    swept = time.perf_counter() - start
    ids = seed("p")
    start = time.perf_counter()
    for offset in range(0, len(ids), 100):
        with transaction.atomic():
            DataKey.objects.filter(pk__in=ids[offset : offset + 100]).delete()
    plain = time.perf_counter() - start
    return {"destroyed": result.total, "sweep_seconds": swept, "plain_seconds": plain}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--employees", type=int, default=1_000)
    parser.add_argument("--shred", type=int, default=10_000)
    args = parser.parse_args()
    work = ROOT / ".state" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    data = work / "key-records.ndjson"
    started = time.perf_counter()
    prepare(args.employees, args.records, data)
    from decisions.models import DataKey

    print(
        f"setup: {args.employees:,} employees, {DataKey.objects.count():,} data keys over {DAYS} days, "
        f"{args.records:,} records ({data.stat().st_size / 1e6:.0f} MB NDJSON) in {time.perf_counter() - started:.0f} s"
    )
    base = use_decision(data, release=False)
    keys = use_decision(data, release=True)
    for label, run in (("without release_keys (baseline)", base), ("with release_keys", keys)):
        print(
            f"use decision {label:<32} {run['records'] / run['seconds']:>10,.0f} records/s   "
            f"{run['seconds']:6.1f} s   answer {run['bytes'] / 1e6:7.1f} MB   peak RSS {run['peak']:.0f} MB"
        )
    print(
        f"  released {keys['released']:,} keys, each once; reading and unwrapping them took "
        f"{keys['key_seconds']:.2f} s ({keys['released'] / max(keys['key_seconds'], 1e-9):,.0f} keys/s); "
        f"release costs x{keys['seconds'] / base['seconds']:.2f} the baseline's time, "
        f"+{(keys['bytes'] - base['bytes']) / 1e6:.1f} MB of answer"
    )
    shredding = shred(args.shred)
    sweep_rate = shredding["destroyed"] / shredding["sweep_seconds"]
    plain_rate = args.shred / shredding["plain_seconds"]
    print(
        f"shredding: sweep {sweep_rate:>8,.0f} keys/s ({shredding['destroyed']:,} keys, tombstone + audit entry "
        f"+ revocation each)   plain delete (baseline) {plain_rate:>8,.0f} keys/s   "
        f"ratio x{plain_rate / sweep_rate:.1f}"
    )
    data.unlink()


if __name__ == "__main__":
    main()
