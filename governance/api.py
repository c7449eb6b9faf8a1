"""Policy administration API (API.md, Policy administration).

Each view checks twice (STYLE.md): ``PolicyPermission`` asks for the role's
model permission, and the view narrows every list to the caller's region
scope, answers 404 for objects outside it, and refuses creates and changes
outside it with 403 ``out_of_scope``. Rules and notices are drafted, changed
only as drafts by their author, and approved by someone else holding the
approve permission; approved ones never change (409 ``immutable``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, Q, QuerySet
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from audit.actors import Actor
from consentry.errors import Conflict, DomainError, Forbidden
from consentry.idempotency import idempotent
from governance import services
from governance.docs import (
    approve_schema,
    collection_schema,
    item_schema,
)
from governance.models import (
    ApprovalState,
    ContextExclusion,
    DataCategory,
    JurisdictionRule,
    LegalInstrument,
    Notice,
    Purpose,
    Region,
    RegionKind,
    RetentionPolicy,
)
from governance.permissions import (
    PolicyPermission,
    RegionScope,
    approvable_regions,
    managed_regions,
    require_region,
    visible_regions,
)
from governance.serializers import (
    ApprovalSerializer,
    DataCategoryInputSerializer,
    DataCategorySerializer,
    ExclusionInputSerializer,
    ExclusionSerializer,
    InstrumentInputSerializer,
    InstrumentSerializer,
    NoticeInputSerializer,
    NoticeSerializer,
    PurposeInputSerializer,
    PurposeSerializer,
    RegionInputSerializer,
    RegionSerializer,
    RetentionInputSerializer,
    RetentionSerializer,
    RuleInputSerializer,
    RuleSerializer,
    merged,
)
from people.models import Employee


class PolicyView(GenericAPIView):
    """A policy resource: role permission first, then the region scope in each handler."""

    permission_classes = [PolicyPermission]
    # JSON only: anything else is a 415, never a half-parsed form.
    parser_classes = [JSONParser]
    model: type[Model]
    output: type
    # What the view's writes accept (POST, PUT and PATCH share one shape; approvals take
    # ApprovalSerializer): OPTIONS describes it to clients from here.
    serializer_class: type

    def actor(self) -> Actor:
        return Actor.for_user(self.request.user)

    def respond(self, obj: Any, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.output(obj).data, status=status_code)

    def listing(self) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.output(page, many=True).data)

    def query_choice(self, name: str, allowed: list[str]) -> str | None:
        """A filter from the query string; an unknown value is invalid input, not an empty list."""
        value = self.request.query_params.get(name)
        if value is not None and value not in allowed:
            raise DomainError(
                f"{name} must be one of {', '.join(allowed)}.", code="invalid", errors={name: "Unknown value."}
            )
        return value


class PolicyListView(PolicyView):
    """A collection of policy objects: GET lists what the caller may see; each resource adds its POST."""

    def get(self, request: Request) -> Response:
        return self.listing()


class PolicyItemView(PolicyView):
    """One policy object: GET reads it; PUT replaces and PATCH changes it through ``change``."""

    def change(self, request: Request, partial: bool) -> Response:
        raise NotImplementedError

    def get(self, request: Request, **lookup: Any) -> Response:
        return self.respond(self.get_object())

    @idempotent
    def put(self, request: Request, **lookup: Any) -> Response:
        return self.change(request, partial=False)

    @idempotent
    def patch(self, request: Request, **lookup: Any) -> Response:
        return self.change(request, partial=True)


class RemovablePolicyItemView(PolicyItemView):
    """A policy object that DELETE can remove (drafts, exclusions) through ``remove``."""

    def remove(self) -> None:
        raise NotImplementedError

    @idempotent
    def delete(self, request: Request, **lookup: Any) -> Response:
        request.data  # noqa: B018 - no body is expected, but a malformed or oversized one is refused
        self.remove()
        return Response(status=status.HTTP_204_NO_CONTENT)


def _invalid(field: str, message: str) -> DomainError:
    return DomainError(message, code="invalid", errors={field: [message]})


def _region(code: str | None, field: str = "region") -> Region:
    region = Region.objects.filter(code=code).first()
    if region is None:
        raise _invalid(field, f"Unknown region {code!r}.")
    return region


def _employee(hr_id: str | None) -> Employee | None:
    if hr_id is None:
        return None
    employee = Employee.objects.filter(hr_id=hr_id).first()
    if employee is None:
        raise _invalid("employee", f"Unknown employee {hr_id!r}.")
    return employee


def _same(field: str, given: Any, current: Any) -> None:
    if given != current:
        raise _invalid(field, f"{field} cannot change; create a new one instead.")


def _exists(noun: str, key: str) -> Conflict:
    return Conflict(f"{noun} {key!r} already exists; change it with PUT or PATCH.", code="exists")


def _body(request: Request) -> dict:
    """The request's JSON object; a bare list or scalar is invalid input."""
    if not isinstance(request.data, dict):
        raise _invalid("non_field_errors", "Expected a JSON object.")
    return request.data


