"""SCIM 2.0 endpoints under /scim/v2/ (RFC 7644), for HR-system bearer tokens only.

Each view stays thin: scim2-models validates the payload against the
published schema, ``mapping`` turns it into an HR record, and
``people.services.employee_apply_hr_record`` makes the change, audited and
atomic. DELETE never erases: it terminates and hides the record.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from django.db import transaction
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from scim2_models import (
    Context,
    InvalidValueException,
    ListResponse,
    Meta,
    NotFoundException,
    PatchOp,
    ResourceType,
    Schema,
    SearchRequest,
)

from audit.actors import Actor
from consentry.idempotency import idempotent
from people.authentication import BearerTokenAuthentication, IsHRToken, token_of
from people.iso3166 import location_errors
from people.locks import employee_lock
from people.models import Employee
from people.scim.filters import filter_to_query
from people.scim.mapping import EmployeeUser, to_hr_record, to_resource
from people.scim.protocol import PARSERS, RENDERERS, SCIM_MEDIA_TYPE, scim_exception_handler, scim_response
from people.scim.resources import (
    MAX_RESULTS,
    POLICY,
    SERVICE_PROVIDER_CONFIG,
    USER_RESOURCE_TYPE,
    EnterpriseUser,
    User,
)
from people.services import employee_apply_hr_record, employee_deprovision

_SCHEMAS = [User.to_schema(), EnterpriseUser.to_schema()]
_USER_EXAMPLE = {
    "schemas": [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ],
    "userName": "carlos@example.com",
    "displayName": "Carlos Reyes",
    "active": True,
    "emails": [{"value": "carlos@example.com", "type": "work"}],
    "addresses": [{"type": "work", "country": "US", "region": "CA"}],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
        "employeeNumber": "E1002",
        "organization": "Example Corp US",
        "division": "San Francisco",
        "department": "Engineering",
    },
}


class ScimErrorSerializer(serializers.Serializer):
    """RFC 7644 §3.12: how every SCIM failure is answered (``protocol.scim_exception_handler``)."""

    schemas = serializers.ListField(child=serializers.CharField(), help_text="The SCIM Error message URN.")
    status = serializers.CharField(help_text="The HTTP status, as a string.")
    scimType = serializers.CharField(required=False, help_text="invalidFilter, invalidValue, uniqueness, …")
    detail = serializers.CharField(required=False)


_ERROR_DESCRIPTIONS = {
    400: "Invalid filter, attribute, value or JSON (scimType says which)",
    401: "No HR token, or it is unknown, expired or revoked",
    403: "A token of another kind than HR",
    404: "No such resource",
    409: "userName or employeeNumber already taken (scimType uniqueness)",
    413: "Request body too large",
    415: "Not application/scim+json or application/json",
    422: "Idempotency-Key reused for a different request",
    429: "Rate limited; retry after the Retry-After header's seconds",
}


def scim_errors(*statuses: int) -> dict:
    """OpenAPI responses for SCIM Error bodies: every endpoint's 401, 403 and 429, plus the given ones."""
    return {
        (status, SCIM_MEDIA_TYPE): OpenApiResponse(ScimErrorSerializer, description=_ERROR_DESCRIPTIONS[status])
        for status in sorted({401, 403, 429, *statuses})
    }


def hr_actor(request: Request) -> Actor:
    token = token_of(request)
    return Actor(kind="hr", ref=token.name if token else "unknown")


