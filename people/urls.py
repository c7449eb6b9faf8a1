"""Portal pages of people/."""

from __future__ import annotations

from django.urls import path

from people import views

app_name = "people"

urlpatterns = [
    path("import/", views.import_employees, name="import"),
]