# Regions -------------------------------------------------------------------------------------


def _require_members(scope: RegionScope, members: list[str]) -> None:
    # Adding a country to a group would hand the group's legal team its policy.
    for member in members:
        require_region(scope, member, doing="add members")


def _region_queryset(user) -> QuerySet[Region]:
    queryset = Region.objects.prefetch_related("members", "groups").order_by("code")
    return visible_regions(user).filter(queryset, field="code")


@collection_schema("regions", RegionSerializer, RegionInputSerializer, scoped=True)
class RegionListView(PolicyListView):
    model = Region
    output = RegionSerializer
    serializer_class = RegionInputSerializer

    def get_queryset(self) -> QuerySet[Region]:
        return _region_queryset(self.request.user)

    @idempotent
    def post(self, request: Request) -> Response:
        serializer = RegionInputSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        scope = managed_regions(request.user)
        kind = data["kind"] or (RegionKind.SUBDIVISION if "-" in data["code"] else RegionKind.COUNTRY)
        if kind != RegionKind.SUBDIVISION and not scope.everything:
            # Countries and groups are company-wide; a subdivision belongs to its country's team.
            raise Forbidden(
                "Only a legal user covering every region may add countries and groups.", code="out_of_scope"
            )
        require_region(scope, data["code"], doing="add regions")
        _require_members(scope, data["members"])
        if Region.objects.filter(code=data["code"]).exists():
            raise _exists("Region", data["code"])
        region = services.region_save(
            code=data["code"], name=data["name"], kind=kind, members=data["members"], actor=self.actor()
        )
        return self.respond(region, status.HTTP_201_CREATED)


@item_schema("regions", RegionSerializer, RegionInputSerializer, lookup="code", deletable=False)
class RegionDetailView(PolicyItemView):
    model = Region
    output = RegionSerializer
    serializer_class = RegionInputSerializer
    lookup_field = "code"

    def get_queryset(self) -> QuerySet[Region]:
        return _region_queryset(self.request.user)

    def change(self, request: Request, partial: bool) -> Response:
        region = self.get_object()
        scope = managed_regions(request.user)
        require_region(scope, region.code, doing="change regions")
        current = {
            "code": region.code,
            "name": region.name,
            "kind": region.kind,
            "members": list(region.members.values_list("code", flat=True)),
        }
        data = merged(RegionInputSerializer, current, _body(request), partial=partial).validated_data
        _same("code", data["code"], region.code)
        _same("kind", data["kind"] or region.kind, region.kind)
        _require_members(scope, sorted(set(data["members"]) - set(current["members"])))
        region = services.region_save(
            code=region.code, name=data["name"], kind=region.kind, members=data["members"], actor=self.actor()
        )
        return self.respond(self.get_queryset().get(pk=region.pk))


# Data categories and purposes (company-wide) ---------------------------------------------------


@collection_schema("data-categories", DataCategorySerializer, DataCategoryInputSerializer)
class DataCategoryListView(PolicyListView):
    model = DataCategory
    output = DataCategorySerializer
    serializer_class = DataCategoryInputSerializer
    queryset = DataCategory.objects.order_by("slug")

    @idempotent
    def post(self, request: Request) -> Response:
        serializer = DataCategoryInputSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if DataCategory.objects.filter(slug=data["slug"]).exists():
            raise _exists("Data category", data["slug"])
        category = services.category_save(**data, actor=self.actor())
        return self.respond(category, status.HTTP_201_CREATED)


