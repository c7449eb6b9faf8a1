"""Forms of the employee portal: each validates what the browser sent and says what to fix."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms

from consent.selectors import ItemView, PortalOverview

PAUSE_CHOICES = [
    ("30m", "30 minutes"),
    ("2h", "2 hours"),
    ("tomorrow", "Until tomorrow morning"),
]
# "Until tomorrow" ends at this local hour of the next day.
TOMORROW_HOUR = 6


class ConsentChoicesForm(forms.Form):
    """The switches of the current notice: a ticked pair is a yes, every other shown pair a no."""

    notice_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    grant = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, overview: PortalOverview, **kwargs):
        super().__init__(*args, **kwargs)
        self.available = [item for item in overview.items if item.available]
        grant = self.fields["grant"]
        assert isinstance(grant, forms.MultipleChoiceField)  # declared above; Form copies it per instance
        grant.choices = [(item.key, item.category.name) for item in self.available]
        self.fields["grant"].error_messages["invalid_choice"] = (
            "%(value)s is not something you can turn on here; reload the page and try again."
        )

    def changes(self) -> tuple[list[ItemView], list[ItemView]]:
        """(to grant, to withdraw): only the pairs whose switch differs from where they stand."""
        wanted = set(self.cleaned_data["grant"])
        grant = [item for item in self.available if item.key in wanted and not item.is_on]
        withdraw = [
            item
            for item in self.available
            if item.key not in wanted and item.state in ("granted", "reconsent_required")
        ]
        return grant, withdraw


class AcknowledgeForm(forms.Form):
    notice_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class PauseForm(forms.Form):
    duration = forms.ChoiceField(choices=PAUSE_CHOICES)
    # Filled in by the browser (Intl API) so "tomorrow morning" is the person's morning; UTC otherwise.
    tz = forms.CharField(required=False, max_length=64)

    def clean_tz(self) -> ZoneInfo:
        name = self.cleaned_data.get("tz") or "UTC"
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def until(self, *, now: datetime) -> datetime:
        duration = self.cleaned_data["duration"]
        if duration == "30m":
            return now + timedelta(minutes=30)
        if duration == "2h":
            return now + timedelta(hours=2)
        local = now.astimezone(self.cleaned_data["tz"])
        morning = datetime.combine(local.date() + timedelta(days=1), time(TOMORROW_HOUR), tzinfo=local.tzinfo)
        return morning.astimezone(now.tzinfo)
