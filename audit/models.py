"""The audit ledger: an append-only, hash-chained sequence of entries."""

from __future__ import annotations

from typing import Any

from django.db import models


class EventType(models.TextChoices):
    """Every kind of audit entry, in one place. Stored as text, validated by record()."""

    # people
    EMPLOYEE_PROVISIONED = "employee.provisioned", "Employee provisioned"
    EMPLOYEE_UPDATED = "employee.updated", "Employee details updated"
    EMPLOYEE_TRANSFERRED = "employee.transferred", "Employee work location changed"
    EMPLOYEE_STATUS_CHANGED = "employee.status_changed", "Employee status changed"
    EMPLOYEE_TERMINATED = "employee.terminated", "Employee terminated"
    EMPLOYEE_DEPROVISIONED = "employee.deprovisioned", "Employee deleted by the HR system (kept, terminated)"
    EMPLOYEES_IMPORTED = "employees.imported", "Employees imported from a CSV file"
    # governance
    REGION_SAVED = "region.saved", "Region saved"
    CATEGORY_SAVED = "category.saved", "Data category saved"
    PURPOSE_SAVED = "purpose.saved", "Purpose saved"
    NOTICE_DRAFTED = "notice.drafted", "Notice drafted"
    NOTICE_APPROVED = "notice.approved", "Notice approved and published"
    NOTICE_DRAFT_UPDATED = "notice.draft_updated", "Notice draft changed"
    NOTICE_DRAFT_DISCARDED = "notice.draft_discarded", "Notice draft discarded"
    RULE_DRAFTED = "rule.drafted", "Jurisdiction rule drafted"
    RULE_APPROVED = "rule.approved", "Jurisdiction rule approved"
    RULE_SUPERSEDED = "rule.superseded", "Jurisdiction rule superseded"
    RULE_DRAFT_DISCARDED = "rule.draft_discarded", "Jurisdiction rule draft discarded"
    RULE_DRAFT_UPDATED = "rule.draft_updated", "Jurisdiction rule draft changed"
    INSTRUMENT_SAVED = "instrument.saved", "Legal instrument saved"
    RETENTION_SAVED = "retention.saved", "Retention policy saved"
    EXCLUSION_SAVED = "exclusion.saved", "Context exclusion saved"
    EXCLUSION_REMOVED = "exclusion.removed", "Context exclusion removed"
    POLICY_PACK_LOADED = "policy_pack.loaded", "Policy pack loaded"
    # consent
    CONSENT_GRANTED = "consent.granted", "Consent granted"
    CONSENT_WITHDRAWN = "consent.withdrawn", "Consent withdrawn"
    CONSENT_EXPIRED = "consent.expired", "Consent expired"
    NOTICE_ACKNOWLEDGED = "notice.acknowledged", "Monitoring notice acknowledged"
    CAPTURE_PAUSED = "capture.paused", "Capture paused by the employee"
    CAPTURE_RESUMED = "capture.resumed", "Capture resumed by the employee"
    # credentials
    TOKEN_ISSUED = "token.issued", "API token issued"
    TOKEN_REVOKED = "token.revoked", "API token revoked"
    OTP_DEVICE_CONFIRMED = "otp.device_confirmed", "Two-factor authenticator enrolled"
    OTP_DEVICE_REMOVED = "otp.device_removed", "Two-factor authenticator removed"

    # decisions
    GRANT_ISSUED = "grant.issued", "Capture grant issued"
    USE_BATCH_DECIDED = "use.batch_decided", "Use decision answered for a batch of records"


class AuditEntry(models.Model):
    """One immutable ledger entry. Written only by ``audit.services.record``."""

    # Gapless, assigned under the AuditHead row lock: a missing number is a deletion.
    seq = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField()
    event_type = models.CharField(max_length=64)
    actor = models.CharField(max_length=200)
    # Employee HR id the entry is about, if any: the auditor's subject filter.
    subject = models.CharField(max_length=200, blank=True, default="")
    object_type = models.CharField(max_length=64, blank=True, default="")
    object_id = models.CharField(max_length=200, blank=True, default="")
    # Region code the entry concerns, if any: auditors may be scoped by region.
    region = models.CharField(max_length=16, blank=True, default="")
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ("seq",)
        verbose_name_plural = "audit entries"
        indexes = [
            # Auditor search: by type or subject within a time range.
            models.Index(fields=["event_type", "at"], name="audit_type_at"),
            models.Index(fields=["subject", "at"], name="audit_subject_at"),
            models.Index(fields=["at"], name="audit_at"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="audit_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type}"

    def content(self) -> dict[str, Any]:
        """The canonical content the entry's hash covers."""
        from audit.chain import format_time

        return {
            "seq": self.seq,
            "at": format_time(self.at),
            "event_type": self.event_type,
            "actor": self.actor,
            "subject": self.subject,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "region": self.region,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
        }


class AuditHead(models.Model):
    """The single row holding the chain's tip; locking it serialises appends."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            # Exactly one head: the lock every appender takes.
            models.CheckConstraint(condition=models.Q(id=1), name="audit_head_singleton"),
        ]

    def __str__(self) -> str:
        return f"head #{self.seq}"
