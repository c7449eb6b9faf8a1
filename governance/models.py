"""What legal configures: where capture is allowed, for what, under which conditions.

Rules and notices move draft → approved by a second person (four eyes) and are
immutable once approved; an edit is a new draft that supersedes the old one.
Every governance service bumps ``PolicyRevision`` in its transaction so each
process can notice a policy change with one cheap read.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from governance.vocabulary import ExclusionKind, ExclusionReason, PreconditionType, RuleStatus
from people.models import Employee


class RegionKind(models.TextChoices):
    COUNTRY = "country", "Country (ISO 3166-1)"
    SUBDIVISION = "subdivision", "Subdivision (ISO 3166-2)"
    GROUP = "group", "Group of countries"


class Region(models.Model):
    """An ISO 3166 country or subdivision, or a named group such as EU or EEA."""

    code = models.CharField(max_length=16, primary_key=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=RegionKind.choices)
    # Groups list their member countries; lookup walks country → its groups.
    members = models.ManyToManyField("self", symmetrical=False, related_name="groups", blank=True)

    class Meta:
        ordering = ("code",)
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=RegionKind.values), name="region_kind_valid"),
        ]
        permissions = [
            ("manage_region_policy", "Can draft rules and instruments for this region"),
            ("approve_region_policy", "Can approve rules for this region"),
            ("audit_region", "Can read and export audit entries for this region"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class RegionUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian permission: a legal user or auditor scoped to a region."""

    content_object = models.ForeignKey(Region, on_delete=models.CASCADE)


class RegionGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Region, on_delete=models.CASCADE)


class DataCategory(models.Model):
    """A kind of activity data (keystrokes, screenshots, …) with its legal flags."""

    slug = models.SlugField(max_length=64, primary_key=True)
    name = models.CharField(max_length=120)
    description = models.TextField()
    sensitive = models.BooleanField(default=False)
    # Keystroke dynamics identify a person: biometric under CCPA, BIPA, the UK ICO.
    biometric = models.BooleanField(default=False)

    class Meta:
        ordering = ("slug",)
        verbose_name_plural = "data categories"

    def __str__(self) -> str:
        return self.name


