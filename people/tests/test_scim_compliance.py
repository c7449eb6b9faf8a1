"""The scim2-tester compliance checker against a live Consentry server (the issue's "done when").

The checker fills every published attribute with random values. Random
strings are not ISO 3166 codes, and Consentry rightly refuses them, so the
checker is told, through models that mirror the published schema, which
values are realistic: a country, a subdivision of it, and people who work
here (active). Everything else (discovery, CRUD, PATCH add/replace/remove,
attributes and excludedAttributes, errors) runs as the checker decides.
"""

from __future__ import annotations

from typing import Annotated

import httpx2
import pytest
from pydantic import Field
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Required, ResourceType, ScimProvider
from scim2_tester import Status, check_server

from audit.actors import Actor
from people.scim.resources import POLICY, EnterpriseUser, User, WorkAddress
from people.tokens import token_issue

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class RealisticAddress(WorkAddress):
    country: Annotated[str | None, Required.true] = Field(None, examples=["US"])
    region: str | None = Field(None, examples=["US-CA", "US-NY", "US-TX"])


class RealisticUser(User):
    __schema__ = User.__schema__
    active: Annotated[bool | None, Required.true] = Field(None, examples=[True])
    addresses: Annotated[list[RealisticAddress] | None, Required.true] = None


@pytest.fixture
def scim_client(live_server):
    _, raw = token_issue(kind="hr", name="compliance", actor=Actor.system("tests"))
    resource_type = ResourceType.from_resource(RealisticUser[EnterpriseUser])
    resource_type.schema_extensions[0].required = True
    provider = ScimProvider(models=[RealisticUser, EnterpriseUser], resource_types=[resource_type], policy=POLICY)
    # The server runs with production settings (HTTPS redirect on): the header
    # says what a TLS-terminating proxy in front of it would say.
    headers = {"Authorization": f"Bearer {raw}", "X-Forwarded-Proto": "https"}
    http = httpx2.Client(base_url=f"{live_server.url}/scim/v2", headers=headers)
    with http:
        yield SyncSCIMClient(http, provider=provider)


def _is_tester_immutable_extension_limitation(result) -> bool:
    """scim2-tester 0.5 rewrites the immutable employeeNumber inside the enterprise extension on PUT
    and on a whole-extension replace (its own "dirty hotfix" keeps only top-level immutable
    attributes). RFC 7644 §3.5.1 requires refusing that with 400 "mutability", which is what
    Consentry answers: the HR id is the employee's identity and keys their pseudonyms."""
    return result.title in ("object_replacement", "check_replace_attribute") and "employeeNumber" in (
        result.reason or ""
    )


def test_the_scim_compliance_checker_passes_against_a_live_server(scim_client):
    results = check_server(scim_client)
    failures = [result for result in results if result.status in (Status.ERROR, Status.CRITICAL, Status.DEVIATION)]
    unexpected = [f"{r.title}: {r.reason}" for r in failures if not _is_tester_immutable_extension_limitation(r)]
    assert not unexpected, "\n".join(unexpected)
    assert len(failures) <= 2
    executed = [result for result in results if result.status != Status.SKIPPED]
    assert len(executed) > 30
    skipped = sorted({f"{result.title}: {result.reason}" for result in results if result.status == Status.SKIPPED})
    print(f"{len(executed)} checks ran, {len(failures)} refused an immutable change; skipped: {skipped}")
