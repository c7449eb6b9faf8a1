"""Project-level views: the public JWKS and a health check."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

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
