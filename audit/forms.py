"""The auditor console's forms: log search and export requests, every filter optional, every value checked."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q

from audit.models import EventType, ExportFormat
from audit.selectors import EntryFilters
from audit.serializers import MAX_TEXT
from consentry.form_fields import UTCDateTimeField


class AuditSearchForm(forms.Form):
    since = UTCDateTimeField(label="From (UTC)", required=False)
    until = UTCDateTimeField(label="Until (UTC)", required=False)
    event_type = forms.ChoiceField(label="Event type", choices=[("", "Any type"), *EventType.choices], required=False)
    actor = forms.CharField(max_length=200, required=False, help_text="Part of a name, e.g. user:lena")
    subject = forms.CharField(label="Employee (HR id)", max_length=200, required=False)
    region = forms.CharField(max_length=16, required=False, help_text="e.g. US-NY; US includes its states")
    object_id = forms.CharField(label="Object id", max_length=200, required=False)

    def clean_region(self) -> str:
        return self.cleaned_data["region"].strip().upper()

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("since") and data.get("until") and data["until"] <= data["since"]:
            self.add_error("until", "The end of the period must come after its start.")
        return data

    def apply(self, entries):
        data = self.cleaned_data
        if data.get("since"):
            entries = entries.filter(at__gte=data["since"])
        if data.get("until"):
            entries = entries.filter(at__lt=data["until"])
        if data.get("event_type"):
            entries = entries.filter(event_type=data["event_type"])
        if data.get("actor"):
            entries = entries.filter(actor__icontains=data["actor"].strip())
        if data.get("subject"):
            entries = entries.filter(subject=data["subject"].strip())
        if data.get("region"):
            code = data["region"]
            entries = entries.filter(Q(region=code) | Q(region__startswith=f"{code}-"))
        if data.get("object_id"):
            entries = entries.filter(object_id=data["object_id"].strip())
        return entries


class ExportForm(forms.Form):
    """What an auditor exports: the API's export filters, one field each, checked the same way."""

    since = UTCDateTimeField(label="From (UTC)", required=False, help_text="Leave empty to start at the first entry.")
    until = UTCDateTimeField(label="Until (UTC)", required=False, help_text="Leave empty to end at the latest entry.")
    event_types = forms.MultipleChoiceField(
        label="Event types",
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked exports every type.",
    )
    # The API matches the actor label exactly (unlike the log search, which matches part of it).
    actor = forms.CharField(
        max_length=MAX_TEXT, required=False, help_text="The exact actor label, e.g. user:lena or system:audit-verify"
    )
    subject = forms.CharField(label="Employee (HR id)", max_length=MAX_TEXT, required=False)
    format = forms.ChoiceField(
        label="Entries file format",
        choices=ExportFormat.choices,
        initial=ExportFormat.JSONL,
        widget=forms.RadioSelect,
    )

    # One id per rendered form: sending the same form twice (a double click, a
    # resubmitted page) starts one export, not two.
    submission = forms.UUIDField(widget=forms.HiddenInput, required=False)

    def clean_actor(self) -> str:
        return self.cleaned_data["actor"].strip()

    def clean_subject(self) -> str:
        return self.cleaned_data["subject"].strip()

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("since") and data.get("until") and data["until"] <= data["since"]:
            self.add_error("until", "The end of the period must come after its start.")
        return data

    def filters(self) -> EntryFilters:
        data = self.cleaned_data
        return EntryFilters(
            since=data.get("since"),
            until=data.get("until"),
            event_types=tuple(dict.fromkeys(data.get("event_types") or ())),
            actor=data.get("actor", ""),
            subject=data.get("subject", ""),
        )
