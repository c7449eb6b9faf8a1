"""Admin for tokens, grants, denial counters and the revocation feed: read-only, tokens revoked through the service."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.actors import Actor
from audit.admin import ReadOnlyAdmin
from decisions.models import CaptureGrant, DecisionCounter, RevocationEvent
from people.models import ApiToken
from people.tokens import token_revoke


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ("prefix", "kind", "name", "employee", "device_id", "user", "expires_at", "revoked_at")
    list_filter = ("kind", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("prefix", "name", "device_id", "employee__hr_id", "user__username")
    # The hash is not shown: it is not a secret, but nobody needs it.
    exclude = ("token_hash",)
    actions = ("revoke",)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Actions need change permission to show; fields stay read-only.
        return request.user.has_perm("people.change_apitoken")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [field.name for field in ApiToken._meta.fields if field.name != "token_hash"]

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        actor = Actor.for_user(request.user)
        for token in queryset:
            token_revoke(token=token, actor=actor)
        messages.success(request, f"Revoked {queryset.count()} token(s).")


@admin.register(CaptureGrant)
class CaptureGrantAdmin(ReadOnlyAdmin):
    list_display = ("id", "employee", "device_id", "purpose", "issued_at", "expires_at")
    list_filter = ("purpose",)
    search_fields = ("id", "employee__hr_id", "subject", "device_id")
    date_hierarchy = "issued_at"


@admin.register(DecisionCounter)
class DecisionCounterAdmin(ReadOnlyAdmin):
    list_display = ("day", "purpose", "reason", "count")
    list_filter = ("purpose", "reason")
    date_hierarchy = "day"


@admin.register(RevocationEvent)
class RevocationEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "employee", "purpose", "at", "published_at")
    list_filter = ("type", "purpose")
    search_fields = ("employee__hr_id", "subject")
    date_hierarchy = "at"
