"""Project-level views: the public JWKS, a health check and the start page after sign-in."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from consentry.context_processors import user_areas
from consentry.signing import jwks


@require_GET
@cache_control(public=True, max_age=300)
def jwks_view(request: HttpRequest) -> JsonResponse:
    """Public keys for grants, receipts and audit checkpoints (RFC 7517)."""
    response = JsonResponse(jwks())
    response["Content-Type"] = "application/jwk-set+json"
    return response


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness plus a database round trip; 503 when the database is down."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any database failure means not ready
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each person to the first console their account opens; say so when there is none."""
    areas = user_areas(request.user)
    if areas:
        return redirect(areas[0][2])
    return render(request, "home.html")
