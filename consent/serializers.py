"""Input and output shapes of the employee self-service API (API.md, Employee self-service)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.proofs import Inclusion, InclusionStatus
from audit.serializers import ProofSerializer
from consent.models import Receipt
from consent.selectors import REGION_UNKNOWN, ConsentOverview, PairState
from consent.services import MAX_PAUSE
from consentry.fields import StrictBooleanField
from governance.models import DataCategory, Purpose, RuleStatus

MAX_CHOICES = 500
# Where the employee works: the rule's status, or unknown when no rule covers it.
REGION_STATUS_CHOICES = [*RuleStatus.values, REGION_UNKNOWN]
MAX_PAUSE_MINUTES = int(MAX_PAUSE.total_seconds() // 60)


# Output -----------------------------------------------------------------------------


class PreconditionSerializer(serializers.Serializer):
    type = serializers.CharField()
    met = serializers.BooleanField()
    # The serializer metaclass moves declared fields off the class, so this does not
    # shadow Field.label at run time; the stubs cannot see that.
    label = serializers.CharField()  # type: ignore[assignment]


class RegionStandingSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The work location's ISO 3166 code, from HR data.")
    status = serializers.ChoiceField(
        choices=REGION_STATUS_CHOICES, help_text="unknown: no rule covers the location (deny)."
    )
    rule_region = serializers.CharField(allow_null=True, help_text="The region whose rule applies (e.g. EU).")
    preconditions = PreconditionSerializer(many=True)
    blocked_categories = serializers.ListField(child=serializers.CharField())


class CurrentNoticeSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    title = serializers.CharField()
    material = serializers.BooleanField()
    published_at = serializers.DateTimeField()
    summary = serializers.CharField()
    body = serializers.CharField()
    retention_statement = serializers.CharField()
    access_statement = serializers.CharField()
    no_evaluation_statement = serializers.CharField()


class ConsentItemSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    category = serializers.CharField()
    state = serializers.ChoiceField(choices=PairState.choices)
    since = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    notice_version = serializers.IntegerField(allow_null=True, help_text="Notice version of the current choice.")
    description = serializers.CharField(help_text="What the current notice says is captured for this pair.")


class ConsentOverviewSerializer(serializers.Serializer):
    employee = serializers.CharField(source="employee.hr_id")
    region = RegionStandingSerializer()
    notice = CurrentNoticeSerializer(allow_null=True)
    acknowledged = serializers.BooleanField(help_text="Whether the current notice is acknowledged.")
    paused_until = serializers.DateTimeField(allow_null=True)
    items = ConsentItemSerializer(many=True)

    def to_representation(self, instance: ConsentOverview) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["region"]["blocked_categories"] = sorted(data["region"]["blocked_categories"])
        return data


class ConsentChangeSerializer(ConsentOverviewSerializer):
    receipts = serializers.ListField(
        child=serializers.CharField(), help_text="Ids of the receipts this change produced, one per changed pair."
    )


class AcknowledgementSerializer(serializers.Serializer):
    notice_version = serializers.IntegerField(source="notice.version")
    acknowledged_at = serializers.DateTimeField(source="at")


class PauseSerializer(serializers.Serializer):
    started_at = serializers.DateTimeField(source="starts_at")
    paused_until = serializers.DateTimeField(source="ends_at")


class ReceiptSummarySerializer(serializers.ModelSerializer):
    purpose = serializers.CharField(source="event.purpose_id")
    category = serializers.CharField(source="event.category_id")
    notice_version = serializers.IntegerField(source="claims.record.notice.version")

    class Meta:
        model = Receipt
        fields = ("id", "issued_at", "kind", "purpose", "category", "notice_version")


class ReceiptSerializer(serializers.ModelSerializer):
    """The signed receipt and, beside it, the ledger's proof that its audit entry is under a signed checkpoint.

    The view passes the receipt's ``Inclusion`` in the context as ``inclusion``.
    """

    receipt = serializers.JSONField(source="claims", help_text="The decoded, signed claims.")
    inclusion = serializers.SerializerMethodField(
        help_text=(
            "RFC 9162 inclusion proof of the receipt's audit entry (record.evidence.ledger_seq) against the latest "
            "signed checkpoint, as at /api/v1/audit/entries/<seq>/proof; null until a checkpoint covers it. "
            "Verify the whole file offline with `consentry-verify receipt FILE --keys jwks.json`."
        )
    )
    inclusion_status = serializers.SerializerMethodField(
        help_text="proven (inclusion holds the proof), pending (no checkpoint covers the entry yet) or unavailable."
    )
    inclusion_detail = serializers.SerializerMethodField(
        help_text="In plain words: which checkpoint proves it, or when the next checkpoint is due."
    )

    class Meta:
        model = Receipt
        fields = ("id", "jws", "receipt", "issued_at", "kind", "inclusion", "inclusion_status", "inclusion_detail")

    def _inclusion(self) -> Inclusion:
        return self.context["inclusion"]

    @extend_schema_field(ProofSerializer(allow_null=True))
    def get_inclusion(self, receipt: Receipt) -> dict[str, Any] | None:
        return self._inclusion().proof

    @extend_schema_field(serializers.ChoiceField(choices=InclusionStatus.values))
    def get_inclusion_status(self, receipt: Receipt) -> str:
        return str(self._inclusion().status)

    def get_inclusion_detail(self, receipt: Receipt) -> str:
        return self._inclusion().detail


# Input ------------------------------------------------------------------------------


class ChoiceSerializer(serializers.Serializer):
    purpose = serializers.SlugField(max_length=64)
    category = serializers.SlugField(max_length=64)
    granted = StrictBooleanField()


class ConsentUpdateSerializer(serializers.Serializer):
    notice_version = serializers.IntegerField(min_value=1, help_text="The notice version the employee was shown.")
    # many=True hands max_length to the ListSerializer, which the stubs do not follow.
    choices = ChoiceSerializer(many=True, allow_empty=False, max_length=MAX_CHOICES)  # type: ignore[call-arg]

    def validate_choices(self, choices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Unknown slugs are invalid input, even for a withdrawal (which would otherwise be a silent no-op)."""
        purposes = set(Purpose.objects.filter(slug__in={c["purpose"] for c in choices}).values_list("slug", flat=True))
        categories = set(
            DataCategory.objects.filter(slug__in={c["category"] for c in choices}).values_list("slug", flat=True)
        )
        # Keyed by position, as DRF reports field errors of list items.
        errors: dict[str, dict[str, list[str]]] = {}
        for index, choice in enumerate(choices):
            problems: dict[str, list[str]] = {}
            if choice["purpose"] not in purposes:
                problems["purpose"] = [f"Unknown purpose {choice['purpose']!r}."]
            if choice["category"] not in categories:
                problems["category"] = [f"Unknown data category {choice['category']!r}."]
            if problems:
                errors[str(index)] = problems
        if errors:
            raise serializers.ValidationError(errors)
        return choices


class AcknowledgementInputSerializer(serializers.Serializer):
    notice_version = serializers.IntegerField(min_value=1)


class PauseInputSerializer(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=1, max_value=MAX_PAUSE_MINUTES, required=False)
    until = serializers.DateTimeField(required=False, help_text="Alternative to minutes: when capture resumes.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("minutes" in attrs) == ("until" in attrs):
            raise serializers.ValidationError({"minutes": ["Give either minutes or until."]})
        return attrs
