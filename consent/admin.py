"""Consent evidence in the admin: read-only. Individual choices are the employee's own."""

from __future__ import annotations

from django.contrib import admin

from audit.admin import ReadOnlyAdmin
from consent.models import ConsentEvent, ConsentState, NoticeAcknowledgement, Pause


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ("employee", "version", "kind", "purpose", "category", "notice", "channel", "at")
    list_filter = ("kind", "channel", "purpose")
    search_fields = ("employee__hr_id", "receipt_id")


@admin.register(ConsentState)
class ConsentStateAdmin(ReadOnlyAdmin):
    list_display = ("employee", "purpose", "category", "state", "since", "expires_at", "version")
    list_filter = ("state", "purpose")
    search_fields = ("employee__hr_id",)


@admin.register(NoticeAcknowledgement)
class NoticeAcknowledgementAdmin(ReadOnlyAdmin):
    list_display = ("employee", "notice", "channel", "at")


@admin.register(Pause)
class PauseAdmin(ReadOnlyAdmin):
    list_display = ("employee", "starts_at", "ends_at", "resumed_at")
