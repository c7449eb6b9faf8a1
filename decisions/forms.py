"""The simulator form of the legal console: who, what, when, and where on the screen."""

from __future__ import annotations

from typing import Any

from django import forms

from consentry.form_fields import UTCDateTimeField
from governance.models import DataCategory, Purpose, RegionKind


class SimulateForm(forms.Form):
    who = forms.ChoiceField(
        label="Simulate for",
        choices=[("employee", "An employee"), ("region", "A new employee in a region")],
        initial="employee",
        widget=forms.RadioSelect,
    )
    employee = forms.CharField(label="Employee HR id", max_length=64, required=False)
    region = forms.ChoiceField(label="Region", required=False, help_text="Only regions you cover are listed.")
    purpose = forms.ChoiceField()
    categories = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    at = UTCDateTimeField(label="At (UTC)", required=False, help_text="Leave empty for now.")
    app = forms.CharField(label="App", max_length=255, required=False, help_text="Optional, e.g. com.microsoft.VSCode")
    domain = forms.CharField(label="Web domain", max_length=255, required=False, help_text="Optional, e.g. github.com")

    def __init__(self, *args, regions, **kwargs):
        super().__init__(*args, **kwargs)
        self._choice_field("region").choices = [("", "Choose a region")] + [
            (region.code, f"{region.code} · {region.name}") for region in regions if region.kind != RegionKind.GROUP
        ]
        self._choice_field("purpose").choices = [
            (purpose.slug, f"{purpose.name}{' (prohibited)' if purpose.prohibited else ''}")
            for purpose in Purpose.objects.order_by("prohibited", "name")
        ]
        self._choice_field("categories").choices = [(c.slug, c.name) for c in DataCategory.objects.order_by("name")]

    def _choice_field(self, name: str) -> forms.ChoiceField:
        # self.fields holds deep copies of the class attributes above, typed only as Field.
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return field

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("who") == "employee" and not data.get("employee", "").strip():
            self.add_error("employee", "Give the HR id of the employee to simulate for.")
        if data.get("who") == "region" and not data.get("region"):
            self.add_error("region", "Choose the region to simulate a new employee in.")
        return data


class ErasureConfirmForm(forms.Form):
    """The confirmation step before an erasure: the employee says they understood what it does."""

    understood = forms.BooleanField(
        label="I understand that my consents are withdrawn and the recordings of my activity become unreadable "
        "for good.",
        error_messages={"required": "Tick the box to confirm you understand, or go back."},
    )
