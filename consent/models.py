"""Consent as evidence: append-only events, and a projection of where each pair stands.

``ConsentEvent`` rows are never updated or deleted (a trigger refuses it on
PostgreSQL). ``ConsentState`` holds one row per employee × purpose × category
and always equals a replay of that employee's events; both are written by
``consent.services`` in one transaction under the employee's row lock, which
is also what makes the per-employee ``version`` counter gapless.
"""

from __future__ import annotations

from django.db import models

from consent.vocabulary import ConsentEventKind
from governance.models import DataCategory, Notice, Purpose
from people.models import Employee


class Channel(models.TextChoices):
    PORTAL = "portal", "Employee portal"
    API = "api", "API"
    IMPORT = "import", "Import"
    SYSTEM = "system", "System"


class ConsentEvent(models.Model):
    """One grant, withdrawal or expiry, bound to the notice version shown."""

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="consent_events")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="+")
    category = models.ForeignKey(DataCategory, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=ConsentEventKind.choices)
    notice = models.ForeignKey(Notice, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    actor = models.CharField(max_length=200)
    at = models.DateTimeField()
    # For grants: when consent lapses (purpose validity from ``at``).
    expires_at = models.DateTimeField(null=True, blank=True)
    # The employee's consent version after this event: 1, 2, 3… without gaps.
    version = models.PositiveBigIntegerField()
    receipt_id = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ("employee", "version")
        constraints = [
            # The version counter advances exactly once per event.
            models.UniqueConstraint(fields=["employee", "version"], name="consent_event_version_unique"),
            models.CheckConstraint(condition=models.Q(kind__in=ConsentEventKind.values), name="consent_event_kind"),
            models.CheckConstraint(
                condition=~models.Q(kind=ConsentEventKind.GRANTED) | models.Q(expires_at__isnull=False),
                name="consent_grant_has_expiry",
            ),
        ]
        indexes = [
            # Withdrawal look-ups for the use decision: latest events per pair.
            models.Index(fields=["employee", "purpose", "category", "at"], name="consent_event_pair_at"),
        ]

    def __str__(self) -> str:
        return f"{self.employee_id} {self.kind} {self.purpose_id}/{self.category_id} v{self.version}"


class ConsentState(models.Model):
    """Where one employee × purpose × category stands now (a projection of events)."""

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="consent_states")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="+")
    category = models.ForeignKey(DataCategory, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=ConsentEventKind.choices)
    since = models.DateTimeField()
    notice = models.ForeignKey(Notice, on_delete=models.PROTECT, related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    last_event = models.OneToOneField(ConsentEvent, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveBigIntegerField()
    # When the latest withdrawal happened, kept across later grants: the use
    # decision denies data captured before a withdrawal.
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("employee", "purpose", "category")
        constraints = [
            # One current state per employee × purpose × category.
            models.UniqueConstraint(fields=["employee", "purpose", "category"], name="consent_state_unique_pair"),
        ]
        indexes = [
            # Expiry sweep: granted pairs by expiry time.
            models.Index(fields=["state", "expires_at"], name="consent_state_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.employee_id} {self.purpose_id}/{self.category_id}: {self.state}"


class NoticeAcknowledgement(models.Model):
    """The employee acknowledged the monitoring notice (NY Civil Rights Law §52-c, Delaware)."""

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="acknowledgements")
    notice = models.ForeignKey(Notice, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    actor = models.CharField(max_length=200)
    at = models.DateTimeField()

    class Meta:
        ordering = ("employee", "-at")
        constraints = [
            models.UniqueConstraint(fields=["employee", "notice"], name="acknowledgement_once_per_notice"),
        ]

    def __str__(self) -> str:
        return f"{self.employee_id} acknowledged notice {self.notice_id}"


class Pause(models.Model):
    """The employee paused capture for a while; every capture decision denies meanwhile."""

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="pauses")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # Set when the employee resumes early.
    resumed_at = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=200)

    class Meta:
        ordering = ("employee", "-starts_at")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="pause_ends_after_start"
            ),
        ]
        indexes = [
            # Decision look-up: the employee's pauses ending after now.
            models.Index(fields=["employee", "ends_at"], name="pause_employee_ends"),
        ]

    def __str__(self) -> str:
        return f"{self.employee_id} paused until {self.ends_at:%Y-%m-%d %H:%M}"


class Receipt(models.Model):
    """A signed consent receipt for one grant or withdrawal, the employee's own evidence.

    The JWS is made once, in the transaction that records the event, and never
    changes: the employee may have downloaded it, so what we serve must stay
    byte-identical (a trigger refuses updates and deletes on PostgreSQL).
    Evidence added later, such as the ledger's inclusion proof, is looked up
    through ``audit_seq`` rather than written into this row.
    """

    # The event's receipt_id: the id printed on the receipt (Kantara consentReceiptID).
    id = models.CharField(max_length=64, primary_key=True)
    event = models.OneToOneField(ConsentEvent, on_delete=models.PROTECT, related_name="receipt")
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="receipts")
    kind = models.CharField(max_length=16, choices=ConsentEventKind.choices)
    issued_at = models.DateTimeField()
    jws = models.TextField()
    # The signed claims, decoded, so the API and admin need not parse the JWS.
    claims = models.JSONField()
    # Sequence number of the audit entry recording the event: the leaf an
    # inclusion proof against a ledger checkpoint starts from.
    audit_seq = models.BigIntegerField()

    class Meta:
        ordering = ("employee", "-issued_at", "-id")
        constraints = [
            # Receipts exist for grants and withdrawals only (SPEC: consent receipts).
            models.CheckConstraint(
                condition=models.Q(kind__in=[ConsentEventKind.GRANTED, ConsentEventKind.WITHDRAWN]),
                name="receipt_kind_grant_or_withdrawal",
            ),
        ]
        indexes = [
            # GET /me/receipts/: one employee's receipts, newest first.
            models.Index(fields=["employee", "-issued_at"], name="receipt_employee_issued"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.kind})"