@item_schema("data-categories", DataCategorySerializer, DataCategoryInputSerializer, lookup="slug", deletable=False)
class DataCategoryDetailView(PolicyItemView):
    model = DataCategory
    output = DataCategorySerializer
    serializer_class = DataCategoryInputSerializer
    queryset = DataCategory.objects.all()
    lookup_field = "slug"

    def change(self, request: Request, partial: bool) -> Response:
        category = self.get_object()
        current = DataCategorySerializer(category).data
        data = merged(DataCategoryInputSerializer, current, _body(request), partial=partial).validated_data
        _same("slug", data["slug"], category.slug)
        return self.respond(services.category_save(**data, actor=self.actor()))


def _save_purpose(data: dict, actor: Actor, existing: Purpose | None = None) -> Purpose:
    if existing is not None and existing.prohibited and not data["prohibited"]:
        # Principle 3: performance evaluation and emotion inference stay off limits for good.
        raise Conflict("A prohibited purpose stays prohibited.", code="prohibited_is_permanent")
    return services.purpose_save(**data, actor=actor)


@collection_schema("purposes", PurposeSerializer, PurposeInputSerializer)
class PurposeListView(PolicyListView):
    model = Purpose
    output = PurposeSerializer
    serializer_class = PurposeInputSerializer
    queryset = Purpose.objects.prefetch_related("categories").order_by("slug")

    @idempotent
    def post(self, request: Request) -> Response:
        serializer = PurposeInputSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if Purpose.objects.filter(slug=data["slug"]).exists():
            raise _exists("Purpose", data["slug"])
        purpose = _save_purpose(data, self.actor())
        return self.respond(purpose, status.HTTP_201_CREATED)


@item_schema("purposes", PurposeSerializer, PurposeInputSerializer, lookup="slug", deletable=False)
class PurposeDetailView(PolicyItemView):
    model = Purpose
    output = PurposeSerializer
    serializer_class = PurposeInputSerializer
    queryset = Purpose.objects.prefetch_related("categories")
    lookup_field = "slug"

    def change(self, request: Request, partial: bool) -> Response:
        purpose = self.get_object()
        current = PurposeSerializer(purpose).data
        data = merged(PurposeInputSerializer, current, _body(request), partial=partial).validated_data
        _same("slug", data["slug"], purpose.slug)
        _save_purpose(data, self.actor(), existing=purpose)
        return self.respond(self.get_queryset().get(pk=purpose.pk))


# Notices (company-wide, four eyes) -----------------------------------------------------------------


def _notice_queryset() -> QuerySet[Notice]:
    return Notice.objects.select_related("created_by", "approved_by").prefetch_related("items").order_by("-version")


@collection_schema("notices", NoticeSerializer, NoticeInputSerializer, filters=("state",))
class NoticeListView(PolicyListView):
    model = Notice
    output = NoticeSerializer
    serializer_class = NoticeInputSerializer

    def get_queryset(self) -> QuerySet[Notice]:
        queryset = _notice_queryset()
        state = self.query_choice("state", ApprovalState.values)
        return queryset.filter(state=state) if state else queryset

    @idempotent
    def post(self, request: Request) -> Response:
        serializer = NoticeInputSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = {k: v for k, v in serializer.validated_data.items() if k != "items"}
        notice = services.notice_draft(**data, items=serializer.item_tuples(), actor=self.actor())
        return self.respond(_notice_queryset().get(pk=notice.pk), status.HTTP_201_CREATED)


@item_schema("notices", NoticeSerializer, NoticeInputSerializer, lookup="version", drafts_only=True)
class NoticeDetailView(RemovablePolicyItemView):
    model = Notice
    output = NoticeSerializer
    serializer_class = NoticeInputSerializer
    lookup_field = "version"

    def get_queryset(self) -> QuerySet[Notice]:
        return _notice_queryset()

    def _draft(self) -> Notice:
        notice = self.get_object()
        if notice.state != ApprovalState.DRAFT:
            raise Conflict(
                f"Notice version {notice.version} is published and immutable; draft the next version instead.",
                code="immutable",
            )
        return notice

    def change(self, request: Request, partial: bool) -> Response:
        notice = self._draft()
        current = NoticeSerializer(notice).data
        current["items"] = [{k: i[k] for k in ("purpose", "category", "description")} for i in current["items"]]
        serializer = merged(NoticeInputSerializer, current, _body(request), partial=partial)
        data = {k: v for k, v in serializer.validated_data.items() if k != "items"}
        services.notice_draft_update(notice=notice, **data, items=serializer.item_tuples(), actor=self.actor())
        return self.respond(_notice_queryset().get(pk=notice.pk))

    def remove(self) -> None:
        services.notice_discard_draft(notice=self._draft(), actor=self.actor())


