"""Top-level URL map; each app owns its own ``urls.py``."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from consent import urls as consent_urls
from consentry import problems
from consentry.views import health, home, jwks_view
from decisions import urls as decisions_urls
from governance import urls as governance_urls
from people import api as people_api
from people import oidc
from people import views as people_views

# The portal and the legal console span apps: a page lives with the data it
# reads (opt-in rates with consent, the simulator and captured grants with
# decisions), since the apps above may not import the ones below.
portal_urlpatterns = consent_urls.portal_urlpatterns + decisions_urls.portal_urlpatterns
legal_urlpatterns = (
    governance_urls.legal_urlpatterns + consent_urls.legal_urlpatterns + decisions_urls.legal_urlpatterns
)

urlpatterns = [
    path("", home, name="home"),
    path("portal/", include((portal_urlpatterns, "portal"))),
    path("legal/", include((legal_urlpatterns, "legal"))),
    path("", include("audit.urls")),
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    # Sign-in: local accounts (the embedded default) and, when configured, the company's OpenID provider.
    path("accounts/login/", people_views.SignInView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/2fa/", people_views.otp_verify, name="otp-verify"),
    path("accounts/2fa/enrol/", people_views.otp_enrol, name="otp-enrol"),
    path("oidc/authenticate/", oidc.authentication_request, name="oidc_authentication_init"),
    path("oidc/callback/", oidc.authentication_callback, name="oidc_authentication_callback"),
    path("scim/v2/", include("people.scim.urls")),
    path("people/", include("people.urls")),
    path("tokens/", include((decisions_urls.token_urlpatterns, "tokens"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: the CSP forbids inline scripts.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/people/import", people_api.PeopleImportView.as_view(), name="people-import"),
    path("api/v1/", include("decisions.urls")),
    path("api/v1/", include("governance.urls")),
    path("api/v1/", include("consent.urls")),
]

# Unknown API addresses and failures outside DRF answer problem+json (SCIM has its own catch-all);
# a database outage is a 503 in every format.
handler404 = problems.page_not_found
handler500 = problems.server_error
