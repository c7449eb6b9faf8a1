"""The project's URLs plus ``/bench/bare``: the cheapest Django JSON answer, through the same middleware."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from consentry.urls import urlpatterns as project_urls


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [*project_urls, path("bench/bare", bare)]
