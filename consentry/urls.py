"""Top-level URL map; each app owns its own ``urls.py``."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from consentry.views import health, jwks_view

urlpatterns = [
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    # Sign-in: local accounts (the embedded default) and, when configured, the company's OpenID provider.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("scim/v2/", include("people.scim.urls")),
    path("people/", include("people.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
