"""The API keeps its own contract: generated requests against /api/schema/, answered in-process.

Schemathesis reads the served OpenAPI document and sends each operation
requests built from it (its documented examples, generated valid ones and
generated invalid ones), with the credential that operation is for: a device or pipeline
token, a user token of an employee, a legal user or an auditor, an HR
token for SCIM. Every answer must be no server error, a documented status
code, in a documented media type, with a body matching its documented schema.

Bounded and deterministic (a fixed number of examples per operation, derandomized),
so a failure reproduces and the whole run stays within a couple of minutes.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import SYSTEM, build_small_policy, make_employee, make_user
from consentry.tests.roles import make_approver, make_auditor, make_legal
from decisions.feedwait import stop_listener
from people.tokens import token_issue

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def in_process_requests(db):
    """Keep the test's database connection open across in-process WSGI requests.

    Django closes connections when a request starts and finishes; the test runs in one
    transaction on one connection, so do as Django's own test client does and skip that.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def generated_traffic(settings):
    """Settings for a burst of generated requests.

    No rate limit: every example must reach its view, not a 429 (the limits have their own
    tests in test_throttling.py). Event streams end after a second, not five minutes; long
    polls still wait as asked.
    """
    settings.CONSENTRY_RATE_LIMITS = dict.fromkeys(settings.CONSENTRY_RATE_LIMITS)
    settings.CONSENTRY_FEED_STREAM_SECONDS = 1
    yield
    # A long poll on PostgreSQL starts a LISTEN connection: gone before the test database is dropped.
    stop_listener()


@pytest.fixture
def api_schema(in_process_requests, generated_traffic):
    # Function-scoped, so the test settings (plain HTTP) are in place when the schema is fetched.
    from consentry.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application, headers={"Accept": "application/json"})


@pytest.fixture
def tokens(db) -> dict[str, str]:
    """One raw bearer token of each kind, over the small policy, as its holder would send it."""
    policy = build_small_policy()
    regions = policy["regions"]
    employee = make_employee(country="US", subdivision="US-NY", hr_id="E1001", user=make_user("nina"))
    legal = make_approver(make_legal(make_user("lena"), *regions.values()), legal=True)
    auditor = make_auditor(make_user("audrey"))

    def raw(**kwargs) -> str:
        return token_issue(name=kwargs.get("kind", "token"), actor=SYSTEM, **kwargs)[1]

    return {
        "device": raw(kind="device", employee=employee, device_id="laptop-7"),
        "pipeline": raw(kind="pipeline", purposes=["ai_agent_training"]),
        "employee": raw(kind="user", user=employee.user),
        "legal": raw(kind="user", user=legal),
        "auditor": raw(kind="user", user=auditor),
        "hr": raw(kind="hr"),
    }


# Which credential each part of the API is for (API.md); the first prefix that matches wins.
CALLERS = (
    ("/api/v1/decisions/capture", "device"),
    ("/api/v1/decisions/use", "pipeline"),
    ("/api/v1/revocations", "pipeline"),
    ("/api/v1/me/", "employee"),
    ("/api/v1/audit/", "auditor"),
    ("/api/v1/rights-requests", "auditor"),
    ("/scim/", "hr"),
    ("/api/v1/people/", "hr"),
    ("/api/v1/", "legal"),
)


def caller_of(path: str) -> str | None:
    return next((caller for prefix, caller in CALLERS if path.startswith(prefix)), None)


def _excerpt(failure: Failure, response) -> str:
    request = response.request
    return f"{str(failure).strip()[:600]}\n{request.method} {request.url[:300]}\n{response.text[:400]}"


def failures_of(api_schema, operation, tokens: dict[str, str]) -> list[str]:
    """Run one operation's bounded examples (its documented ones, valid and invalid); the distinct failures."""
    caller = caller_of(operation.path)
    headers = {"Authorization": f"Bearer {tokens[caller]}"} if caller else {}
    found: dict[str, str] = {}
    strategy = st.one_of(
        *api_schema.get_strategies_from_examples(operation),
        *(operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)),
    )

    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        # Report what was found as found: shrinking every failure would cost minutes.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case) -> None:
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Failure, FailureGroup) as error:
            # Collected, not raised: one run reports every operation's distinct failures at once.
            for failure in error.exceptions if isinstance(error, FailureGroup) else [error]:
                key = f"{failure.title} ({response.status_code})"
                found.setdefault(key, f"{operation.label}: {key}\n{_excerpt(failure, response)}")

    run()
    return list(found.values())


def test_every_operation_answers_as_documented(api_schema, tokens):
    failures = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        failures.extend(failures_of(api_schema, operation, tokens))

    assert operations > 60
    assert not failures, "\n\n".join(failures)
