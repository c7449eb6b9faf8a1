"""Input and output shapes of the policy administration API (API.md, Policy administration).

Output serializers read models; input serializers only check types and
shapes. Whether a slug exists, a region is in scope or a rule may change is
decided by the views and services, which say so in problem+json.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from rest_framework import serializers

from consentry.fields import StrictBooleanField
from governance.models import (
    ContextExclusion,
    DataCategory,
    ExclusionKind,
    ExclusionReason,
    JurisdictionRule,
    LegalInstrument,
    Notice,
    NoticeItem,
    PreconditionType,
    Purpose,
    Region,
    RegionKind,
    RetentionPolicy,
    RuleStatus,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from people.models import Employee

_InputSerializer = TypeVar("_InputSerializer", bound=serializers.Serializer[Any])

MAX_LIST = 500
# ISO 3166-1 alpha-2, ISO 3166-2 (US-NY, FR-75C), or an upper-case group code (EU, EEA).
REGION_CODE = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$|^[A-Z]{2,16}$"


def region_code_field(**kwargs: Any) -> serializers.RegexField:
    return serializers.RegexField(
        REGION_CODE,
        max_length=16,
        error_messages={"invalid": "Not a region code (ISO 3166 or an upper-case group code)."},
        **kwargs,
    )


SLUG_LENGTH = 64
LONG_TEXT = 100_000


def _username(user: User | None) -> str | None:
    return user.get_username() if user is not None else None


# Output -----------------------------------------------------------------------------------


class RegionSerializer(serializers.ModelSerializer[Region]):
    members: serializers.SlugRelatedField[Region] = serializers.SlugRelatedField(
        slug_field="code", many=True, read_only=True
    )
    groups: serializers.SlugRelatedField[Region] = serializers.SlugRelatedField(
        slug_field="code", many=True, read_only=True
    )

    class Meta:
        model = Region
        fields = ("code", "name", "kind", "members", "groups")


class DataCategorySerializer(serializers.ModelSerializer[DataCategory]):
    class Meta:
        model = DataCategory
        fields = ("slug", "name", "description", "sensitive", "biometric")


class PurposeSerializer(serializers.ModelSerializer[Purpose]):
    categories: serializers.SlugRelatedField[DataCategory] = serializers.SlugRelatedField(
        slug_field="slug", many=True, read_only=True
    )

    class Meta:
        model = Purpose
        fields = ("slug", "name", "description", "categories", "consent_validity_days", "prohibited")


class NoticeItemSerializer(serializers.ModelSerializer[NoticeItem]):
    purpose = serializers.CharField(source="purpose_id")
    category = serializers.CharField(source="category_id")

    class Meta:
        model = NoticeItem
        fields = ("purpose", "category", "description", "requires_reconsent")


class NoticeSerializer(serializers.ModelSerializer[Notice]):
    items = NoticeItemSerializer(many=True, read_only=True)
    created_by = serializers.SerializerMethodField()
    approved_by = serializers.SerializerMethodField()

    class Meta:
        model = Notice
        fields = (
            "version",
            "title",
            "summary",
            "body",
            "retention_statement",
            "access_statement",
            "no_evaluation_statement",
            "material",
            "items",
            "state",
            "published_at",
            "created_by",
            "created_at",
            "approved_by",
            "approved_at",
            "approved_via",
        )

    def get_created_by(self, notice: Notice) -> str | None:
        return _username(notice.created_by)

    def get_approved_by(self, notice: Notice) -> str | None:
        return _username(notice.approved_by)


class RuleSerializer(serializers.ModelSerializer[JurisdictionRule]):
    region = serializers.CharField(source="region_id")
    supersedes = serializers.IntegerField(source="supersedes_id", allow_null=True)
    created_by = serializers.SerializerMethodField()
    approved_by = serializers.SerializerMethodField()

    class Meta:
        model = JurisdictionRule
        fields = (
            "id",
            "region",
            "status",
            "preconditions",
            "blocked_categories",
            "max_retention_days",
            "effective_from",
            "effective_to",
            "state",
            "supersedes",
            "notes",
            "created_by",
            "created_at",
            "approved_by",
            "approved_at",
            "approved_via",
        )

    def get_created_by(self, rule: JurisdictionRule) -> str | None:
        return _username(rule.created_by)

    def get_approved_by(self, rule: JurisdictionRule) -> str | None:
        return _username(rule.approved_by)


class InstrumentSerializer(serializers.ModelSerializer[LegalInstrument]):
    region = serializers.CharField(source="region_id")
    employee: serializers.SlugRelatedField[Employee] = serializers.SlugRelatedField(
        slug_field="hr_id", read_only=True, allow_null=True
    )
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = LegalInstrument
        fields = (
            "id",
            "kind",
            "title",
            "region",
            "entity",
            "site",
            "employee",
            "valid_from",
            "valid_to",
            "document_ref",
            "created_by",
            "created_at",
        )

    def get_created_by(self, instrument: LegalInstrument) -> str | None:
        return _username(instrument.created_by)


class RetentionSerializer(serializers.ModelSerializer[RetentionPolicy]):
    category = serializers.CharField(source="category_id")
    region = serializers.CharField(source="region_id", allow_null=True)
    purpose = serializers.CharField(source="purpose_id", allow_null=True)

    class Meta:
        model = RetentionPolicy
        fields = (
            "id",
            "category",
            "region",
            "purpose",
            "raw_retention_days",
            "delete_on_withdrawal_days",
            "delete_on_termination_days",
            "updated_at",
        )


class ExclusionSerializer(serializers.ModelSerializer[ContextExclusion]):
    class Meta:
        model = ContextExclusion
        fields = ("id", "kind", "pattern", "label", "reason", "categories", "created_at")


class ApprovalSerializer(serializers.Serializer):
    """Optional body of POST …/approve."""

    published_at = serializers.DateTimeField(
        required=False, help_text="Notices only: when the new version takes effect (default: now)."
    )


# Input ------------------------------------------------------------------------------------


class RegionInputSerializer(serializers.Serializer):
    code = region_code_field(help_text="ISO 3166-1/2 code, or an upper-case group code.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=RegionKind.choices, required=False, allow_blank=True, default="")
    members = serializers.ListField(child=region_code_field(), required=False, default=list, max_length=MAX_LIST)


class DataCategoryInputSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=SLUG_LENGTH)
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=LONG_TEXT)
    sensitive = StrictBooleanField(required=False, default=False)
    biometric = StrictBooleanField(required=False, default=False)


class PurposeInputSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=SLUG_LENGTH)
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=LONG_TEXT)
    categories = serializers.ListField(child=serializers.SlugField(max_length=SLUG_LENGTH), max_length=MAX_LIST)
    consent_validity_days = serializers.IntegerField(min_value=1, max_value=3660, required=False, default=365)
    prohibited = StrictBooleanField(required=False, default=False)


class NoticeItemInputSerializer(serializers.Serializer):
    purpose = serializers.SlugField(max_length=SLUG_LENGTH)
    category = serializers.SlugField(max_length=SLUG_LENGTH)
    description = serializers.CharField(max_length=10_000)


class NoticeInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    summary = serializers.CharField(max_length=LONG_TEXT)
    body = serializers.CharField(max_length=LONG_TEXT)
    retention_statement = serializers.CharField(max_length=LONG_TEXT)
    access_statement = serializers.CharField(max_length=LONG_TEXT)
    no_evaluation_statement = serializers.CharField(max_length=LONG_TEXT)
    material = StrictBooleanField()
    # DRF hands max_length to the ListSerializer that many=True builds; the stubs omit it.
    items = NoticeItemInputSerializer(many=True, allow_empty=False, max_length=MAX_LIST)  # type: ignore[call-arg]

    def item_tuples(self) -> list[tuple[str, str, str]]:
        return [(i["purpose"], i["category"], i["description"]) for i in self.validated_data["items"]]


class RuleInputSerializer(serializers.Serializer):
    region = region_code_field()
    status = serializers.ChoiceField(choices=RuleStatus.choices)
    preconditions = serializers.ListField(
        child=serializers.ChoiceField(choices=PreconditionType.choices), required=False, default=list
    )
    blocked_categories = serializers.ListField(
        child=serializers.SlugField(max_length=SLUG_LENGTH), required=False, default=list, max_length=MAX_LIST
    )
    max_retention_days = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=36_500), required=False, default=dict
    )
    effective_from = serializers.DateTimeField()
    effective_to = serializers.DateTimeField(required=False, allow_null=True, default=None)
    notes = serializers.CharField(max_length=LONG_TEXT, required=False, allow_blank=True, default="")
    supersedes = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="The approved rule this draft replaces."
    )


class InstrumentInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PreconditionType.choices)
    title = serializers.CharField(max_length=200)
    region = region_code_field()
    entity = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    site = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    employee = serializers.CharField(
        max_length=64, required=False, allow_null=True, default=None, help_text="HR id, for a personal release."
    )
    valid_from = serializers.DateField()
    valid_to = serializers.DateField(required=False, allow_null=True, default=None)
    document_ref = serializers.CharField(max_length=500)


class RetentionInputSerializer(serializers.Serializer):
    category = serializers.SlugField(max_length=SLUG_LENGTH)
    region = region_code_field(required=False, allow_null=True, default=None)
    purpose = serializers.SlugField(required=False, allow_null=True, default=None, max_length=SLUG_LENGTH)
    raw_retention_days = serializers.IntegerField(min_value=0, max_value=36_500)
    delete_on_withdrawal_days = serializers.IntegerField(min_value=0, max_value=36_500, required=False, default=30)
    delete_on_termination_days = serializers.IntegerField(min_value=0, max_value=36_500, required=False, default=30)


class ExclusionInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ExclusionKind.choices)
    pattern = serializers.CharField(max_length=255)
    # A field, not Field.label: DRF's metaclass moves declared fields off the class; the stubs cannot tell.
    label = serializers.CharField(max_length=200)  # type: ignore[assignment]
    reason = serializers.ChoiceField(choices=ExclusionReason.choices, required=False, default=ExclusionReason.OTHER)
    categories = serializers.ListField(
        child=serializers.SlugField(max_length=SLUG_LENGTH), required=False, default=list, max_length=MAX_LIST
    )


def merged(
    serializer_class: type[_InputSerializer], current: dict[str, Any], data: Any, *, partial: bool
) -> _InputSerializer:
    """Validate a PUT (whole object) or a PATCH (the given fields over ``current``)."""
    if partial:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        data = {**current, **data}
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer
