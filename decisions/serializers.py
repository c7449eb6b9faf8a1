"""Request and response shapes of the decision, simulation, token and rights-request APIs (API.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from decisions.models import RightsKind, RightsRequest, RightsStatus
from decisions.rights import erasure_outcome, rights_message
from decisions.services import SIMULATION_ASSUMPTIONS
from decisions.usebatch import MAX_FIELD_LENGTH, MAX_ID_LENGTH, MAX_JSON_RECORDS, parse_time
from people.models import ApiToken, Employee

if TYPE_CHECKING:
    from django.contrib.auth.models import User

MAX_CATEGORIES = 32


class StrictCharField(serializers.CharField):
    """A string and only a string: DRF's CharField would turn 5 or 1.5 into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false; not "yes", 1 or "on"."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeField(serializers.Field):
    """RFC 3339 with a time zone, between 2000 and 2100: naive or absurd times are refused."""

    def to_internal_value(self, data: Any):
        parsed = parse_time(data)
        if isinstance(parsed, str):
            raise serializers.ValidationError(parsed)
        return parsed

    def to_representation(self, value):
        return serializers.DateTimeField().to_representation(value)


class ContextSerializer(serializers.Serializer):
    app = StrictCharField(
        max_length=255, required=False, allow_blank=True, help_text="Application id, e.g. com.microsoft.VSCode."
    )
    domain = StrictCharField(
        max_length=253, required=False, allow_blank=True, help_text="Web domain in the foreground."
    )
    private_browsing = StrictBooleanField(required=False, help_text="True in a private or incognito window.")
    flags = serializers.ListField(
        child=StrictCharField(max_length=64),
        required=False,
        max_length=16,
        help_text="Other context flags that exclusions of kind 'flag' match.",
    )


class CaptureRequestSerializer(serializers.Serializer):
    purpose = StrictCharField(max_length=MAX_FIELD_LENGTH)
    categories = serializers.ListField(
        child=StrictCharField(max_length=MAX_FIELD_LENGTH), min_length=1, max_length=MAX_CATEGORIES
    )
    # The field "context" of the wire format. DRF's serializer metaclass moves declared fields off
    # the class, so self.context stays the serializer's context mapping at run time, as annotated;
    # the stubs cannot express that.
    context: Mapping[str, Any] = ContextSerializer(required=False)  # type: ignore[assignment]

    def validate_categories(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each category may appear once.")
        known = self.context.get("known_categories")
        unknown = sorted(set(value) - known) if known is not None else []
        if unknown:
            raise serializers.ValidationError(f"Unknown categories: {', '.join(unknown)}.")
        return value


_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def _plain_text(value: Any, limit: int) -> bool:
    # What StrictCharField accepts unchanged: no trimming to do, no NUL or surrogate to refuse.
    return type(value) is str and 0 < len(value) <= limit and value.isprintable() and value == value.strip()


def plain_capture_request(data: Any, known_categories: Mapping[str, Any]) -> dict[str, Any] | None:
    """``CaptureRequestSerializer``'s validated data for a plainly valid request, or None to ask the serializer.

    Agents send the same well-formed request many times a minute, and
    building a serializer (it deep-copies its fields) cost as much as the
    decision. Whatever this does not accept as plainly valid goes to the
    serializer, which validates it in full and words the errors; so the two
    can differ only in speed (a test holds them to the same answers).
    """
    if type(data) is not dict:
        return None
    purpose, categories, context = data.get("purpose"), data.get("categories"), data.get("context")
    if type(purpose) is not str or not _SLUG.fullmatch(purpose):
        return None
    if type(categories) is not list or not 0 < len(categories) <= MAX_CATEGORIES:
        return None
    for category in categories:
        if type(category) is not str or not _SLUG.fullmatch(category) or category not in known_categories:
            return None
    if len(set(categories)) != len(categories):
        return None
    validated: dict[str, Any] = {"purpose": purpose, "categories": categories}
    if "context" not in data:
        return validated
    if type(context) is not dict or not context.keys() <= {"app", "domain", "private_browsing", "flags"}:
        return None
    app, domain, private, flags = (context.get(key) for key in ("app", "domain", "private_browsing", "flags"))
    if ("app" in context and not _plain_text(app, 255)) or ("domain" in context and not _plain_text(domain, 253)):
        return None
    if "private_browsing" in context and type(private) is not bool:
        return None
    if "flags" in context and not (
        type(flags) is list and len(flags) <= 16 and all(_plain_text(flag, 64) for flag in flags)
    ):
        return None
    validated["context"] = dict(context)
    return validated


class SimulateRequestSerializer(CaptureRequestSerializer):
    employee = StrictCharField(max_length=64, help_text="HR id of the employee.")
    at = AwareDateTimeField(required=False, help_text="When to evaluate; now if absent.")


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    missing_configuration = serializers.BooleanField(
        help_text="True when the reason is missing configuration (no rule, purpose, notice or retention "
        "policy) rather than a violation."
    )
    preconditions = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="For precondition_missing: the unmet preconditions."
    )


class CategoryResultSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reasons = ReasonSerializer(many=True)


class DataKeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    key = serializers.CharField(help_text="The AES-256 key, standard base64 (32 bytes).")


class GrantSerializer(serializers.Serializer):
    id = serializers.CharField()
    token = serializers.CharField(help_text="Compact JWS (EdDSA), verifiable with /.well-known/jwks.json.")
    categories = serializers.ListField(child=serializers.CharField())
    purpose = serializers.CharField()
    subject = serializers.CharField(help_text="The employee's pseudonym for this purpose.")
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    data_keys = serializers.DictField(
        child=DataKeySerializer(),
        help_text=(
            "Per allowed category: today's (UTC) data key. Absent for a category whose key for today was destroyed."
        ),
    )


class CaptureDecisionSerializer(serializers.Serializer):
    decision_id = serializers.CharField()
    employee = serializers.CharField()
    evaluated_at = serializers.DateTimeField()
    policy_version = serializers.CharField()
    consent_version = serializers.IntegerField()
    categories = serializers.DictField(child=CategoryResultSerializer())
    grant = GrantSerializer(allow_null=True)
    revocation_cursor = serializers.CharField(
        allow_null=True, help_text="The revocation feed's position before this decision: follow it from here."
    )


class SimulationSerializer(serializers.Serializer):
    decision_id = serializers.CharField()
    employee = serializers.CharField()
    evaluated_at = serializers.DateTimeField()
    policy_version = serializers.CharField()
    categories = serializers.DictField(child=CategoryResultSerializer())
    grant = serializers.JSONField(allow_null=True, help_text="Always null: a simulation issues no grant.")
    simulated = serializers.BooleanField()
    assumptions = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SIMULATION_ASSUMPTIONS)),
        help_text=(
            "What the simulation assumes instead of reading the employee's own choices, which stay private: "
            "`consent_granted_under_current_notice` (every requested pair is taken as consented under the notice "
            "in force) and `not_paused` (no pause is running). A real capture decision can still deny for "
            "no_consent, consent_withdrawn, consent_expired, reconsent_required or paused_by_employee."
        ),
    )


class UseRecordSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=MAX_ID_LENGTH)
    subject = serializers.CharField(max_length=MAX_FIELD_LENGTH, help_text="The pseudonym the grant names.")
    category = serializers.CharField(max_length=MAX_FIELD_LENGTH)
    captured_at = serializers.DateTimeField()
    grant_id = serializers.CharField(max_length=MAX_FIELD_LENGTH)


class UseRequestSerializer(serializers.Serializer):
    """The JSON use batch. Records are validated one by one: a bad one gets invalid_record."""

    purpose = StrictCharField(max_length=MAX_FIELD_LENGTH)
    records = serializers.ListField(
        child=serializers.JSONField(allow_null=True),
        allow_empty=False,
        help_text=f"1 to {MAX_JSON_RECORDS} records (413 beyond).",
    )
    release_keys = StrictBooleanField(required=False, default=False)


@extend_schema_field(UseRecordSerializer(many=True))
class _DocumentedRecords(serializers.ListField):
    pass


class UseRequestDocSerializer(UseRequestSerializer):
    records = _DocumentedRecords(child=serializers.JSONField(allow_null=True))

    class Meta:
        ref_name = "UseRequest"


class UseQuerySerializer(serializers.Serializer):
    purpose = StrictCharField(max_length=MAX_FIELD_LENGTH)
    release_keys = serializers.BooleanField(required=False, default=False)


class UseResultSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True, help_text="Null when the record had no valid id.")
    allowed = serializers.BooleanField()
    reasons = ReasonSerializer(many=True)


class UseSummarySerializer(serializers.Serializer):
    allowed = serializers.IntegerField()
    denied = serializers.IntegerField()
    by_reason = serializers.DictField(child=serializers.IntegerField())


class UseResponseSerializer(serializers.Serializer):
    evaluated_at = serializers.DateTimeField()
    policy_version = serializers.CharField()
    batch_id = serializers.CharField(help_text="Names the batch's audit entry.")
    results = UseResultSerializer(many=True)
    summary = UseSummarySerializer()
    keys = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="With release_keys: key id → base64 AES-256 key, for the allowed records only, each once.",
    )


class TokenSerializer(serializers.ModelSerializer[ApiToken]):
    employee: serializers.SlugRelatedField[Employee] = serializers.SlugRelatedField(
        slug_field="hr_id", read_only=True, allow_null=True
    )
    user: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    state = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = (
            "id",
            "kind",
            "name",
            "prefix",
            "employee",
            "device_id",
            "user",
            "purposes",
            "created_at",
            "created_by",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "state",
        )
        read_only_fields = fields

    def get_state(self, token: ApiToken) -> str:
        if token.revoked_at is not None:
            return "revoked"
        if token.expires_at <= self.context["now"]:
            return "expired"
        return "active"


# Rights requests (decisions/rights.py) --------------------------------------------------


class RightsRequestInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=RightsKind.choices, help_text="access: a copy of your data; erasure: erase your data."
    )


class OutcomeItemSerializer(serializers.Serializer):
    item = serializers.CharField(help_text="Stable key of the item.")
    what = serializers.CharField()
    detail = serializers.CharField(required=False, help_text="What was done (stopped and deleted items).")
    why = serializers.CharField(required=False, help_text="Why it is kept (retained items).")
    count = serializers.IntegerField(allow_null=True, help_text="How many; null until the erasure completed.")


class ErasureOutcomeSerializer(serializers.Serializer):
    summary = serializers.CharField()
    stopped = OutcomeItemSerializer(many=True)
    deleted = OutcomeItemSerializer(many=True)
    retained = OutcomeItemSerializer(many=True)


class RightsRequestSerializer(serializers.ModelSerializer[RightsRequest]):
    """A rights request as its owner sees it; ``message`` and ``erasure`` are in plain language."""

    message = serializers.SerializerMethodField(help_text="Where the request stands, in one sentence.")
    download = serializers.SerializerMethodField(help_text="Where to download the copy, once ready (access).")
    contents = serializers.SerializerMethodField(help_text="How many items each list of the copy holds (access).")
    erasure = serializers.SerializerMethodField(help_text="What was (or will be) deleted and what is kept, and why.")

    class Meta:
        model = RightsRequest
        fields: tuple[str, ...] = (
            "id",
            "kind",
            "status",
            "progress",
            "requested_at",
            "completed_at",
            "message",
            "download",
            "byte_size",
            "sha256",
            "contents",
            "erasure",
            "error",
        )
        read_only_fields = fields

    def get_message(self, rights: RightsRequest) -> str:
        return rights_message(rights)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download(self, rights: RightsRequest) -> str | None:
        if rights.kind != RightsKind.ACCESS or rights.status != RightsStatus.COMPLETED or not rights.file:
            return None
        return reverse("me-rights-request-download", kwargs={"pk": rights.pk})

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField(), allow_null=True))
    def get_contents(self, rights: RightsRequest) -> dict[str, int] | None:
        if rights.kind != RightsKind.ACCESS or rights.status != RightsStatus.COMPLETED:
            return None
        return rights.result.get("counts")

    @extend_schema_field(ErasureOutcomeSerializer(allow_null=True))
    def get_erasure(self, rights: RightsRequest) -> dict[str, Any] | None:
        return erasure_outcome(rights) if rights.kind == RightsKind.ERASURE else None


class StaffRightsRequestSerializer(RightsRequestSerializer):
    """A rights request as HR administrators and auditors in scope see it: whose, never the copy itself."""

    employee: serializers.SlugRelatedField[Employee] = serializers.SlugRelatedField(slug_field="hr_id", read_only=True)

    class Meta(RightsRequestSerializer.Meta):
        fields = ("id", "employee", "region", *RightsRequestSerializer.Meta.fields[1:])
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True, help_text="Always null: only the owner downloads."))
    def get_download(self, rights: RightsRequest) -> None:
        return None
