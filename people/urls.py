"""Portal pages of people/."""

from __future__ import annotations

from django.urls import path

from people import passwords, views

app_name = "people"

urlpatterns = [
    path("import/", views.import_employees, name="import"),
    path("set-password/<uidb64>/<token>/", passwords.SetPasswordView.as_view(), name="set-password"),
]
