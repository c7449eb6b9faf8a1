"""Top-level URL map; each app owns its own ``urls.py``."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from consentry.views import health, jwks_view
from people import oidc
from people import views as people_views

urlpatterns = [
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    # Sign-in: local accounts (the embedded default) and, when configured, the company's OpenID provider.
    path("accounts/login/", people_views.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/2fa/", people_views.otp_verify, name="otp-verify"),
    path("accounts/2fa/enrol/", people_views.otp_enrol, name="otp-enrol"),
    path("oidc/authenticate/", oidc.authentication_request, name="oidc_authentication_init"),
    path("oidc/callback/", oidc.authentication_callback, name="oidc_authentication_callback"),
    path("scim/v2/", include("people.scim.urls")),
    path("people/", include("people.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("decisions.urls")),
    path("api/v1/", include("governance.urls")),
    path("api/v1/", include("consent.urls")),
]
