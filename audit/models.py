"""The audit ledger: an append-only, hash-chained sequence of entries.

Entries are chained by hash and gapless by ``seq``; signed checkpoints commit
to every entry up to a size with an RFC 9162 Merkle root, so an export
verifies offline against a public key. On PostgreSQL, triggers refuse UPDATE,
DELETE and TRUNCATE on entries, checkpoints and stored tree nodes (migration
0003); the ORM refuses them too, on every database.
"""

from __future__ import annotations

import uuid
from typing import Any

from consentry_client.verify import Checkpoint
from django.conf import settings
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
    SET_PASSWORD_LINK_ISSUED = "employee.set_password_link_issued", "Set-password link issued for an employee's login"
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
    POLICY_PACK_IMPORTED = "policy_pack.imported", "Policy pack imported in the legal console"
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
    # the ledger itself
    AUDIT_VERIFIED = "audit.verified", "Audit ledger verified"
    AUDIT_VERIFICATION_FAILED = "audit.verification_failed", "Audit ledger verification failed"
    AUDIT_EXPORT_REQUESTED = "audit.export_requested", "Audit export requested"
    AUDIT_EXPORT_COMPLETED = "audit.export_completed", "Audit export completed"
    AUDIT_EXPORT_FAILED = "audit.export_failed", "Audit export failed"

    # decisions
    GRANT_ISSUED = "grant.issued", "Capture grant issued"
    USE_BATCH_DECIDED = "use.batch_decided", "Use decision answered for a batch of records"
    # rights requests (GDPR Art. 15 and 17, CCPA)
    RIGHTS_ACCESS_REQUESTED = "rights.access_requested", "Employee asked for a copy of their data"
    RIGHTS_ACCESS_COMPLETED = "rights.access_completed", "Copy of an employee's data prepared"
    RIGHTS_ACCESS_DOWNLOADED = "rights.access_downloaded", "Employee downloaded the copy of their data"
    RIGHTS_ACCESS_FAILED = "rights.access_failed", "Copy of an employee's data could not be prepared"
    RIGHTS_ERASURE_REQUESTED = "rights.erasure_requested", "Employee asked for their data to be erased"
    RIGHTS_ERASURE_COMPLETED = "rights.erasure_completed", "Employee's data erased (evidence retained)"
    RIGHTS_ERASURE_FAILED = "rights.erasure_failed", "Erasure of an employee's data failed"
    DATA_KEYS_RELEASED = "data_key.released", "Data keys released to a pipeline"
    DATA_KEY_DESTROYED = "data_key.destroyed", "Data key destroyed (crypto-shredding)"
    DATA_KEYS_REWRAPPED = "data_key.rewrapped", "Data keys re-wrapped under a new master key"
    MASTER_KEY_ROTATED = "master_key.rotated", "Master key rotation completed"