class Purpose(models.Model):
    """Why data is captured. Data captured for one purpose is used only for it."""

    slug = models.SlugField(max_length=64, primary_key=True)
    name = models.CharField(max_length=120)
    description = models.TextField()
    categories = models.ManyToManyField(DataCategory, related_name="purposes", blank=True)
    consent_validity_days = models.PositiveIntegerField(default=365)
    # Prohibited purposes (performance evaluation, emotion inference) can never
    # be consented to, granted or used.
    prohibited = models.BooleanField(default=False)

    class Meta:
        ordering = ("slug",)
        constraints = [
            models.CheckConstraint(condition=models.Q(consent_validity_days__gte=1), name="purpose_validity_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class ApprovalState(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"
    SUPERSEDED = "superseded", "Superseded"


class Notice(models.Model):
    """One version of the monitoring and consent notice employees read."""

    version = models.PositiveIntegerField(unique=True)
    title = models.CharField(max_length=200)
    summary = models.TextField(help_text="Plain-language overview shown first.")
    body = models.TextField(help_text="The full notice.")
    retention_statement = models.TextField()
    access_statement = models.TextField(help_text="Who can access the data.")
    no_evaluation_statement = models.TextField(
        help_text="The promise that the data is never used to evaluate the employee."
    )
    # A material version asks for re-consent on the pairs it changes.
    material = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=ApprovalState.choices, default=ApprovalState.DRAFT)
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # Where a pack or other channel approved it, e.g. "policy_pack:2026.11.1".
    approved_via = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-version",)
        constraints = [
            # Four eyes: whoever drafted a notice cannot approve it.
            models.CheckConstraint(
                condition=models.Q(approved_by__isnull=True)
                | models.Q(created_by__isnull=True)
                | ~models.Q(approved_by=models.F("created_by")),
                name="notice_four_eyes",
            ),
            models.CheckConstraint(
                condition=models.Q(state=ApprovalState.DRAFT) | models.Q(published_at__isnull=False),
                name="notice_approved_has_publication",
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="notice_version_positive"),
        ]

    def __str__(self) -> str:
        return f"v{self.version}: {self.title}"


class NoticeItem(models.Model):
    """One purpose × category pair a notice version covers, in plain words."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="items")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="+")
    category = models.ForeignKey(DataCategory, on_delete=models.PROTECT, related_name="+")
    description = models.TextField(help_text="What is captured for this pair, in plain language.")
    # Set when the notice is approved: material, and new or changed since the
    # previous version. Consent given under an older version then lapses.
    requires_reconsent = models.BooleanField(default=False)

    class Meta:
        ordering = ("purpose", "category")
        constraints = [
            models.UniqueConstraint(fields=["notice", "purpose", "category"], name="notice_item_unique_pair"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose_id}/{self.category_id}"


# Preconditions met by the employee's own acknowledgement rather than a document.
ACKNOWLEDGEMENT_PRECONDITIONS = frozenset(
    {
        PreconditionType.NOTICE_ACKNOWLEDGEMENT,
        PreconditionType.NOTICE_ACKNOWLEDGEMENT_ONCE,
        PreconditionType.NOTICE_AT_COLLECTION,
    }
)
# Preconditions that apply only to biometric categories, met per employee.
BIOMETRIC_PRECONDITIONS = frozenset({PreconditionType.BIOMETRIC_RELEASE})


class JurisdictionRule(models.Model):
    """What the law of one region allows, for a period, once approved."""

    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="rules")
    status = models.CharField(max_length=16, choices=RuleStatus.choices)
    # PreconditionType values that must all be met.
    preconditions = models.JSONField(default=list, blank=True)
    # DataCategory slugs never captured in this region.
    blocked_categories = models.JSONField(default=list, blank=True)
    # {category slug: days}: the longest raw retention allowed here.
    max_retention_days = models.JSONField(default=dict, blank=True)
    effective_from = models.DateTimeField()
    effective_to = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=ApprovalState.choices, default=ApprovalState.DRAFT)
    supersedes = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    notes = models.TextField(blank=True, default="", help_text="Legal basis and citations.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_via = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ("region", "-effective_from")
        constraints = [
            # Four eyes: whoever drafted a rule cannot approve it.
            models.CheckConstraint(
                condition=models.Q(approved_by__isnull=True)
                | models.Q(created_by__isnull=True)
                | ~models.Q(approved_by=models.F("created_by")),
                name="rule_four_eyes",
            ),
            models.CheckConstraint(
                condition=models.Q(effective_to__isnull=True) | models.Q(effective_to__gt=models.F("effective_from")),
                name="rule_period_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(state=ApprovalState.DRAFT) | models.Q(approved_at__isnull=False),
                name="rule_approved_has_time",
            ),
            models.CheckConstraint(condition=models.Q(status__in=RuleStatus.values), name="rule_status_valid"),
        ]
        indexes = [
            # Snapshot compilation: approved rules of a region by period.
            models.Index(fields=["state", "region", "effective_from"], name="rule_state_region_from"),
        ]

    def __str__(self) -> str:
        return f"{self.region_id} {self.status} from {self.effective_from:%Y-%m-%d} ({self.state})"


class LegalInstrument(models.Model):
    """Evidence that meets a precondition: an agreement, assessment or release."""

    kind = models.CharField(max_length=40, choices=PreconditionType.choices)
    title = models.CharField(max_length=200)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="instruments")
    # Optional narrower scope: one employing entity, one site, one employee.
    entity = models.CharField(max_length=120, blank=True, default="")
    site = models.CharField(max_length=120, blank=True, default="")
    employee = models.ForeignKey(
        Employee, null=True, blank=True, on_delete=models.PROTECT, related_name="legal_instruments"
    )
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    document_ref = models.CharField(max_length=500, help_text="Where the signed document is kept.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("region", "kind", "valid_from")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_to__isnull=True) | models.Q(valid_to__gte=models.F("valid_from")),
                name="instrument_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"


class RetentionPolicy(models.Model):
    """How long raw data may be kept; the strictest applicable policy wins."""

    category = models.ForeignKey(DataCategory, on_delete=models.PROTECT, related_name="retention_policies")
    region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    purpose = models.ForeignKey(Purpose, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    raw_retention_days = models.PositiveIntegerField()
    delete_on_withdrawal_days = models.PositiveIntegerField(default=30)
    delete_on_termination_days = models.PositiveIntegerField(default=30)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("category", "region", "purpose")
        verbose_name_plural = "retention policies"
        constraints = [
            # One policy per category × region × purpose, "any" counting as a value.
            models.UniqueConstraint(
                "category",
                Coalesce("region", models.Value("")),
                Coalesce("purpose", models.Value("")),
                name="retention_unique_scope",
            ),
        ]

    def __str__(self) -> str:
        scope = "/".join(filter(None, [self.category_id, self.region_id, self.purpose_id]))
        return f"{scope}: {self.raw_retention_days} days"


class ContextExclusion(models.Model):
    """An app, web domain or context that is never captured."""

    kind = models.CharField(max_length=16, choices=ExclusionKind.choices)
    # Glob pattern: "com.1password.*", "*.bankofamerica.com", "private_browsing".
    pattern = models.CharField(max_length=255)
    label = models.CharField(max_length=200)
    reason = models.CharField(max_length=32, choices=ExclusionReason.choices, default=ExclusionReason.OTHER)
    # DataCategory slugs it applies to; empty means every category.
    categories = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("kind", "pattern")
        constraints = [
            models.UniqueConstraint(fields=["kind", "pattern"], name="exclusion_unique_pattern"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.pattern}"


class PolicyRevision(models.Model):
    """A counter every governance change bumps: the cheap "has policy changed?" check."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    revision = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(null=True, blank=True)
    # Rule periods that began or ended up to here have been announced on the revocation feed.
    boundaries_announced_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="policy_revision_singleton")]

    def __str__(self) -> str:
        return f"policy revision {self.revision}"