class ScimView(APIView):
    """Bearer HR tokens only, SCIM media type, SCIM error bodies."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsHRToken]
    # HR syncs come in bursts of thousands: their own, higher rate (CONSENTRY_RATE_PROVISIONING).
    throttle_scope = "provisioning"
    renderer_classes = RENDERERS
    parser_classes = PARSERS

    def get_exception_handler(self):
        return scim_exception_handler

    def dump(self, resource: Any, context: Context, request: Request | None = None) -> dict[str, Any]:
        parameters = None
        if request is not None:
            parameters = _search_request(
                {
                    "attributes": request.query_params.get("attributes"),
                    "excludedAttributes": request.query_params.get("excludedAttributes"),
                }
            )
        return resource.model_dump(scim_ctx=context, response_parameters=parameters, scim_policy=POLICY)


def _search_request(payload: dict[str, Any]) -> Any:
    cleaned = {key: value for key, value in payload.items() if value not in (None, "")}
    for key in ("startIndex", "count"):
        if isinstance(cleaned.get(key), str):
            try:
                cleaned[key] = int(cleaned[key])
            except ValueError as exc:
                raise InvalidValueException(detail=f"{key} must be an integer.") from exc
    return SearchRequest[EmployeeUser].model_validate(cleaned, scim_ctx=Context.SEARCH_REQUEST, scim_policy=POLICY)


def _location(request: Request, employee: Employee) -> str:
    return request.build_absolute_uri(reverse("scim:user", args=[employee.pk]))


def _provisioned() -> Any:
    # Deleted records are kept as evidence but, for SCIM, are gone (RFC 7644 §3.6).
    return Employee.objects.filter(deprovisioned_at__isnull=True)


def _employee(pk: str, *, for_update: bool = False) -> Employee:
    employee = None
    if pk.isdigit():
        with suppress(Employee.DoesNotExist):
            # Writes take the lock every service takes on the employee (people.locks says which).
            employee = employee_lock(employee_id=int(pk)) if for_update else _provisioned().get(pk=int(pk))
    if employee is None or employee.deprovisioned_at is not None:
        raise NotFoundException(detail=f"No User with id {pk!r}.")
    return employee


class UsersView(ScimView):
    @extend_schema(
        tags=["SCIM"],
        summary="List or filter employees (SCIM ListResponse)",
        operation_id="scim_users_list",
        responses={200: OpenApiTypes.OBJECT, **scim_errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self._search(request, dict(request.query_params.items()))

    @extend_schema(
        tags=["SCIM"],
        summary="Provision an employee",
        operation_id="scim_users_create",
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT, **scim_errors(400, 409, 413, 415, 422)},
        examples=[OpenApiExample("Employee in California", value=_USER_EXAMPLE, request_only=True)],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        resource = EmployeeUser.model_validate(
            request.data, scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=POLICY
        )
        employee = employee_apply_hr_record(hr_record=to_hr_record(resource, current=None), actor=hr_actor(request))
        location = _location(request, employee)
        body = self.dump(to_resource(employee, location=location), Context.RESOURCE_CREATION_RESPONSE, request)
        return scim_response(body, status=201, headers={"Location": location})

    def _search(self, request: Request, payload: dict[str, Any]) -> Response:
        search = _search_request(payload)
        queryset = _provisioned().order_by("pk")
        if search.filter:
            queryset = queryset.filter(filter_to_query(str(search.filter), EmployeeUser))
        total = queryset.count()
        start = search.start_index_0 or 0
        count = MAX_RESULTS if search.count is None else min(search.count, MAX_RESULTS)
        # A start past the end is an empty page, never an OFFSET the database refuses (past 64 bits).
        page = list(queryset[start : start + count]) if count and start < total else []
        response = ListResponse[EmployeeUser](
            total_results=total,
            start_index=start + 1,
            items_per_page=len(page),
            resources=[to_resource(employee, location=_location(request, employee)) for employee in page],
        )
        body = response.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=search, scim_policy=POLICY)
        return scim_response(body)


class UsersSearchView(UsersView):
    http_method_names = ["post", "options"]

    @extend_schema(
        tags=["SCIM"],
        summary="Search employees (SCIM SearchRequest)",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **scim_errors(400, 413, 415)},
    )
    def post(self, request: Request) -> Response:
        payload = request.data if isinstance(request.data, dict) else {}
        return self._search(request, {key: value for key, value in payload.items() if key != "schemas"})


class UserView(ScimView):
    @extend_schema(
        tags=["SCIM"],
        summary="One employee",
        operation_id="scim_user",
        responses={200: OpenApiTypes.OBJECT, **scim_errors(400, 404)},
    )
    def get(self, request: Request, pk: str) -> Response:
        employee = _employee(pk)
        resource = to_resource(employee, location=_location(request, employee))
        return scim_response(self.dump(resource, Context.RESOURCE_QUERY_RESPONSE, request))

    @extend_schema(
        tags=["SCIM"],
        summary="Replace an employee's HR data",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **scim_errors(404, 400, 409, 413, 415, 422)},
    )
    @idempotent
    def put(self, request: Request, pk: str) -> Response:
        resource = EmployeeUser.model_validate(
            request.data, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST, scim_policy=POLICY
        )
        with transaction.atomic():
            employee = _employee(pk, for_update=True)
            employee = employee_apply_hr_record(
                hr_record=to_hr_record(resource, current=employee), employee=employee, actor=hr_actor(request)
            )
        location = _location(request, employee)
        return scim_response(
            self.dump(to_resource(employee, location=location), Context.RESOURCE_REPLACEMENT_RESPONSE, request)
        )

    @extend_schema(
        tags=["SCIM"],
        summary="Change an employee (transfer, termination, details)",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **scim_errors(404, 400, 409, 413, 415, 422)},
        examples=[
            OpenApiExample(
                "Transfer to Germany",
                request_only=True,
                value={
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": 'addresses[type eq "work"].country', "value": "DE"}],
                },
            )
        ],
    )
    @idempotent
    def patch(self, request: Request, pk: str) -> Response:
        patch = PatchOp[EmployeeUser].model_validate(
            request.data, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY
        )
        with transaction.atomic():
            employee = _employee(pk, for_update=True)
            resource = to_resource(employee, location=_location(request, employee))
            patch.patch(resource, scim_policy=POLICY)
            _drop_stale_region(resource, before=employee)
            employee = employee_apply_hr_record(
                hr_record=to_hr_record(resource, current=employee), employee=employee, actor=hr_actor(request)
            )
        location = _location(request, employee)
        return scim_response(
            self.dump(to_resource(employee, location=location), Context.RESOURCE_PATCH_RESPONSE, request)
        )

    @extend_schema(
        tags=["SCIM"],
        summary="Deprovision: terminate, never erase",
        request=None,
        responses={204: None, **scim_errors(400, 404, 413, 422)},
    )
    @idempotent
    def delete(self, request: Request, pk: str) -> Response:
        with transaction.atomic():
            employee_deprovision(employee=_employee(pk, for_update=True), actor=hr_actor(request))
        return Response(status=204)


def _drop_stale_region(resource: Any, *, before: Employee) -> None:
    """A PATCH that moves the country but leaves the old region behind clears that region.

    ``replace addresses[type eq "work"].country "DE"`` on someone in US-CA
    means "now works in Germany"; the untouched "US-CA" no longer describes
    anything and would make the whole change invalid.
    """
    for address in resource.addresses or []:
        if (address.type or "work").lower() != "work" or not address.country or not address.region:
            continue
        country = address.country.strip().upper()
        unchanged_region = address.region in (before.subdivision, before.subdivision.partition("-")[2])
        if country != before.country and unchanged_region and location_errors(country, address.region.upper()):
            address.region = None


class ServiceProviderConfigView(ScimView):
    @extend_schema(
        tags=["SCIM"],
        summary="What this SCIM service supports",
        responses={200: OpenApiTypes.OBJECT, **scim_errors()},
    )
    def get(self, request: Request) -> Response:
        config = SERVICE_PROVIDER_CONFIG.model_copy(deep=True)
        return scim_response(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _with_meta(resource: Any, request: Request, resource_type: str, url: str) -> Any:
    resource = resource.model_copy(deep=True)
    resource.meta = Meta(resource_type=resource_type, location=request.build_absolute_uri(url))
    return resource


class ResourceTypesView(ScimView):
    @extend_schema(
        tags=["SCIM"],
        summary="Resource types served",
        operation_id="scim_resource_types",
        responses={200: OpenApiTypes.OBJECT, **scim_errors()},
    )
    def get(self, request: Request, pk: str | None = None) -> Response:
        types = [_with_meta(USER_RESOURCE_TYPE, request, "ResourceType", reverse("scim:resource-type", args=["User"]))]
        return _discovery_response(types, pk, ResourceType, "ResourceType")


class SchemasView(ScimView):
    @extend_schema(
        tags=["SCIM"],
        summary="Schemas of the served resources",
        operation_id="scim_schemas",
        responses={200: OpenApiTypes.OBJECT, **scim_errors()},
    )
    def get(self, request: Request, pk: str | None = None) -> Response:
        schemas = [_with_meta(s, request, "Schema", reverse("scim:schema", args=[s.id])) for s in _SCHEMAS]
        return _discovery_response(schemas, pk, Schema, "Schema")


class ResourceTypeView(ResourceTypesView):
    @extend_schema(
        tags=["SCIM"],
        summary="One resource type",
        operation_id="scim_resource_type",
        responses={200: OpenApiTypes.OBJECT, **scim_errors(404)},
    )
    def get(self, request: Request, pk: str | None = None) -> Response:
        return super().get(request, pk)


class SchemaView(SchemasView):
    @extend_schema(
        tags=["SCIM"],
        summary="One schema",
        operation_id="scim_schema",
        responses={200: OpenApiTypes.OBJECT, **scim_errors(404)},
    )
    def get(self, request: Request, pk: str | None = None) -> Response:
        return super().get(request, pk)


def _discovery_response(items: list[Any], pk: str | None, model: type, name: str) -> Response:
    if pk is not None:
        for item in items:
            if item.id == pk:
                return scim_response(item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
        raise NotFoundException(detail=f"No {name} {pk!r}.")
    # scim2-models builds the list type from a model class given at run time, which no static type can name.
    response = ListResponse[model](  # type: ignore[valid-type]
        total_results=len(items), start_index=1, items_per_page=len(items), resources=items
    )
    return scim_response(response.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


class NotFoundView(ScimView):
    """Anything else under /scim/v2/ (Groups, Bulk, Me…): a SCIM 404, after authentication."""

    schema = None  # not an API endpoint: kept out of the OpenAPI document

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        raise NotFoundException(detail="This SCIM endpoint does not exist here.")

    def get(self, request: Request, *args, **kwargs) -> Response:  # pragma: no cover - initial() raises
        raise NotFoundException()

    post = put = patch = delete = get