@approve_schema("notices", NoticeSerializer, lookup="version")
class NoticeApproveView(PolicyView):
    model = Notice
    output = NoticeSerializer
    serializer_class = ApprovalSerializer
    lookup_field = "version"
    approval = True

    def get_queryset(self) -> QuerySet[Notice]:
        return _notice_queryset()

    @idempotent
    def post(self, request: Request, version: int) -> Response:
        notice = self.get_object()
        serializer = ApprovalSerializer(data=_body(request) if request.data else {})
        serializer.is_valid(raise_exception=True)
        if not approvable_regions(request.user).everything:
            # A notice applies in every region, so approving it takes the global permission.
            raise Forbidden("Approving a notice needs the approve permission for every region.", code="out_of_scope")
        services.notice_approve(
            notice=notice, actor=self.actor(), published_at=serializer.validated_data.get("published_at")
        )
        return self.respond(_notice_queryset().get(pk=notice.pk))


# Jurisdiction rules (regional, four eyes) -----------------------------------------------------------


def _rule_queryset(user) -> QuerySet[JurisdictionRule]:
    queryset = JurisdictionRule.objects.select_related("created_by", "approved_by").order_by(
        "region", "-effective_from", "id"
    )
    return visible_regions(user).filter(queryset)


@collection_schema("jurisdiction-rules", RuleSerializer, RuleInputSerializer, scoped=True, filters=("region", "state"))
class RuleListView(PolicyListView):
    model = JurisdictionRule
    output = RuleSerializer
    serializer_class = RuleInputSerializer

    def get_queryset(self) -> QuerySet[JurisdictionRule]:
        queryset = _rule_queryset(self.request.user)
        state = self.query_choice("state", ApprovalState.values)
        region = self.request.query_params.get("region")
        if state:
            queryset = queryset.filter(state=state)
        return queryset.filter(region=region) if region else queryset

    @idempotent
    def post(self, request: Request) -> Response:
        serializer = RuleInputSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        region = _region(data.pop("region"))
        require_region(managed_regions(request.user), region.code, doing="draft rules")
        supersedes_id = data.pop("supersedes")
        supersedes = None
        if supersedes_id is not None:
            supersedes = _rule_queryset(request.user).filter(pk=supersedes_id).first()
            if supersedes is None:
                raise _invalid("supersedes", f"Unknown rule {supersedes_id}.")
        rule = services.rule_draft(region=region, supersedes=supersedes, **data, actor=self.actor())
        return self.respond(_rule_queryset(request.user).get(pk=rule.pk), status.HTTP_201_CREATED)


@item_schema("jurisdiction-rules", RuleSerializer, RuleInputSerializer, lookup="id", drafts_only=True)
class RuleDetailView(RemovablePolicyItemView):
    model = JurisdictionRule
    output = RuleSerializer
    serializer_class = RuleInputSerializer

    def get_queryset(self) -> QuerySet[JurisdictionRule]:
        return _rule_queryset(self.request.user)

    def _draft(self) -> JurisdictionRule:
        rule = self.get_object()
        require_region(managed_regions(self.request.user), rule.region_id, doing="change rules")
        if rule.state != ApprovalState.DRAFT:
            raise Conflict(
                f"Rule {rule.pk} is {rule.state} and immutable; draft a successor with supersedes={rule.pk}.",
                code="immutable",
            )
        return rule

    def change(self, request: Request, partial: bool) -> Response:
        rule = self._draft()
        current = {
            "region": rule.region_id,
            "status": rule.status,
            "preconditions": rule.preconditions,
            "blocked_categories": rule.blocked_categories,
            "max_retention_days": rule.max_retention_days,
            "effective_from": rule.effective_from,
            "effective_to": rule.effective_to,
            "notes": rule.notes,
            "supersedes": rule.supersedes_id,
        }
        data = dict(merged(RuleInputSerializer, current, _body(request), partial=partial).validated_data)
        _same("region", data.pop("region"), rule.region_id)
        _same("supersedes", data.pop("supersedes"), rule.supersedes_id)
        services.rule_draft_update(rule=rule, **data, actor=self.actor())
        return self.respond(self.get_queryset().get(pk=rule.pk))

    def remove(self) -> None:
        services.rule_discard_draft(rule=self._draft(), actor=self.actor())


