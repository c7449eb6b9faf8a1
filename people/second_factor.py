"""TOTP second factor (django-otp) for the roles that change or inspect policy and evidence.

Legal, approvers and auditors must prove a second factor in every session
before any page or session-authenticated API call: the middleware sends them
to enrol (first time) or to verify. Bearer tokens are unaffected (machines
and scripts hold their own revocable credential). The roles are
``CONSENTRY_SECOND_FACTOR_ROLES``.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.actors import Actor
from audit.models import EventType
from audit.services import record

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

# Pages a person may reach before the second factor: the factor itself, leaving, and assets.
_OPEN_PREFIXES = ("/accounts/", "/static/", "/health", "/.well-known/", "/scim/")


def needs_second_factor(user: User | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    return user.groups.filter(name__in=settings.CONSENTRY_SECOND_FACTOR_ROLES).exists()


def confirmed_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


class SecondFactorRequiredMiddleware:
    """Redirects (or, for the API, refuses) sessions of second-factor roles not yet verified."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and not request.path.startswith(_OPEN_PREFIXES)
            and not user.is_verified()
            and needs_second_factor(user)
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {
                        "type": "https://consentry.dev/problems/second_factor_required",
                        "title": "Second factor required",
                        "status": 403,
                        "detail": "Verify your authenticator code at /accounts/2fa/ first.",
                        "code": "second_factor_required",
                    },
                    status=403,
                    content_type="application/problem+json",
                )
            target = "otp-verify" if confirmed_device(user) else "otp-enrol"
            return HttpResponseRedirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


def totp_device_pending(*, user: User) -> TOTPDevice:
    """The unconfirmed authenticator being enrolled (created on first visit); nothing is trusted yet."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    return device


def totp_device_confirm(*, device: TOTPDevice, actor: Actor) -> TOTPDevice:
    """Trust an authenticator once the person proved it works; audited as a security change."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if device.confirmed:
            return device
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        record(
            event_type=EventType.OTP_DEVICE_CONFIRMED,
            actor=actor,
            object_type="totp_device",
            object_id=device.pk,
            payload={"user": device.user.get_username(), "name": device.name},
        )
    return device


def totp_device_enrol_confirmed(*, user: User, actor: Actor) -> TOTPDevice:
    """Operator path (demo staff, recovery): replace the person's authenticators with a new confirmed one."""
    with transaction.atomic():
        removed = list(TOTPDevice.objects.filter(user=user).values_list("pk", flat=True))
        TOTPDevice.objects.filter(pk__in=removed).delete()
        for pk in removed:
            record(
                event_type=EventType.OTP_DEVICE_REMOVED,
                actor=actor,
                object_type="totp_device",
                object_id=pk,
                payload={"user": user.get_username()},
            )
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
        return totp_device_confirm(device=device, actor=actor)


def qr_svg(device: TOTPDevice) -> str:
    """The provisioning URI as an inline SVG QR code (no image files, no JavaScript)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=4, title="Authenticator QR code")


def base32_secret(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode().rstrip("=")
