"""Top-level URL map; each app owns its own ``urls.py``."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from consentry.views import health, jwks_view

urlpatterns = [
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    path("api/v1/audit/", include("audit.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
