"""Admin for the ledger: read-only. Nobody writes an entry except through record()."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditCheckpoint, AuditEntry, AuditExport


class ReadOnlyAdmin(admin.ModelAdmin):
    """Base for append-only and governed models: admin shows, services change."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("seq", "at", "event_type", "actor", "subject", "region", "object_type", "object_id")
    list_filter = ("event_type", "region")
    search_fields = ("subject", "actor", "object_id")
    date_hierarchy = "at"


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("number", "size", "issued_at", "kid", "root")
    date_hierarchy = "issued_at"


@admin.register(AuditExport)
class AuditExportAdmin(ReadOnlyAdmin):
    list_display = ("id", "requested_by", "requested_at", "format", "status", "progress", "entry_count")
    list_filter = ("status", "format")
