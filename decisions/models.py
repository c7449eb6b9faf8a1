"""What the decision API keeps: the grants it issued, counts of denied checks, the feed, rights requests."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from governance.models import Purpose
from people.models import ApiToken, Employee


class CaptureGrant(models.Model):
    """The signed, short-lived answer to an allowed capture decision.

    Records captured under a grant carry its id: that is their lineage, and
    the use decision checks each record against the grant it names. The
    subject pseudonym is stored so the use decision maps a record back to its
    employee without reversing the keyed hash.
    """

    id = models.CharField(max_length=40, primary_key=True)
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="capture_grants")
    # The device token that asked; kept (nullable) so revoking a device can find its grants.
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    device_id = models.CharField(max_length=120)
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="+")
    # DataCategory slugs the grant allows, sorted.
    categories = models.JSONField(default=list)
    # The employee's pseudonym for this purpose: what records carry instead of the HR id.
    subject = models.CharField(max_length=64)
    # Work location when the grant was issued: retention of the data follows it.
    country = models.CharField(max_length=2)
    subdivision = models.CharField(max_length=6, blank=True, default="")
    policy_version = models.CharField(max_length=64)
    consent_version = models.PositiveBigIntegerField()
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ("-issued_at",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("issued_at")), name="grant_expires_after_issue"
            ),
        ]
        indexes = [
            # An employee's grants by time: revocation on withdrawal, "what was captured about me".
            models.Index(fields=["employee", "issued_at"], name="grant_employee_issued"),
            # Grants still live: what a revocation must reach.
            models.Index(fields=["expires_at"], name="grant_expires"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.purpose_id} {','.join(self.categories)}"


class DecisionCounter(models.Model):
    """How many capture checks were denied, per day, purpose and reason.

    Denials are counted rather than logged one by one: an agent retrying every
    minute would otherwise flood the ledger with entries that say nothing new.
    """

    day = models.DateField()
    # A configured purpose slug, or "(unknown)": client input never becomes a row key.
    purpose = models.CharField(max_length=64)
    reason = models.CharField(max_length=64)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("-day", "purpose", "reason")
        constraints = [
            # The upsert's conflict target: one counter per day × purpose × reason.
            models.UniqueConstraint(fields=["day", "purpose", "reason"], name="decision_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.purpose} {self.reason}: {self.count}"


class RevocationEvent(models.Model):
    """One entry of the revocation feed (API.md, Revocations): something a grant holder must stop.

    Written only by the outbox relay (``decisions.revocations``), which runs
    serialised, so ``id`` grows in commit order: a reader that has seen id N
    will never later find a new event below N. The cursor clients hold is an
    opaque encoding of ``id``. The employee is kept for scoping a device's
    feed to its own employee; clients only ever see the per-purpose pseudonym.
    """

    id = models.BigAutoField(primary_key=True)
    # The outbox message this event came from, and which of its events: a relay
    # that delivers the same message twice cannot add the same event twice.
    outbox_message_id = models.BigIntegerField()
    part = models.PositiveSmallIntegerField()
    type = models.CharField(max_length=32)
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=64)
    subject = models.CharField(max_length=64)
    categories = models.JSONField(default=list)
    # For grant_revoked: the grants that stop, so the employee's other devices can tell it is not theirs.
    grants = models.JSONField(default=list, blank=True)
    # For keys_destroyed: the data key ids that are gone, so pipelines can drop what they hold.
    keys = models.JSONField(default=list, blank=True)
    # When the change happened, and when the relay published it (their gap is the relay's delay).
    at = models.DateTimeField()
    published_at = models.DateTimeField()

    class Meta:
        ordering = ("id",)
        constraints = [
            # The relay's idempotency: one event per outbox message and part.
            models.UniqueConstraint(fields=["outbox_message_id", "part"], name="revocation_unique_message_part"),
        ]
        indexes = [
            # A device's feed: its employee's events after a cursor.
            models.Index(fields=["employee", "id"], name="revocation_employee_id"),
            # A pipeline's feed: its purposes' events after a cursor.
            models.Index(fields=["purpose", "id"], name="revocation_purpose_id"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.type} {self.purpose} {','.join(self.categories)}"


class RightsKind(models.TextChoices):
    """What an employee asks for about their own data (GDPR Art. 15 and 17, CCPA §1798.100 and §1798.105)."""

    ACCESS = "access", "A copy of my data"
    ERASURE = "erasure", "Erase my data"


class RightsStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    RUNNING = "running", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


# Requests still being worked on: at most one per employee and kind.
RIGHTS_PENDING = (RightsStatus.RECEIVED, RightsStatus.RUNNING)


class RightsRequest(models.Model):
    """An employee's access or erasure request, and what came of it.

    Written only by ``decisions.rights``. An access request ends with a zip
    the employee downloads; an erasure request ends with ``result`` saying
    what was deleted and what was kept as evidence, and why. The request
    itself is kept after an erasure: it is the proof that it was honoured.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="rights_requests")
    kind = models.CharField(max_length=16, choices=RightsKind.choices)
    status = models.CharField(max_length=16, choices=RightsStatus.choices, default=RightsStatus.RECEIVED)
    progress = models.PositiveSmallIntegerField(default=0)
    requested_at = models.DateTimeField()
    # The signed-in person who asked (the employee); kept as the ledger's actor label too.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Work location when asked: auditors see requests of the regions they cover, as with ledger entries.
    region = models.CharField(max_length=6, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    # Touched by every progress report: a running job silent past its time limit is dead.
    updated_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Access: the export zip, until it is downloaded-and-erased or the employee asks for erasure.
    file = models.FileField(upload_to="rights-exports/", blank=True, default="")
    sha256 = models.CharField(max_length=64, blank=True, default="")
    byte_size = models.BigIntegerField(null=True, blank=True)
    # Access: counts per section. Erasure: {"deleted": [...], "retained": [...]} with counts and reasons.
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ("-requested_at",)
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="rights_progress_percent"),
            models.CheckConstraint(condition=models.Q(kind__in=RightsKind.values), name="rights_kind_valid"),
            models.CheckConstraint(condition=models.Q(status__in=RightsStatus.values), name="rights_status_valid"),
            # Asking again while a request of the same kind is pending returns that one: the
            # service's check, and the database's answer to two requests racing past it.
            models.UniqueConstraint(
                fields=["employee", "kind"],
                condition=models.Q(status__in=["received", "running"]),
                name="rights_one_pending_per_kind",
            ),
        ]
        indexes = [
            # An employee's requests, newest first; "erasure requested" for the use decision.
            models.Index(fields=["employee", "kind", "requested_at"], name="rights_employee_kind_at"),
            # The sweep: pending requests by age.
            models.Index(fields=["status", "updated_at"], name="rights_status_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} request {self.id} ({self.status})"

    @property
    def pending(self) -> bool:
        return self.status in RIGHTS_PENDING


class DataKey(models.Model):
    """The AES-256 key for one employee × category × UTC day, stored only wrapped (decisions.kms).

    Agents encrypt with it, pipelines get it only for records they may use;
    deleting the row makes every copy of the data unreadable (crypto-shredding).
    The id is random, so it says nothing about whose key it is.
    """

    id = models.CharField(max_length=40, primary_key=True)
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="+")
    category = models.CharField(max_length=64)
    day = models.DateField()
    # Purposes it was handed out for: retention and withdrawal follow each of them.
    purposes = models.JSONField(default=list)
    # Work location when the key was made: retention of the data follows where it was captured.
    country = models.CharField(max_length=2)
    subdivision = models.CharField(max_length=6, blank=True, default="")
    wrapped = models.BinaryField()
    # Which master key wrapped it (decisions.kms.KeyEncryptionKey.version).
    master_version = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ("day", "id")
        constraints = [
            # One key per employee × category × day: the lazy get-or-create's conflict target.
            models.UniqueConstraint(fields=["employee", "category", "day"], name="data_key_unique_day"),
        ]
        indexes = [
            # The retention sweep walks keys oldest day first.
            models.Index(fields=["day", "id"], name="data_key_day"),
            # Master-key rotation finds keys still under an old version.
            models.Index(fields=["master_version", "id"], name="data_key_master_version"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.category} {self.day}"


class DestructionReason(models.TextChoices):
    WITHDRAWAL = "withdrawal", "Consent withdrawn and the deletion window passed"
    RETENTION = "retention", "Past the retention limit"
    TERMINATION = "termination", "Employee left and the termination window passed"
    ERASURE = "erasure", "The employee asked for erasure"


class DestroyedKey(models.Model):
    """The tombstone of a destroyed data key: no key material, only that it existed and why it went.

    It lets the use decision answer ``data_key_destroyed`` and makes destroying
    a key twice impossible (the key id is the primary key). A key is never
    handed out for an employee × category × day that has a tombstone.
    """

    key_id = models.CharField(max_length=40, primary_key=True)
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="+")
    category = models.CharField(max_length=64)
    day = models.DateField()
    reason = models.CharField(max_length=16, choices=DestructionReason.choices)
    destroyed_at = models.DateTimeField()

    class Meta:
        ordering = ("-destroyed_at",)
        indexes = [
            # The use decision's look-up: is the key of this employee × category × day gone?
            models.Index(fields=["employee", "category", "day"], name="destroyed_key_day"),
        ]

    def __str__(self) -> str:
        return f"{self.key_id} {self.reason}"
