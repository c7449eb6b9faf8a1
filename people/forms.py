"""Forms of the staff token page: filtering the list and issuing a token.

The page itself lives in ``decisions/token_views.py`` because it offers the
governance purposes a pipeline may ask about, which people/ may not import;
so the purpose choices are handed in by the view.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django import forms

from people.models import Employee, TokenKind
from people.tokens import DEFAULT_LIFETIME, MAX_LIFETIME, TokenState

# What each kind is for, in the words the issue form shows next to the choice.
KIND_HELP: dict[str, str] = {
    TokenKind.DEVICE: "Device: the capture agent on one employee's computer",
    TokenKind.PIPELINE: "Pipeline: a training pipeline asking which records it may use",
    TokenKind.USER: "User: your own API access, with your permissions",
    TokenKind.HR: "HR system: SCIM provisioning and CSV import",
}


class TokenFilterForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", required=False, choices=[("", "Any kind"), *TokenKind.choices])
    state = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *TokenState.choices])
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=120,
        help_text="Name, start of the token, device id, employee HR id or username.",
    )


class TokenIssueForm(forms.Form):
    """Which token to issue. Per-kind fields are checked here; the service checks the rest again."""

    kind = forms.ChoiceField(label="Kind of token", widget=forms.RadioSelect)
    name = forms.CharField(
        label="Name",
        required=False,
        max_length=120,
        help_text="A label you will recognise in this list, e.g. the pipeline's or the HR system's name.",
    )
    employee = forms.CharField(
        label="Employee HR id",
        required=False,
        max_length=64,
        help_text="Device tokens only: the employee whose computer runs the agent.",
    )
    device_id = forms.CharField(
        label="Device id",
        required=False,
        max_length=120,
        help_text="Device tokens only: the id the agent sends, e.g. laptop-7.",
    )
    purposes = forms.MultipleChoiceField(
        label="Purposes",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Pipeline tokens only: what the pipeline may ask about. Prohibited purposes are not offered.",
    )
    days = forms.IntegerField(
        label="Valid for (days)",
        min_value=1,
        max_value=MAX_LIFETIME.days,
        initial=DEFAULT_LIFETIME.days,
        help_text=f"At most {MAX_LIFETIME.days} days. Issue a new token before this one expires.",
    )

    def __init__(self, *args: Any, kinds: Sequence[str], purposes: Sequence[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind_field, purposes_field = self.fields["kind"], self.fields["purposes"]
        assert isinstance(kind_field, forms.ChoiceField)  # declared above
        assert isinstance(purposes_field, forms.MultipleChoiceField)  # declared above
        kind_field.choices = [(kind, KIND_HELP[kind]) for kind in kinds]
        purposes_field.choices = list(purposes)

    @property
    def lifetime(self) -> timedelta:
        return timedelta(days=self.cleaned_data["days"])

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        kind = data.get("kind")
        data["employee_record"] = None
        if kind == TokenKind.DEVICE:
            hr_id = data.get("employee", "").strip()
            if not hr_id:
                self.add_error("employee", "A device token needs the HR id of the employee whose device it is.")
            else:
                data["employee_record"] = Employee.objects.filter(hr_id=hr_id).first()
                if data["employee_record"] is None:
                    self.add_error("employee", f"No employee has the HR id {hr_id!r}.")
            data["device_id"] = data.get("device_id", "").strip()
            if not data["device_id"]:
                self.add_error("device_id", "A device token needs the device id the agent will send.")
        if kind == TokenKind.PIPELINE and not data.get("purposes"):
            self.add_error("purposes", "Choose at least one purpose the pipeline may ask about.")
        return data