class ImmutableQuerySet(models.QuerySet):
    """Ledger rows are written once: bulk updates and deletes are refused in the ORM too."""

    def update(self, **kwargs: Any) -> int:
        raise PermissionError(f"{self.model.__name__} rows are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError(f"{self.model.__name__} rows are append-only")


class ImmutableModel(models.Model):
    """An append-only row: saved once, never changed or deleted through the ORM."""

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError(f"{type(self).__name__} rows are append-only")


class EntryContent(ImmutableModel):
    """What an entry says, before the chain gives it a place: shared by chained and queued entries."""

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

    CONTENT_FIELDS = ("at", "event_type", "actor", "subject", "object_type", "object_id", "region", "payload")

    class Meta:
        abstract = True


class AuditEntry(EntryContent):
    """One immutable ledger entry. Written only by ``audit.services.record`` and its queue's sealer."""

    # Gapless, assigned under the AuditHead row lock: a missing number is a deletion.
    seq = models.BigIntegerField(primary_key=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

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
            # A constraint rather than unique=True: on PostgreSQL that also builds a second,
            # pattern-matching index on the hash that no query uses and every append maintains.
            models.UniqueConstraint(fields=["hash"], name="audit_entry_hash_unique"),
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


class AuditQueuedEntry(EntryContent):
    """An entry accepted by ``audit.services.record_queued`` and not yet chained.

    Committed with the change it records, without the chain head's lock;
    ``audit.services.queue_seal`` chains queued entries in batches, in queue
    order, and removes them in the same transaction. A queued entry is
    durable but not yet tamper-evident: sealing runs every
    ``CONSENTRY_AUDIT_SEAL_SECONDS`` and before every checkpoint.
    """

    id = models.BigAutoField(primary_key=True)
    # On PostgreSQL, the entry's canonical text around the two values only
    # the chain head knows (``prev_hash``, ``seq``): the database seals it
    # from these alone (migration 0008). Blank elsewhere.
    text_before_prev = models.TextField(blank=True, default="")
    text_before_seq = models.TextField(blank=True, default="")
    text_after_seq = models.TextField(blank=True, default="")

    class Meta:
        ordering = ("id",)
        verbose_name_plural = "queued audit entries"

    def __str__(self) -> str:
        return f"queued #{self.id} {self.event_type}"

    def as_entry(self) -> AuditEntry:
        """The ledger entry this becomes once the sealer gives it a place in the chain."""
        return AuditEntry(**{name: getattr(self, name) for name in self.CONTENT_FIELDS})


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


class AuditCheckpoint(ImmutableModel):
    """A signed commitment to the first ``size`` entries: Merkle root, chain head, previous signature.

    ``frontier`` holds the roots of the perfect subtrees that make up those
    entries (one per set bit of ``size``): the next checkpoint extends the tree
    from it without rereading the log, and a bundle that starts here verifies
    from it. It is not signed; it must fold to the signed ``root``.
    """

    # Gapless: checkpoint n+1 signs over checkpoint n's signature.
    number = models.BigIntegerField(primary_key=True)
    size = models.BigIntegerField(unique=True)
    root = models.CharField(max_length=64)
    head = models.CharField(max_length=64)
    frontier = models.JSONField(default=list)
    prev_signature = models.CharField(max_length=128, blank=True, default="")
    issued_at = models.DateTimeField()
    kid = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)

    class Meta:
        ordering = ("number",)
        constraints = [
            models.CheckConstraint(condition=models.Q(number__gte=1), name="audit_checkpoint_number_positive"),
            models.CheckConstraint(condition=models.Q(size__gte=1), name="audit_checkpoint_size_positive"),
        ]

    def __str__(self) -> str:
        return f"checkpoint #{self.number} (size {self.size})"

    def record(self) -> Checkpoint:
        """The checkpoint as exported and as the shared verifier reads it (its time as canonical text)."""
        from audit.chain import format_time

        return Checkpoint(
            number=self.number,
            size=self.size,
            root=self.root,
            head=self.head,
            prev_signature=self.prev_signature,
            issued_at=format_time(self.issued_at),
            kid=self.kid,
            signature=self.signature,
            frontier=tuple(self.frontier),
        )


# Subtrees of 2**8 = 256 leaves and up are stored; smaller ones are rebuilt from one block of leaves.
TREE_NODE_LEVEL = 8


class AuditTreeNode(ImmutableModel):
    """A stored perfect Merkle subtree of 2**level leaves (index-th at that height).

    Kept from ``TREE_NODE_LEVEL`` up (about one row per 128 entries) so an
    inclusion proof reads O(log n) rows plus one block of leaves instead of
    the whole log. Derived data: a wrong node only yields a proof that fails
    against the signed root.
    """

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            # One hash per subtree position: the lookup inclusion proofs make.
            models.UniqueConstraint(fields=["level", "index"], name="audit_tree_node_position"),
        ]

    def __str__(self) -> str:
        return f"subtree {self.level}/{self.index}"


class ExportFormat(models.TextChoices):
    JSONL = "jsonl", "JSON Lines"
    CSV = "csv", "CSV"


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class AuditExport(models.Model):
    """An auditor's export job: filters and scope frozen at request, the bundle once built."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    # since, until, event_types, actor, subject; RFC 3339 text for times.
    filters = models.JSONField(default=dict)
    # The requester's audit scope when asked: {"all": true} or {"regions": [...]}.
    scope = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    # The signed checkpoint the bundle is verified up to; fixed by the first run so retries rebuild the same bundle.
    checkpoint = models.ForeignKey(AuditCheckpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(upload_to="audit-exports/", blank=True, default="")
    entry_count = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    byte_size = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Touched by every progress report: a running job silent for longer than its time limit is dead.
    updated_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-requested_at",)
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="audit_export_progress_percent"),
            models.CheckConstraint(
                condition=models.Q(status__in=ExportStatus.values), name="audit_export_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(format__in=ExportFormat.values), name="audit_export_format_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.id} ({self.status})"