@approve_schema("jurisdiction-rules", RuleSerializer, lookup="id")
class RuleApproveView(PolicyView):
    model = JurisdictionRule
    output = RuleSerializer
    serializer_class = ApprovalSerializer
    approval = True

    def get_queryset(self) -> QuerySet[JurisdictionRule]:
        return _rule_queryset(self.request.user)

    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        rule = self.get_object()
        ApprovalSerializer(data=_body(request) if request.data else {}).is_valid(raise_exception=True)
        require_region(approvable_regions(request.user), rule.region_id, doing="approve rules")
        services.rule_approve(rule=rule, actor=self.actor())
        return self.respond(self.get_queryset().get(pk=rule.pk))


# Legal instruments (regional) ---------------------------------------------------------------------------


def _instrument_queryset(user) -> QuerySet[LegalInstrument]:
    queryset = LegalInstrument.objects.select_related("employee", "created_by").order_by("region", "kind", "id")
    return visible_regions(user).filter(queryset)


@collection_schema(
    "legal-instruments", InstrumentSerializer, InstrumentInputSerializer, scoped=True, filters=("region",)
)
class InstrumentListView(PolicyListView):
    model = LegalInstrument
    output = InstrumentSerializer
    serializer_class = InstrumentInputSerializer

    def get_queryset(self) -> QuerySet[LegalInstrument]:
        queryset = _instrument_queryset(self.request.user)
        region = self.request.query_params.get("region")
        return queryset.filter(region=region) if region else queryset

    @idempotent
    def post(self, request: Request) -> Response:
        serializer = InstrumentInputSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        region = _region(data.pop("region"))
        require_region(managed_regions(request.user), region.code, doing="record legal instruments")
        employee = _employee(data.pop("employee"))
        instrument = services.instrument_save(region=region, employee=employee, **data, actor=self.actor())
        return self.respond(_instrument_queryset(request.user).get(pk=instrument.pk), status.HTTP_201_CREATED)


@item_schema("legal-instruments", InstrumentSerializer, InstrumentInputSerializer, lookup="id", deletable=False)
class InstrumentDetailView(PolicyItemView):
    model = LegalInstrument
    output = InstrumentSerializer
    serializer_class = InstrumentInputSerializer

    def get_queryset(self) -> QuerySet[LegalInstrument]:
        return _instrument_queryset(self.request.user)

    def change(self, request: Request, partial: bool) -> Response:
        instrument = self.get_object()
        scope = managed_regions(request.user)
        require_region(scope, instrument.region_id, doing="change legal instruments")
        current = {
            **InstrumentSerializer(instrument).data,
            "valid_from": instrument.valid_from,
            "valid_to": instrument.valid_to,
        }
        data = dict(merged(InstrumentInputSerializer, current, _body(request), partial=partial).validated_data)
        region = _region(data.pop("region"))
        require_region(scope, region.code, doing="move legal instruments")
        employee = _employee(data.pop("employee"))
        services.instrument_save(instrument=instrument, region=region, employee=employee, **data, actor=self.actor())
        return self.respond(self.get_queryset().get(pk=instrument.pk))


# Retention (company-wide or regional) ---------------------------------------------------------------------


def _retention_queryset(user) -> QuerySet[RetentionPolicy]:
    queryset = RetentionPolicy.objects.order_by("category", "region", "purpose", "id")
    scope = visible_regions(user)
    if scope.everything:
        return queryset
    # Company-wide policies are everyone's; regional ones follow the region scope.
    return queryset.filter(Q(region__isnull=True) | Q(region__in=scope.codes))


