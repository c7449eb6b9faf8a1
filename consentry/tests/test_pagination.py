"""Every paginated API list: limit and offset are checked, clamped, and never reach the database raw.

A limit past 64 bits used to reach PostgreSQL ("bigint out of range") or
SQLite ("Python int too large") as a 500; junk and negative values were
quietly replaced by defaults. Unknown /api/v1/ addresses answered a HTML 404.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from audit.selectors import EntryFilters
from audit.services import checkpoint_create, export_request
from audit.tests.conftest import ALL_REGIONS
from conftest import SYSTEM, make_employee, make_user
from consentry.pagination import MAX_LIMIT
from decisions.rights import rights_request_access
from decisions.tests.conftest import build_decision_policy
from people.tokens import token_issue

pytestmark = pytest.mark.django_db

# Every list endpoint of the API that pages with limit and offset.
PAGINATED = (
    "/api/v1/audit/entries",
    "/api/v1/audit/checkpoints/",
    "/api/v1/audit/exports",
    "/api/v1/rights-requests",
    "/api/v1/tokens/",
    "/api/v1/regions/",
    "/api/v1/data-categories/",
    "/api/v1/purposes/",
    "/api/v1/notices/",
    "/api/v1/jurisdiction-rules/",
    "/api/v1/legal-instruments/",
    "/api/v1/retention-policies/",
    "/api/v1/exclusions/",
)
HUGE = "99999999999999999999"


@pytest.fixture
def admin(db):
    """A superuser, who may read every list, with at least one row in each that the fixtures can fill."""
    build_decision_policy()
    user = make_user("root", is_superuser=True, is_staff=True)
    employee = make_employee(country="US", subdivision="US-NY", user=make_user("nina"))
    token_issue(kind="pipeline", name="trainer", purposes=["ai_agent_training"], actor=SYSTEM)
    rights_request_access(employee=employee, user=employee.user, actor=SYSTEM)
    export_request(user=user, access=ALL_REGIONS, filters=EntryFilters(), format="jsonl")
    checkpoint_create()
    api = APIClient()
    api.force_authenticate(user)
    return api


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json", response["Content-Type"]
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body


@pytest.mark.parametrize("path", PAGINATED)
def test_a_huge_limit_is_clamped_to_the_largest_page(admin, path):
    response = admin.get(path, {"limit": HUGE})
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert body["count"] >= 0 and len(body["results"]) <= MAX_LIMIT
    if body["next"]:
        assert f"limit={MAX_LIMIT}" in body["next"]


@pytest.mark.parametrize("path", PAGINATED)
def test_a_huge_offset_gives_an_empty_page(admin, path):
    response = admin.get(path, {"offset": HUGE, "limit": "5"})
    assert response.status_code == 200, response.content[:500]
    assert response.json()["results"] == []


JUNK = (
    ("limit", "-1"),
    ("limit", "0"),
    ("limit", "ten"),
    ("limit", "1.5"),
    ("limit", ""),
    ("limit", "9" * 5000),
    ("offset", "-5"),
    ("offset", "abc"),
    ("offset", "1e3"),
)


@pytest.mark.parametrize("path", PAGINATED)
def test_a_negative_or_junk_limit_or_offset_is_a_422_naming_the_field(admin, path):
    for field, value in JUNK:
        body = assert_problem(admin.get(path, {field: value}), 422, "invalid")
        assert field in body["errors"], (field, value)


def test_paging_by_the_default_and_a_small_limit_still_works(admin):
    everything = admin.get("/api/v1/audit/entries").json()
    assert len(everything["results"]) == min(everything["count"], settings.REST_FRAMEWORK["PAGE_SIZE"])
    first, second = (admin.get("/api/v1/audit/entries", {"limit": 2, "offset": n}).json() for n in (0, 2))
    assert len(first["results"]) == 2 and "offset=2" in first["next"]
    assert [e["seq"] for e in first["results"]] + [e["seq"] for e in second["results"]] == [
        e["seq"] for e in everything["results"][:4]
    ]


def test_no_api_module_pages_with_anything_but_the_one_api_pagination():
    """One pagination for the whole API: a view importing DRF's paginators would bring the 500 back."""
    root = Path(settings.BASE_DIR)
    offenders = []
    for module in root.glob("*/*.py"):
        if module.parts[-2] in (".venv", "bench", "client", "e2e") or module.name == "pagination.py":
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "rest_framework.pagination":
                offenders.append(str(module.relative_to(root)))
    assert offenders == []
    assert settings.REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"] == "consentry.pagination.ApiPagination"


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-thing", "/api/v1/audit/nothing/here", "/api/v1/tokens/not-a-number", "/api/v2/"]
)
def test_an_unknown_api_address_is_a_problem_404(admin, method, path):
    response = getattr(admin, method)(path)
    assert_problem(response, 404, "not_found")


def test_an_unknown_api_address_is_a_problem_404_for_anonymous_callers_too(db):
    assert_problem(APIClient().post("/api/v1/nope", {"a": 1}, format="json"), 404, "not_found")


def test_an_unknown_portal_address_is_still_a_page(db):
    response = APIClient().get("/portal/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_an_unknown_scim_address_is_a_scim_404(db):
    _, raw = token_issue(kind="hr", name="workday", actor=SYSTEM)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api.get("/scim/v2/Groups/abc")
    assert response.status_code == 404 and response["Content-Type"].startswith("application/scim+json")
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


@pytest.fixture
def hr_api(db) -> APIClient:
    make_employee(country="US", subdivision="US-NY")
    _, raw = token_issue(kind="hr", name="workday", actor=SYSTEM)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


@pytest.mark.parametrize("query", [{"startIndex": HUGE}, {"count": HUGE}, {"startIndex": HUGE, "count": "5"}])
def test_a_huge_scim_start_index_or_count_is_a_page_not_a_500(hr_api, query):
    response = hr_api.get("/scim/v2/Users", query)
    assert response.status_code == 200, response.content[:300]
    assert response.json()["totalResults"] == 1


@pytest.mark.parametrize("query", [{"count": "abc"}, {"startIndex": "x"}, {"count": "1.5"}])
def test_a_junk_scim_start_index_or_count_is_a_scim_400(hr_api, query):
    response = hr_api.get("/scim/v2/Users", query)
    assert response.status_code == 400 and response["Content-Type"].startswith("application/scim+json")
    assert response.json()["scimType"] == "invalidValue"
