"""The SCIM resources Consentry serves, as scim2-models (pydantic) classes.

Consentry keeps only what governing capture needs, so its User schema is a
subset of RFC 7643 §4.1: who (userName, employeeNumber, displayName, work
email), where (the work address: ISO 3166 country and subdivision), for whom
(organization, division, department) and whether the person works here at
all (active). Attributes outside that subset are ignored on input, never
stored: data minimisation for a system that holds evidence about people.

The published /Schemas are generated from these classes, so what is
declared, accepted and returned cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated

import pycountry
from pydantic import EmailStr, Field
from scim2_models import (
    URN,
    AnyExtension,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    ETag,
    Extension,
    External,
    Filter,
    Mutability,
    Patch,
    Reference,
    Required,
    Resource,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MAX_RESULTS = 200

# Published as canonicalValues (RFC 7643 §7), so a generic client picks codes the
# server accepts: every ISO 3166-1 alpha-2 country and every full ISO 3166-2
# subdivision code pycountry knows, the tables people.iso3166 checks against.
COUNTRY_CODES = sorted(country.alpha_2 for country in pycountry.countries)
SUBDIVISION_CODES = sorted(subdivision.code for subdivision in pycountry.subdivisions)


class WorkEmail(ComplexAttribute):
    """The employee's work e-mail address; other addresses are not kept."""

    value: EmailStr | None = None
    """The e-mail address."""

    type: str | None = Field(None, examples=["work"])
    """Always "work": Consentry keeps no private addresses."""


class WorkAddress(ComplexAttribute):
    """Where the employee works: the jurisdiction whose rules apply to them."""

    type: Annotated[str | None, Required.true] = Field(default=None, examples=["work"])
    """Always "work": only the work address decides the jurisdiction."""

    country: Annotated[str | None, Required.true] = Field(None, examples=COUNTRY_CODES)
    """ISO 3166-1 alpha-2 country code, e.g. "US"."""

    region: str | None = Field(None, examples=SUBDIVISION_CODES)
    """ISO 3166-2 subdivision code of the country, e.g. "US-NY" (also accepted without the prefix, "NY")."""


class User(Resource[AnyExtension]):
    """An employee whose workplace activity may be captured, as the HR system states it."""

    __schema__ = URN(USER_SCHEMA)

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    """The HR system's unique login name for the person."""

    display_name: str | None = None
    """The name shown to the employee and to auditors."""

    active: Annotated[bool | None, Required.true] = None
    """Whether the person works here. false terminates them: every decision denies."""

    emails: list[WorkEmail] | None = None
    """The work e-mail address."""

    addresses: Annotated[list[WorkAddress] | None, Required.true] = None
    """The work address; its country and region select the jurisdiction rules."""


class EnterpriseUser(Extension):
    """Employment data: the HR employee number and the organisational scope of legal instruments."""

    __schema__ = URN(ENTERPRISE_SCHEMA)

    employee_number: Annotated[str | None, Required.true, Mutability.immutable, Uniqueness.server, CaseExact.true] = (
        None
    )
    """The HR employee number: Consentry's employee id, set once."""

    organization: str | None = None
    """The employing entity (legal employer)."""

    division: str | None = None
    """The site or bargaining unit, the scope of works-council and union agreements."""

    department: str | None = None
    """The department."""


EmployeeUser = User[EnterpriseUser]

USER_RESOURCE_TYPE = ResourceType.from_resource(EmployeeUser)
USER_RESOURCE_TYPE.description = "Employees provisioned by the HR system"
# from_resource lists the extensions of a resource that has them, and EmployeeUser has one.
assert USER_RESOURCE_TYPE.schema_extensions is not None
USER_RESOURCE_TYPE.schema_extensions[0].required = True

SERVICE_PROVIDER_CONFIG = ServiceProviderConfig(
    documentation_uri=Reference[External]("https://consentry.dev/docs/scim"),
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=False),
    etag=ETag(supported=False),
    authentication_schemes=[
        AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="HR bearer token",
            description="An HR token issued with `manage.py issue_token hr`, sent as Authorization: Bearer.",
            primary=True,
        )
    ],
)

# Tolerant where real identity providers deviate without ambiguity: attributes
# Consentry does not keep are dropped (Okta and Entra send many), Entra's
# remove-with-value, and a PATCH on addresses[type eq "work"] that creates the
# work address when the record has none yet.
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

PROVIDER = ScimProvider(
    models=[User, EnterpriseUser], resource_types=[USER_RESOURCE_TYPE], config=SERVICE_PROVIDER_CONFIG, policy=POLICY
)
