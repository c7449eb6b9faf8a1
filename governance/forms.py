"""Forms of the legal console. They check the shape of the input; the services check the law.

A refusal from a service (``DomainError.errors``) is attached back to the
field it names with ``attach_errors``, so the person sees what to fix next
to the field, whichever layer found the problem.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.db.models import QuerySet

from consentry.errors import DomainError
from consentry.form_fields import UTCDateTimeField
from governance.models import DataCategory, JurisdictionRule, PreconditionType, Region, RuleStatus
from people.models import Employee


def attach_errors(form: forms.Form, error: DomainError) -> None:
    """Put a service's field errors on the form's fields, the rest at the top."""
    placed = False
    for key, message in error.errors.items():
        name = key.split("[", 1)[0]
        if name in form.fields:
            form.add_error(name, str(message))
            placed = True
        else:
            form.add_error(None, f"{key}: {message}")
            placed = True
    if not placed:
        form.add_error(None, error.detail)


class RuleDraftForm(forms.Form):
    status = forms.ChoiceField(choices=RuleStatus.choices, widget=forms.RadioSelect, label="Status in this region")
    preconditions = forms.MultipleChoiceField(
        choices=PreconditionType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Each must be met before anything is captured here.",
    )
    blocked_categories = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Never captured in this region, whatever the employee chooses.",
    )
    effective_from = UTCDateTimeField(label="Effective from (UTC)")
    effective_to = UTCDateTimeField(
        label="Effective until (UTC)", required=False, help_text="Leave empty for no end date."
    )
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=5000,
        help_text="Legal basis and citations, for the approver and the auditors.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.categories = list(DataCategory.objects.order_by("name"))
        blocked = self.fields["blocked_categories"]
        assert isinstance(blocked, forms.MultipleChoiceField)  # declared above
        blocked.choices = [(c.slug, c.name) for c in self.categories]
        for category in self.categories:
            self.fields[f"cap_{category.slug}"] = forms.IntegerField(
                label=f"Longest retention for {category.name.lower()} (days)",
                min_value=0,
                max_value=36500,
                required=False,
            )

    @classmethod
    def initial_from(cls, rule: JurisdictionRule | None, *, now: datetime) -> dict:
        start = now.replace(second=0, microsecond=0)
        if rule is None:
            return {"status": RuleStatus.BLOCK, "effective_from": start}
        initial = {
            "status": rule.status,
            "preconditions": rule.preconditions,
            "blocked_categories": rule.blocked_categories,
            "effective_from": start,
            "effective_to": rule.effective_to,
            "notes": rule.notes,
        }
        initial.update({f"cap_{slug}": days for slug, days in rule.max_retention_days.items()})
        return initial

    def cap_fields(self) -> list[forms.BoundField]:
        return [self[f"cap_{category.slug}"] for category in self.categories]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("effective_from"), data.get("effective_to")
        if start and end and end <= start:
            self.add_error("effective_to", "The rule must end after it starts.")
        return data

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "status": data["status"],
            "preconditions": data["preconditions"],
            "blocked_categories": data["blocked_categories"],
            "max_retention_days": {
                category.slug: data[f"cap_{category.slug}"]
                for category in self.categories
                if data.get(f"cap_{category.slug}") is not None
            },
            "effective_from": data["effective_from"],
            "effective_to": data["effective_to"],
            "notes": data["notes"],
        }


class InstrumentForm(forms.Form):
    kind = forms.ChoiceField(choices=PreconditionType.choices, label="Kind of instrument")
    title = forms.CharField(max_length=200)
    region = forms.ModelChoiceField(queryset=Region.objects.none(), help_text="Only regions you manage are listed.")
    entity = forms.CharField(max_length=120, required=False, help_text="Employing entity it covers; empty for all.")
    site = forms.CharField(
        max_length=120, required=False, help_text="Site or bargaining unit it covers; empty for all."
    )
    employee = forms.CharField(
        max_length=64,
        required=False,
        label="Employee HR id",
        help_text="Only for a personal instrument such as a written biometric release.",
    )
    valid_from = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    valid_to = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), required=False, help_text="Leave empty for no expiry."
    )
    document_ref = forms.CharField(
        max_length=500, label="Document reference", help_text="Where the signed document is kept."
    )

    def __init__(self, *args: Any, regions: QuerySet[Region], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        region = self.fields["region"]
        assert isinstance(region, forms.ModelChoiceField)  # declared above
        region.queryset = regions

    def clean_employee(self) -> Employee | None:
        hr_id = self.cleaned_data.get("employee", "").strip()
        if not hr_id:
            return None
        employee = Employee.objects.filter(hr_id=hr_id).first()
        if employee is None:
            raise forms.ValidationError(f"No employee has HR id {hr_id!r}.")
        return employee

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("kind") == PreconditionType.BIOMETRIC_RELEASE and not data.get("employee"):
            self.add_error("employee", "A written biometric release belongs to one employee: give their HR id.")
        start, end = data.get("valid_from"), data.get("valid_to")
        if start and end and end < start:
            self.add_error("valid_to", "An instrument cannot expire before it starts.")
        return data


PACK_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
PACK_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,39}$"
# A pack is a text file of a few hundred lines; anything far larger is a mistake.
MAX_PACK_BYTES = 1024 * 1024


class PackExportForm(forms.Form):
    name = forms.RegexField(
        regex=PACK_NAME,
        max_length=64,
        initial="consentry-policy",
        help_text="Lower-case letters, digits, '.', '_' and '-'.",
        error_messages={"invalid": "Use lower-case letters, digits, '.', '_' and '-' only."},
    )
    version = forms.RegexField(
        regex=PACK_VERSION,
        max_length=40,
        help_text='For example "2026.11.2".',
        error_messages={"invalid": "Use letters, digits, '.', '_', '+' and '-' only."},
    )


class PackImportForm(forms.Form):
    pack = forms.FileField(label="Policy pack file (YAML)", help_text="At most 1 MB.")
    load = forms.TypedChoiceField(
        label="What to do",
        choices=[("0", "Only check it: change nothing"), ("1", "Check it and load it")],
        coerce=lambda value: value == "1",
        initial="0",
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, may_load: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.may_load = may_load
        if not may_load:
            load = self.fields["load"]
            assert isinstance(load, forms.TypedChoiceField)  # declared above
            load.choices = [("0", "Only check it: change nothing")]

    def clean_pack(self):
        upload = self.cleaned_data["pack"]
        if upload.size > MAX_PACK_BYTES:
            raise forms.ValidationError("The file is larger than 1 MB; a policy pack is a short text file.")
        return upload
