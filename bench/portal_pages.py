"""Server time and queries of the main portal pages, next to /health as the baseline.

    python bench/portal_pages.py [EMPLOYEES] [AUDIT_ENTRIES]

Builds a throwaway test database (SQLite by default, PostgreSQL with
DATABASE_URL) with the default policy pack, EMPLOYEES employees (default 300)
of whom half opted in, and at least AUDIT_ENTRIES ledger entries (default
5000). Each page is rendered through the whole middleware stack by the test
client; the figures are median and 95th percentile over 30 requests, and the
number of SQL queries per request (it must not grow with the data).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consentry.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

settings.ALLOWED_HOSTS = ["*"]
settings.SECURE_SSL_REDIRECT = False
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
settings.AXES_ENABLED = False
ROUNDS = 30


def measure(client, url: str) -> tuple[list[float], int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    # Count now: the captured list is read from the log, which the next request empties.
    count = len(queries)
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
    return samples, count


def report(name: str, samples: list[float], queries: int, baseline: list[float]) -> None:
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[18]
    extra = median - statistics.median(baseline)
    print(f"{name:<44} median {median:7.2f} ms   p95 {p95:7.2f} ms   {queries:3d} queries   (+{extra:.2f} ms)")


def build(employees: int, entries: int):
    from django.core.management import call_command
    from django.test import Client

    from audit.actors import Actor
    from audit.models import AuditEntry
    from audit.services import record
    from conftest import make_employee, make_user
    from consent.services import consent_grant, pause_end, pause_start
    from consentry.tests.roles import make_auditor, make_legal, sign_in
    from governance.models import Region
    from governance.selectors import current_notice

    call_command("load_policy_pack", verbosity=0)
    notice = current_notice(at=django.utils.timezone.now())
    assert notice is not None, "no notice in force: load a policy pack first"
    people = []
    for index in range(employees):
        employee = make_employee(
            country="US", subdivision=("US-NY", "US-CA", "US-TX")[index % 3], department=f"Dept {index % 6}"
        )
        if index % 2 == 0:
            consent_grant(
                employee=employee,
                notice=notice,
                choices=[("ai_agent_training", "keystrokes"), ("ai_agent_training", "mouse_movement")],
                actor=Actor.system("bench"),
            )
        people.append(employee)
    nina = make_employee(country="US", subdivision="US-TX", user=make_user("nina"))
    for _ in range(50):
        now = django.utils.timezone.now()
        pause_start(employee=nina, until=now + timedelta(minutes=30), actor=Actor.system("b"))
        pause_end(employee=nina, actor=Actor.system("bench"))
    consent_grant(
        employee=nina, notice=notice, choices=[("ai_agent_training", "screenshots")], actor=Actor.system("bench")
    )
    while AuditEntry.objects.count() < entries:
        record(event_type="capture.paused", actor=Actor.system("bench"), subject="E-bench", region="US-TX")
    clients = {}
    for name, user in (
        ("employee", nina.user),
        ("legal", make_legal(make_user("lena"), *Region.objects.filter(code__startswith="US"))),
        ("auditor", make_auditor(make_user("aurelio"))),
    ):
        client = Client()
        sign_in(client, user)
        clients[name] = client
    return clients, nina


def main(employees: int, entries: int) -> None:
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        clients, nina = build(employees, entries)
        print(f"{connection.vendor}: {employees} employees, {entries}+ audit entries, {ROUNDS} requests per page")
        baseline, baseline_queries = measure(clients["employee"], "/health")
        report("/health (baseline)", baseline, baseline_queries, baseline)
        pages = [
            ("employee", "/portal/"),
            ("employee", "/portal/history/"),
            ("legal", "/legal/"),
            ("legal", "/legal/regions/US/"),
            ("legal", "/legal/catalogue/"),
            ("legal", "/legal/opt-in-rates/"),
            ("auditor", "/audit/"),
            ("auditor", f"/audit/?subject={nina.hr_id}"),
            ("auditor", "/audit/?event_type=consent.granted&region=US"),
        ]
        for who, url in pages:
            samples, queries = measure(clients[who], url)
            report(f"{url} ({who})", samples, queries, baseline)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    arguments = [int(value) for value in sys.argv[1:3]]
    main(*(arguments + [300, 5000][len(arguments) :]))
