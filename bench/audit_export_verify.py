"""Export and verification of a million-entry ledger, each beside a baseline measured in the same run.

    python bench/audit_export_verify.py [--entries 1000000] [--reuse]

Seeds the benchmark database (COPY, a signed checkpoint every 10,000 entries)
unless ``--reuse`` finds it seeded, then:

- export: builds the complete JSONL bundle, and a filtered one (one region of
  six, two event types of four: a sixth of the entries, plus the leaf list),
  each in a child process whose wall time and peak RSS are taken (``wait4``);
  baselines: a bare dump of the same rows through the same server-side
  cursor into a zip, and a child that only starts Django and connects (the
  floor every process pays). Flat memory shows as the same peak RSS for a
  sixth and for all of the entries, and as the floor's.
- verify: the live ledger (``verify_audit``), the bundle with ``verify_audit
  EXPORT`` and with the standalone ``consentry-verify``; baselines: a bare
  SHA-256 of every line of the same entries file (same reading, no checks)
  and a bare SHA-256 loop over a 450-byte buffer in memory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

# Run as a script (python bench/audit_export_verify.py), which puts bench/ on the path; mypy reads bench as a package.
if TYPE_CHECKING:
    from bench.ledger_db import DATABASE_URL, ROOT, django_setup, fresh_database, ledger_size, load_note, seed
else:
    from ledger_db import DATABASE_URL, ROOT, django_setup, fresh_database, ledger_size, load_note, seed

OUT = ROOT / ".state" / "bench-audit"


def child(mode: str, count: int, out: Path) -> None:
    """Runs in a child process: one export (or baseline) and a JSON line on stdout."""
    django_setup()
    from django.db import connection

    from audit import services
    from audit.chain import HASHED_FIELDS
    from audit.models import AuditEntry, AuditExport
    from audit.selectors import EntryFilters

    started = time.perf_counter()
    connection.ensure_connection()
    entries: int | None = 0  # an export's own count, None only before it is built
    if mode in ("full", "tenth"):
        # Built here, in this process: no broker hop to measure.
        services._enqueue_export = lambda export_id: None
        from django.contrib.auth import get_user_model

        from audit.access import AuditAccess

        user, _ = get_user_model().objects.get_or_create(username="bench-auditor")
        filters = EntryFilters()
        access = AuditAccess(can_audit=True, all_regions=True)
        if mode == "tenth":
            # One region of six, two event types of four: a sixth of the entries.
            access = AuditAccess(can_audit=True, regions=frozenset({"US-NY"}))
            filters = EntryFilters(event_types=("consent.granted", "notice.acknowledged"))
        export = services.export_request(user=user, access=access, filters=filters, format="jsonl")
        export = services.export_build(export_id=export.id)
        entries = export.entry_count
        path = Path(export.file.path)
        size = path.stat().st_size
        os.replace(path, out)
        AuditExport.objects.filter(pk=export.pk).update(file="")
    elif mode == "dump":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("rows.txt", "w") as member:
            rows = AuditEntry.objects.order_by("seq").values_list(*HASHED_FIELDS, "hash").iterator(chunk_size=2000)
            dumped = 0
            for row in rows:
                member.write(repr(row).encode() + b"\n")
                dumped += 1
            entries = dumped
        size = out.stat().st_size
    else:
        size = 0
    print(json.dumps({"mode": mode, "seconds": time.perf_counter() - started, "entries": entries, "bytes": size}))


def measure(mode: str, count: int, out: Path) -> dict:
    env = {**os.environ, "BENCH_AUDIT_DATABASE_URL": DATABASE_URL}
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, "--entries", str(count), "--out", str(out)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert process.stdout is not None  # stdout=PIPE
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"child {mode} failed ({status})")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def sha256_lines(bundle: Path) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    with zipfile.ZipFile(bundle) as archive, archive.open("entries.jsonl") as stream:
        for line in stream:
            hashlib.sha256(b"consentry.audit.entry.v1\x00" + line).digest()
            count += 1
    return count, time.perf_counter() - started


def read_rows() -> tuple[int, float]:
    from audit.chain import HASHED_FIELDS
    from audit.models import AuditEntry

    started = time.perf_counter()
    count = 0
    for _ in AuditEntry.objects.order_by("seq").values_list(*HASHED_FIELDS, "hash").iterator(chunk_size=5000):
        count += 1
    return count, time.perf_counter() - started


def sha256_loop(count: int) -> float:
    buffer = b"x" * 450
    started = time.perf_counter()
    for _ in range(count):
        hashlib.sha256(buffer).digest()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the benchmark database if it is seeded")
    parser.add_argument("--skip-export", action="store_true", help="verify the bundle the last run exported")
    parser.add_argument("--child", choices=["full", "tenth", "dump", "idle"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.entries, args.out)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    if args.reuse:
        django_setup()
    if not args.reuse or ledger_size() < args.entries:
        fresh_database()
        print(f"seeding {args.entries:,} entries ...", flush=True)
        print(f"seeded in {seed(args.entries):.0f} s", flush=True)

    print(load_note())
    bundle = OUT / "full.zip"
    if not args.skip_export or not bundle.exists():
        export(args.entries, bundle)
    verify(args.entries, bundle)


def export(count: int, bundle: Path) -> None:
    print(f"\nexport ({count:,} entries in the ledger)")
    print(f"{'':<34}{'entries':>12}{'wall s':>9}{'entries/s':>12}{'MB':>8}{'peak RSS MB':>13}")
    for mode, label in (
        ("idle", "baseline: start Django, connect"),
        ("dump", "baseline: bare dump of the rows"),
        ("tenth", "export, one region and two types"),
        ("full", "export, everything"),
    ):
        result = measure(mode, count, bundle if mode == "full" else OUT / f"{mode}.zip")
        per_second = result["entries"] / result["seconds"] if result["entries"] else 0
        print(
            f"{label:<34}{result['entries']:>12,}{result['seconds']:>9.1f}{per_second:>12,.0f}"
            f"{result['bytes'] / 1e6:>8.0f}{result['peak_rss_mb']:>13.0f}",
            flush=True,
        )


def verify(count: int, bundle: Path) -> None:
    """Wall time, and CPU time of this process: on a busy machine the CPU figure is the steadier one."""
    print("\nverification")
    print(f"{'':<46}{'entries':>10}{'wall s':>8}{'entries/s':>11}{'CPU s':>7}{'per CPU s':>11}")
    from consentry_client.verify import verify_bundle as standalone_verify

    from audit.verifiers import verify_bundle, verify_live
    from consentry.signing import jwks

    def timed(label: str, work) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        entries = work()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{label:<46}{entries:>10,}{wall:>8.1f}{entries / wall:>11,.0f}{cpu:>7.1f}{entries / cpu:>11,.0f}")

    def checked(report) -> int:
        assert report.ok, report.findings
        return report.entries

    timed("baseline: sha256 loop, 450 bytes in memory", lambda: sha256_loop(count) and count)
    timed("baseline: sha256 of each line of the bundle", lambda: sha256_lines(bundle)[0])
    timed("baseline: read every row (server-side cursor)", lambda: read_rows()[0])
    timed("consentry-verify bundle (standalone)", lambda: checked(standalone_verify(bundle, jwks=jwks())))
    timed("verify_audit EXPORT (server)", lambda: checked(verify_bundle(bundle)))
    timed("verify_audit (live PostgreSQL, CPU here only)", lambda: checked(verify_live()))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "client"))
    main()
