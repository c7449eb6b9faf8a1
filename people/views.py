"""Portal pages of people/: the CSV upload for HR administrators, sign-in and the second factor."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from audit.actors import Actor
from people import second_factor
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


class SignInView(LoginView):
    """Local sign-in (the embedded default), with the company sign-in offered when configured."""

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "oidc_enabled": settings.CONSENTRY_OIDC_ENABLED}


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="Six-digit code from your authenticator app",
        error_messages={"invalid": "Enter the six digits your authenticator app shows."},
    )


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return "/"
    return target


@login_required
@require_http_methods(["GET", "POST"])
def otp_enrol(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator: show its QR code and secret, trust it once a code from it checks out."""
    user = request.user
    assert user.is_authenticated  # login_required
    if second_factor.confirmed_device(user):
        return redirect(f"{reverse('otp-verify')}?next={_safe_next(request)}")
    device = second_factor.totp_device_pending(user=user)
    form = TokenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid() and device.verify_token(form.cleaned_data["token"].strip()):
            device = second_factor.totp_device_confirm(device=device, actor=Actor.for_user(request.user))
            otp_login(request, device)
            return redirect(_safe_next(request))
        form.add_error("token", "That code did not match. Check the time on your phone and try again.")
        status = 422
    context = {
        "form": form,
        "next": _safe_next(request),
        "qr_svg": second_factor.qr_svg(device),
        "secret": second_factor.base32_secret(device),
        "uri": device.config_url,
    }
    return render(request, "people/otp_enrol.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def otp_verify(request: HttpRequest) -> HttpResponse:
    """Prove the second factor for this session."""
    user = request.user
    assert user.is_authenticated  # login_required
    device = second_factor.confirmed_device(user)
    if device is None:
        return redirect(f"{reverse('otp-enrol')}?next={_safe_next(request)}")
    form = TokenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        # verify_token applies django-otp's throttling: repeated wrong codes slow down further tries.
        if form.is_valid() and device.verify_token(form.cleaned_data["token"].strip()):
            otp_login(request, device)
            return redirect(_safe_next(request))
        form.add_error("token", "That code did not match, or too many tries: wait and try again.")
        status = 422
    return render(request, "people/otp_verify.html", {"form": form, "next": _safe_next(request)}, status=status)
