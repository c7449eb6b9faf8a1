"""Employees and their work location, as the HR system of record states them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from people.vocabulary import EmployeeStatus


class Employee(models.Model):
    """A person whose activity might be captured. Location comes from HR, never from IP."""

    hr_id = models.CharField("HR id", max_length=64, unique=True)
    # The HR system's login name for the person (SCIM userName): unique without regard to case.
    user_name = models.CharField(max_length=150, blank=True, default="")
    # The provisioning client's own id for the record (SCIM externalId), case exact.
    external_id = models.CharField(max_length=200, blank=True, default="")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="employee"
    )
    display_name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    # ISO 3166-1 alpha-2 and, where known, ISO 3166-2 (e.g. US and US-NY).
    country = models.CharField(max_length=2)
    subdivision = models.CharField(max_length=6, blank=True, default="")
    entity = models.CharField("employing entity", max_length=120, blank=True, default="")
    site = models.CharField("site or bargaining unit", max_length=120, blank=True, default="")
    department = models.CharField(max_length=120, blank=True, default="")
    status = models.CharField(max_length=16, choices=EmployeeStatus.choices, default=EmployeeStatus.ACTIVE)
    terminated_at = models.DateTimeField(null=True, blank=True)
    # Set when the HR system deleted the record (SCIM DELETE): the employee is
    # terminated and no longer provisioned, but the record stays as evidence.
    deprovisioned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("hr_id",)
        constraints = [
            # SCIM userName is unique and case-insensitive (RFC 7643 §4.1.1); HR records
            # imported without one are allowed to share the empty value.
            models.UniqueConstraint(
                Lower("user_name"), condition=~models.Q(user_name=""), name="employee_user_name_unique_ci"
            ),
            # Only a terminated employee can have been deprovisioned.
            models.CheckConstraint(
                condition=models.Q(deprovisioned_at__isnull=True) | models.Q(status=EmployeeStatus.TERMINATED),
                name="employee_deprovisioned_is_terminated",
            ),
            models.CheckConstraint(condition=models.Q(status__in=EmployeeStatus.values), name="employee_status_valid"),
            # A subdivision always belongs to the employee's country (US-NY under US).
            models.CheckConstraint(
                condition=models.Q(subdivision="") | models.Q(subdivision__startswith=models.F("country")),
                name="employee_subdivision_in_country",
            ),
            # Terminated employees carry the moment; others do not.
            models.CheckConstraint(
                condition=models.Q(status=EmployeeStatus.TERMINATED, terminated_at__isnull=False)
                | (~models.Q(status=EmployeeStatus.TERMINATED) & models.Q(terminated_at__isnull=True)),
                name="employee_terminated_at_matches_status",
            ),
        ]
        permissions = [("view_aggregates", "Can see aggregate opt-in rates")]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.hr_id})"

    @property
    def region_code(self) -> str:
        """The most specific ISO code of the work location: where rule lookup starts."""
        return self.subdivision or self.country

    @property
    def is_active(self) -> bool:
        return self.status == EmployeeStatus.ACTIVE


class TokenKind(models.TextChoices):
    """Who a bearer token speaks for, and so which endpoints it may call (API.md)."""

    DEVICE = "device", "Capture agent on one device"
    PIPELINE = "pipeline", "Training pipeline"
    USER = "user", "A person's API access"
    HR = "hr", "HR system (SCIM and CSV provisioning)"


class ApiToken(models.Model):
    """A bearer token: random, shown once, stored as a hash, scoped, expiring, revocable."""

    kind = models.CharField(max_length=16, choices=TokenKind.choices)
    name = models.CharField(max_length=120)
    # The first characters of the token, to recognise it in lists; not a secret.
    prefix = models.CharField(max_length=32)
    # SHA-256 of the whole token; tokens have 256 bits of entropy, so a fast hash suffices.
    token_hash = models.CharField(max_length=64, unique=True)
    employee = models.ForeignKey(Employee, null=True, blank=True, on_delete=models.CASCADE, related_name="tokens")
    device_id = models.CharField(max_length=120, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    # Purpose slugs a pipeline token may ask about.
    purposes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=TokenKind.values), name="token_kind_valid"),
            # A device token is bound to one employee and one device.
            models.CheckConstraint(
                condition=~models.Q(kind="device") | (models.Q(employee__isnull=False) & ~models.Q(device_id="")),
                name="token_device_bound",
            ),
            # A user token acts as exactly that person.
            models.CheckConstraint(
                condition=~models.Q(kind="user") | models.Q(user__isnull=False), name="token_user_bound"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} token {self.prefix}… ({self.name})"
