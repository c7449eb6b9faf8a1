"""The scim2-tester compliance checker against a live Consentry server: every check, no error.

The checker knows the server only from what it publishes (``/ServiceProviderConfig``,
``/ResourceTypes``, ``/Schemas``) and fills attributes from the published
``canonicalValues``: ISO country codes, ISO subdivision codes. Three rules that
SCIM's schema language cannot state are given to it, each narrowing what the
server itself published, never adding to it:

- a region belongs to its country, and the checker draws each attribute on
  its own, so its addresses use one published country and that country's
  published subdivisions;
- ``active: false`` terminates, and termination is final (a rehire is a new HR
  id), so the people it creates work here;
- scim2-tester 0.5 rewrites the immutable ``employeeNumber`` inside the
  enterprise extension on PUT and on a whole-extension replace (its own
  "dirty hotfix" restores only top-level immutable attributes). RFC 7644
  §3.5.1 has the server refuse that (400 ``mutability``, tested in
  test_scim.py); the client here sends back the value the server holds, as
  RFC 7643 §7 expects of a client.
"""

from __future__ import annotations

import typing
from typing import Any

import httpx2
import pytest
from pydantic import BaseModel
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Resource, ScimProvider
from scim2_tester import Status, check_server

from audit.actors import Actor
from people.iso3166 import location_errors
from people.scim.mapping import location_of
from people.scim.resources import COUNTRY_CODES, ENTERPRISE_SCHEMA, SUBDIVISION_CODES, WorkAddress
from people.tokens import token_issue

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
COUNTRY = "US"


class ImmutableRespectingClient(SyncSCIMClient):
    """Sends back the employeeNumber the server holds on PUT and on a replace of the whole extension."""

    def _held_employee_number(self, model: type[Resource[Any]], id: str) -> Any:
        current = self.query(model, id)
        # query raises on a SCIM error, so what comes back is the resource.
        assert isinstance(current, Resource)
        return getattr(current[self._enterprise()], "employee_number", None)

    def _enterprise(self) -> type:
        return next(m for m in self.provider.models if getattr(m, "__schema__", None) == ENTERPRISE_SCHEMA)

    # The checker calls replace(resource, ...) and modify(target=, id=, patch_op=); the rest passes through.
    def replace(self, *args: Any, **kwargs: Any) -> Any:
        resource: Any = args[0] if args else None
        extension = resource[self._enterprise()] if resource is not None and resource.id else None
        if extension is not None:
            extension.employee_number = self._held_employee_number(type(resource), resource.id)
        return super().replace(*args, **kwargs)

    def modify(self, *args: Any, **kwargs: Any) -> Any:
        for operation in kwargs["patch_op"].operations or []:
            if str(operation.path) == ENTERPRISE_SCHEMA and operation.value is not None:
                operation.value.employee_number = self._held_employee_number(kwargs["target"], kwargs["id"])
        return super().modify(*args, **kwargs)


def _inner_model(annotation: Any) -> type | None:
    """The model inside ``list[Model] | None`` (or ``Model | None``)."""
    for argument in typing.get_args(annotation) or (annotation,):
        if isinstance(argument, type):
            return argument
        inner = _inner_model(argument)
        if inner is not None:
            return inner
    return None


def _narrow_to_what_schemas_cannot_say(provider: ScimProvider) -> tuple[list[str], list[str]]:
    """Narrow the discovered User model as the module docstring says; returns what was published."""
    user = next(model for model in provider.models if getattr(model, "__schema__", "").endswith(":core:2.0:User"))
    address = _inner_model(user.model_fields["addresses"].annotation)
    assert address is not None and issubclass(address, BaseModel)
    countries = list(address.model_fields["country"].examples or [])
    regions = list(address.model_fields["region"].examples or [])
    address.model_fields["country"].examples = [COUNTRY]
    address.model_fields["region"].examples = [code for code in regions if code.startswith(f"{COUNTRY}-")]
    # The resource model with its extension (the one the checker fills) has fields of its own.
    composed = provider.model_for("User")
    assert composed is not None
    for model in (user, composed):
        model.model_fields["active"].examples = [True]
    return countries, regions


@pytest.fixture
def scim_client(live_server):
    _, raw = token_issue(kind="hr", name="compliance", actor=Actor.system("tests"))
    # The server runs with production settings (HTTPS redirect on): the header
    # says what a TLS-terminating proxy in front of it would say.
    headers = {"Authorization": f"Bearer {raw}", "X-Forwarded-Proto": "https"}
    with httpx2.Client(base_url=f"{live_server.url}/scim/v2", headers=headers) as http:
        client = ImmutableRespectingClient(http, provider=ScimProvider())
        client.discover()
        yield client


def test_the_schema_publishes_every_country_and_subdivision_the_server_accepts(scim_client):
    countries, regions = _narrow_to_what_schemas_cannot_say(scim_client.provider)
    assert countries == COUNTRY_CODES and "US" in countries and "DE" in countries
    assert regions == SUBDIVISION_CODES and "US-NY" in regions and "DE-BY" in regions
    assert not [code for code in countries if location_errors(code)]
    # Exactly what the server takes: each published region, with its own country, as sent.
    refused = [code for code in regions if location_of(WorkAddress(country=code.split("-")[0], region=code))[1] != code]
    assert not refused


def test_the_scim_compliance_checker_passes_every_check_against_a_live_server(scim_client):
    _narrow_to_what_schemas_cannot_say(scim_client.provider)
    results = check_server(scim_client)
    problems = [f"{r.title}: {r.reason}" for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    assert not problems, "\n".join(problems)
    deviations = [f"{r.title}: {r.reason}" for r in results if r.status == Status.DEVIATION]
    assert not deviations, "\n".join(deviations)
    executed = [result for result in results if result.status != Status.SKIPPED]
    assert len(executed) > 30
    skipped = sorted({f"{result.title}: {result.reason}" for result in results if result.status == Status.SKIPPED})
    print(f"{len(executed)} checks ran, none failed; skipped: {skipped}")
