"""Input and output shapes of the audit API."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from audit.chain import format_time
from audit.models import AuditCheckpoint, AuditEntry, AuditExport, EventType, ExportFormat, ExportStatus
from audit.selectors import EntryFilters

MAX_TEXT = 200


class _FilterFields(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text="Entries at or after this time (RFC 3339).")
    until = serializers.DateTimeField(required=False, help_text="Entries before this time (RFC 3339).")
    actor = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_TEXT, help_text="Actor label, e.g. user:alice"
    )
    subject = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_TEXT, help_text="HR id of the employee"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "Must be later than since."})
        return attrs

    def filters(self) -> EntryFilters:
        data = self.validated_data
        return EntryFilters(
            since=data.get("since"),
            until=data.get("until"),
            event_types=tuple(dict.fromkeys(data.get("event_types") or data.get("event_type") or ())),
            actor=data.get("actor", ""),
            subject=data.get("subject", ""),
        )


class EntryQuerySerializer(_FilterFields):
    event_type = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.values),
        required=False,
        max_length=len(EventType.values),
        help_text="Event types; repeat the parameter or separate them with commas.",
    )

    @classmethod
    def from_query(cls, params: Any) -> EntryQuerySerializer:
        data: dict[str, Any] = {key: params[key] for key in ("since", "until", "actor", "subject") if key in params}
        types = [part.strip() for value in params.getlist("event_type") for part in value.split(",") if part.strip()]
        if types:
            data["event_type"] = types
        return cls(data=data)


class ExportRequestSerializer(_FilterFields):
    format = serializers.ChoiceField(choices=ExportFormat.choices, default=ExportFormat.JSONL)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.values),
        required=False,
        max_length=len(EventType.values),
    )


class EntrySerializer(serializers.ModelSerializer):
    at = serializers.SerializerMethodField(help_text="RFC 3339 with microseconds: the text the hash covers.")
    proof = serializers.SerializerMethodField(help_text="Where to fetch this entry's inclusion proof.")

    class Meta:
        model = AuditEntry
        fields = (
            "seq",
            "at",
            "event_type",
            "actor",
            "subject",
            "object_type",
            "object_id",
            "region",
            "payload",
            "prev_hash",
            "hash",
            "proof",
        )

    def get_at(self, entry: AuditEntry) -> str:
        return format_time(entry.at)

    def get_proof(self, entry: AuditEntry) -> str:
        return reverse("audit:entry-proof", kwargs={"seq": entry.seq})


class CheckpointSerializer(serializers.Serializer):
    """A signed checkpoint, each field exactly as its signed statement holds it."""

    number = serializers.IntegerField()
    size = serializers.IntegerField()
    # The serializer metaclass moves declared fields off the class, so this does not
    # shadow Field.root at run time; the stubs cannot see that.
    root = serializers.CharField(help_text="RFC 9162 Merkle root of entries #1 to #size (hex).")  # type: ignore[assignment]
    head = serializers.CharField(help_text="Hash of entry #size.")
    prev_signature = serializers.CharField(help_text="The previous checkpoint's signature; empty for the first.")
    issued_at = serializers.CharField()
    kid = serializers.CharField(help_text="RFC 7638 thumbprint of the audit key that signed it.")
    signature = serializers.CharField(help_text="Ed25519 over the checkpoint statement, base64url.")

    def to_representation(self, instance: AuditCheckpoint) -> dict[str, Any]:
        return instance.record().as_json(with_frontier=False)


class ExportSerializer(serializers.ModelSerializer):
    download = serializers.SerializerMethodField(help_text="Where to fetch the bundle once the job is done.")

    class Meta:
        model = AuditExport
        fields = (
            "id",
            "status",
            "progress",
            "error",
            "format",
            "filters",
            "scope",
            "requested_at",
            "finished_at",
            "entry_count",
            "byte_size",
            "sha256",
            "download",
        )

    def get_download(self, export: AuditExport) -> str | None:
        if export.status != ExportStatus.DONE:
            return None
        url = reverse("audit:export-download", kwargs={"pk": export.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class ProofSerializer(serializers.Serializer):
    """An RFC 9162 inclusion proof; verify offline with ``consentry-verify proof``."""

    format = serializers.CharField()
    entry = serializers.DictField(help_text="The entry's content, exactly as its hash covers it.")
    entry_hash = serializers.CharField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    audit_path = serializers.ListField(child=serializers.CharField())
    checkpoint = CheckpointSerializer()

    def to_representation(self, instance: dict[str, Any]) -> dict[str, Any]:
        return instance
