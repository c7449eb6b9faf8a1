"""Latency of self-service calls, and what idempotency keys and receipts add.

    python bench/api_writes.py [N]

Runs against a throwaway test database (SQLite by default, PostgreSQL with
DATABASE_URL). Prints median and 95th percentile per call, next to a baseline
measured in the same run: a write without Idempotency-Key for the keyed
writes, and the bare consent service for the API grant.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consentry.settings")
os.environ.setdefault("CONSENTRY_RATE_API", "off")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

settings.ALLOWED_HOSTS = ["*"]
settings.SECURE_SSL_REDIRECT = False
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def timed(fn, n: int) -> list[float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def report(name: str, samples: list[float], baseline: list[float] | None = None) -> None:
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[18]
    line = f"{name:<48} median {median:7.2f} ms   p95 {p95:7.2f} ms"
    if baseline:
        line += f"   (+{median - statistics.median(baseline):.2f} ms over baseline)"
    print(line)


def main(n: int) -> None:
    from rest_framework.test import APIClient

    from conftest import SYSTEM, build_small_policy, make_employee, make_user
    from consent.services import consent_grant, consent_withdraw

    policy = build_small_policy()
    employee = make_employee(country="US", subdivision="US-NY", user=make_user("bench"))
    client = APIClient()
    assert employee.user is not None
    client.force_login(employee.user)

    def body(i: int) -> dict:
        return {
            "notice_version": 1,
            "choices": [{"purpose": "ai_agent_training", "category": "keystrokes", "granted": i % 2 == 0}],
        }

    def service(i: int) -> None:
        if i % 2 == 0:
            consent_grant(
                employee=employee,
                notice=policy["notice"],
                choices=[("ai_agent_training", "mouse_movement")],
                actor=SYSTEM,
            )
        else:
            consent_withdraw(
                employee=employee, purpose="ai_agent_training", categories=["mouse_movement"], actor=SYSTEM
            )

    def put(i: int, **headers) -> None:
        response = client.put("/api/v1/me/consent", body(i), format="json", **headers)
        assert response.status_code == 200, response.content

    print(f"database: {connection.vendor}, {n} calls each; measured and baseline calls alternate")
    report("GET /me/consent", timed(lambda i: client.get("/api/v1/me/consent"), n))
    # Alternate each measurement with its baseline so both see the same machine load.
    base_service, plain, keyed = [], [], []
    for i in range(n):
        base_service += timed(lambda _, i=i: service(i), 1)
        plain += timed(lambda _, i=i: put(i), 1)
    report("consent service, grant/withdraw (baseline)", base_service)
    report("PUT /me/consent, grant/withdraw + receipt", plain, base_service)
    plain = []
    for i in range(n):
        plain += timed(lambda _, i=i: put(i), 1)
        keyed += timed(lambda _, i=i: put(i + 1, HTTP_IDEMPOTENCY_KEY=f"bench-{i}"), 1)
    report("PUT /me/consent without a key (baseline)", plain)
    report("PUT /me/consent with a new Idempotency-Key", keyed, plain)
    report("PUT /me/consent replayed (same key)", timed(lambda i: put(1, HTTP_IDEMPOTENCY_KEY="bench-0"), n), plain)


if __name__ == "__main__":
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
