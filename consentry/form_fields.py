"""Form fields every console (portal page) shares; API serializer fields are in consentry.fields."""

from __future__ import annotations

from datetime import UTC

from django import forms

DATETIME_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


class UTCDateTimeField(forms.DateTimeField):
    """A ``datetime-local`` input read as UTC: the consoles state every time in UTC."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL_FORMAT)

    def to_python(self, value):
        result = super().to_python(value)
        if result is not None:
            result = result.replace(tzinfo=UTC) if result.tzinfo is None else result.astimezone(UTC)
        return result