@collection_schema("retention-policies", RetentionSerializer, RetentionInputSerializer, scoped=True)
class RetentionListView(PolicyListView):
    model = RetentionPolicy
    output = RetentionSerializer
    serializer_class = RetentionInputSerializer

    def get_queryset(self) -> QuerySet[RetentionPolicy]:
        return _retention_queryset(self.request.user)

    @idempotent
    def post(self, request: Request) -> Response:
        serializer = RetentionInputSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        category = DataCategory.objects.filter(slug=data.pop("category")).first()
        if category is None:
            raise _invalid("category", "Unknown data category.")
        region_code, purpose_slug = data.pop("region"), data.pop("purpose")
        region = _region(region_code) if region_code is not None else None
        if region is not None:
            require_region(managed_regions(request.user), region.code, doing="set retention")
        purpose = None
        if purpose_slug is not None:
            purpose = Purpose.objects.filter(slug=purpose_slug).first()
            if purpose is None:
                raise _invalid("purpose", f"Unknown purpose {purpose_slug!r}.")
        if RetentionPolicy.objects.filter(category=category, region=region, purpose=purpose).exists():
            raise _exists("Retention policy", "/".join(filter(None, [category.slug, region_code, purpose_slug])))
        policy = services.retention_save(category=category, region=region, purpose=purpose, **data, actor=self.actor())
        return self.respond(policy, status.HTTP_201_CREATED)


@item_schema("retention-policies", RetentionSerializer, RetentionInputSerializer, lookup="id", deletable=False)
class RetentionDetailView(PolicyItemView):
    model = RetentionPolicy
    output = RetentionSerializer
    serializer_class = RetentionInputSerializer

    def get_queryset(self) -> QuerySet[RetentionPolicy]:
        return _retention_queryset(self.request.user)

    def change(self, request: Request, partial: bool) -> Response:
        policy = self.get_object()
        if policy.region_id is not None:
            require_region(managed_regions(request.user), policy.region_id, doing="change retention")
        current = RetentionSerializer(policy).data
        data = merged(RetentionInputSerializer, current, _body(request), partial=partial).validated_data
        for field in ("category", "region", "purpose"):
            _same(field, data[field], current[field])
        days = ("raw_retention_days", "delete_on_withdrawal_days", "delete_on_termination_days")
        policy = services.retention_save(
            category=policy.category,
            region=policy.region,
            purpose=policy.purpose,
            **{key: data[key] for key in days},
            actor=self.actor(),
        )
        return self.respond(policy)


# Context exclusions (company-wide) ---------------------------------------------------------------------------


@collection_schema("exclusions", ExclusionSerializer, ExclusionInputSerializer)
class ExclusionListView(PolicyListView):
    model = ContextExclusion
    output = ExclusionSerializer
    serializer_class = ExclusionInputSerializer
    queryset = ContextExclusion.objects.order_by("kind", "pattern")

    @idempotent
    def post(self, request: Request) -> Response:
        serializer = ExclusionInputSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if ContextExclusion.objects.filter(kind=data["kind"], pattern=data["pattern"]).exists():
            raise _exists("Exclusion", f"{data['kind']}:{data['pattern']}")
        exclusion = services.exclusion_save(**data, actor=self.actor())
        return self.respond(exclusion, status.HTTP_201_CREATED)


@item_schema("exclusions", ExclusionSerializer, ExclusionInputSerializer, lookup="id")
class ExclusionDetailView(RemovablePolicyItemView):
    model = ContextExclusion
    output = ExclusionSerializer
    serializer_class = ExclusionInputSerializer
    queryset = ContextExclusion.objects.all()

    def change(self, request: Request, partial: bool) -> Response:
        exclusion = self.get_object()
        current = ExclusionSerializer(exclusion).data
        data = merged(ExclusionInputSerializer, current, _body(request), partial=partial).validated_data
        _same("kind", data["kind"], exclusion.kind)
        _same("pattern", data["pattern"], exclusion.pattern)
        return self.respond(services.exclusion_save(**data, actor=self.actor()))

    def remove(self) -> None:
        services.exclusion_remove(exclusion=self.get_object(), actor=self.actor())
