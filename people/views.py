"""Portal pages of people/: the CSV upload for HR administrators."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from audit.actors import Actor
from people.csv_import import COLUMNS, import_csv
from people.roles import Role, has_role


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file")


@login_required
@require_http_methods(["GET", "POST"])
def import_employees(request: HttpRequest) -> HttpResponse:
    """Upload an HR export; it is validated whole and imported atomically, or every error is shown."""
    if not has_role(request.user, Role.HR_ADMIN):
        raise PermissionDenied("Only HR administrators import employees.")
    outcome = filename = None
    status = 200
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            filename = upload.name
            outcome = import_csv(content=upload.read(), source=upload.name, actor=Actor.for_user(request.user))
            status = 200 if outcome.ok else 422
        else:
            status = 422
    context = {"form": form, "outcome": outcome, "filename": filename, "columns": COLUMNS}
    return render(request, "people/import.html", context, status=status)
