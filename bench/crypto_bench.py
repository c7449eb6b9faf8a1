"""Record encryption throughput: sealing and opening envelopes beside plain JSON, in one process.

    python bench/crypto_bench.py [--records 200000] [--repeat 3]

No server, no Django: ``consentry_client.crypto`` alone. For three record
shapes (a keystroke, a mouse movement, a 4 KB application-usage record) it
measures, best of ``--repeat`` runs over ``--records`` records:

- baseline: ``json.dumps`` of the plaintext record to a line, what the spool
  wrote before encryption, and ``json.loads`` of that line back;
- encrypt: ``encrypt_record`` plus ``json.dumps`` of the envelope (the
  agent's spool path now);
- decrypt: ``json.loads`` of the envelope line plus ``decrypt_record``;
- open: ``usage.open_allowed`` over the parsed envelopes (what
  ``UsageGate.decrypt`` does per batch once the answers are in: check the
  envelope, find the released key, decrypt).

and, for a 1 MB screenshot, ``encrypt_blob`` / ``decrypt_blob`` beside
``hashlib.sha256`` of the same bytes (the agent hashes every screenshot).
Figures are records/s (wall), records and MB of plaintext payload per
CPU-second, and the ratio to the baseline measured in the same run (per
CPU-second, which a loaded machine disturbs least). Nothing here is a pass or fail: it prints figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))

import cryptography
from consentry_client.crypto import DataKey, decrypt_blob, decrypt_record, encrypt_blob, encrypt_record
from consentry_client.usage import UseResult, open_allowed

KEY = DataKey("k_" + secrets.token_urlsafe(16), secrets.token_bytes(32))


def make_records(count: int, shape: str) -> list[dict]:
    base = {
        "grant_id": "g_" + secrets.token_urlsafe(16),
        "subject": "p_" + secrets.token_hex(16),
        "purpose": "ai_agent_training",
        "captured_at": "2026-11-20T14:02:11.123Z",
    }
    data: dict[str, str | int]
    if shape == "keystrokes":
        data = {"key": "h"}
    elif shape == "mouse_movement":
        data = {"x": 1412, "y": 887}
    else:
        data = {"app": "com.microsoft.VSCode", "title": "x" * 4000}
    category = shape.removesuffix("_4kb")
    return [{"id": f"r_{index:032x}", **base, "category": category, "data": data} for index in range(count)]


def best(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the fastest of ``repeat`` runs: CPU time holds up on a shared machine."""
    times = []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        run()
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    return min(times)


def line(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def measure(shape: str, count: int, repeat: int) -> list[tuple[str, float, float, float]]:
    records = make_records(count, shape)
    plain_lines = [line(record) for record in records]
    envelopes = [encrypt_record(record, KEY) for record in records]
    sealed_lines = [line(envelope) for envelope in envelopes]
    size = sum(len(json.dumps(record["data"])) for record in records)  # the payload that gets sealed
    allowed = [UseResult(record["id"], True) for record in records]
    keys = {KEY.key_id: KEY}
    timings = {
        "baseline: json.dumps (plaintext spool line)": best(lambda: [line(r) for r in records], repeat),
        "encrypt_record + json.dumps": best(lambda: [line(encrypt_record(r, KEY)) for r in records], repeat),
        "baseline: json.loads (plaintext line)": best(lambda: [json.loads(x) for x in plain_lines], repeat),
        "json.loads + decrypt_record": best(lambda: [decrypt_record(json.loads(x), KEY) for x in sealed_lines], repeat),
        "open_allowed (check, key lookup, decrypt)": best(lambda: list(open_allowed(envelopes, allowed, keys)), repeat),
    }
    return [(name, count / wall, count / cpu, size / cpu / 1e6) for name, (wall, cpu) in timings.items()]


def measure_blob(repeat: int, megabytes: int = 1, rounds: int = 50) -> list[tuple[str, float, float, float]]:
    blob = os.urandom(megabytes * 1_000_000)
    sealed = encrypt_blob(blob, KEY, record_id="r_1", subject="p_1", category="screenshots")
    timings = {
        "baseline: hashlib.sha256": best(lambda: [hashlib.sha256(blob).digest() for _ in range(rounds)], repeat),
        "encrypt_blob": best(
            lambda: [
                encrypt_blob(blob, KEY, record_id="r_1", subject="p_1", category="screenshots") for _ in range(rounds)
            ],
            repeat,
        ),
        "decrypt_blob": best(
            lambda: [
                decrypt_blob(sealed, KEY, record_id="r_1", subject="p_1", category="screenshots") for _ in range(rounds)
            ],
            repeat,
        ),
    }
    return [
        (name, rounds / wall, rounds / cpu, rounds * len(blob) / cpu / 1e6) for name, (wall, cpu) in timings.items()
    ]


def report(title: str, rows: list[tuple[str, float, float, float]], unit: str) -> None:
    print(f"\n{title}")
    print(f"{'':<46} {unit + '/s':>12} {unit + '/CPU-s':>14} {'MB/CPU-s':>9} {'vs baseline':>12}")
    baseline = None
    for name, rate, per_cpu, mbps in rows:
        if name.startswith("baseline"):
            baseline = per_cpu
        ratio = f"{per_cpu / baseline:.2f}×" if baseline else ""
        print(f"{name:<46} {rate:>12,.0f} {per_cpu:>14,.0f} {mbps:>9.1f} {ratio:>12}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{os.cpu_count()} CPUs, {args.records:,} records, best of {args.repeat}"
    )
    for shape in ("keystrokes", "mouse_movement", "app_usage_4kb"):
        report(f"{shape} records", measure(shape, args.records, args.repeat), "records")
    report("1 MB screenshot blobs", measure_blob(args.repeat), "blobs")


if __name__ == "__main__":
    main()
