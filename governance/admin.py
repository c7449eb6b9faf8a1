"""Admin for the policy: read-only views; approval goes through the four-eyes service."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.actors import Actor
from audit.admin import ReadOnlyAdmin
from consentry.errors import DomainError
from governance.models import (
    ContextExclusion,
    DataCategory,
    JurisdictionRule,
    LegalInstrument,
    Notice,
    NoticeItem,
    Purpose,
    Region,
    RetentionPolicy,
)
from governance.services import notice_approve, rule_approve


@admin.register(Region)
class RegionAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "kind")
    list_filter = ("kind",)
    search_fields = ("code", "name")


@admin.register(DataCategory)
class DataCategoryAdmin(ReadOnlyAdmin):
    list_display = ("slug", "name", "sensitive", "biometric")


@admin.register(Purpose)
class PurposeAdmin(ReadOnlyAdmin):
    list_display = ("slug", "name", "consent_validity_days", "prohibited")


class NoticeItemInline(admin.TabularInline):
    model = NoticeItem
    extra = 0
    can_delete = False
    readonly_fields = ("purpose", "category", "description", "requires_reconsent")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _approve_each(request: HttpRequest, queryset: QuerySet, approve) -> None:
    actor = Actor.for_user(request.user)
    for obj in queryset:
        try:
            approve(obj, actor)
        except DomainError as exc:
            messages.error(request, f"{obj}: {exc.detail}")
        else:
            messages.success(request, f"Approved {obj}.")


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin):
    list_display = ("version", "title", "material", "state", "published_at", "approved_by")
    list_filter = ("state", "material")
    inlines = (NoticeItemInline,)
    actions = ("approve",)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("governance.change_notice")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [field.name for field in Notice._meta.fields]

    @admin.action(description="Approve and publish selected drafts (four eyes)")
    def approve(self, request: HttpRequest, queryset: QuerySet[Notice]) -> None:
        _approve_each(request, queryset, lambda notice, actor: notice_approve(notice=notice, actor=actor))


@admin.register(JurisdictionRule)
class JurisdictionRuleAdmin(ReadOnlyAdmin):
    list_display = ("region", "status", "state", "effective_from", "effective_to", "approved_by", "approved_via")
    list_filter = ("state", "status", "region")
    actions = ("approve",)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("governance.change_jurisdictionrule")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [field.name for field in JurisdictionRule._meta.fields]

    @admin.action(description="Approve selected drafts (four eyes)")
    def approve(self, request: HttpRequest, queryset: QuerySet[JurisdictionRule]) -> None:
        _approve_each(request, queryset, lambda rule, actor: rule_approve(rule=rule, actor=actor))


@admin.register(LegalInstrument)
class LegalInstrumentAdmin(ReadOnlyAdmin):
    list_display = ("kind", "title", "region", "entity", "site", "employee", "valid_from", "valid_to")
    list_filter = ("kind", "region")


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(ReadOnlyAdmin):
    list_display = (
        "category",
        "region",
        "purpose",
        "raw_retention_days",
        "delete_on_withdrawal_days",
        "delete_on_termination_days",
    )


@admin.register(ContextExclusion)
class ContextExclusionAdmin(ReadOnlyAdmin):
    list_display = ("kind", "pattern", "label", "reason")
    list_filter = ("kind", "reason")
    search_fields = ("pattern", "label")
