"""The auditor's search form: every filter optional, every value checked."""

from __future__ import annotations

from django import forms
from django.db.models import Q

from audit.models import EventType
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

    def clean(self):
        data = super().clean()
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
