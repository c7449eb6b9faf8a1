"""Routes of the decision API, mounted under /api/v1/, and of the pages that read decisions.

``portal_urlpatterns`` and ``legal_urlpatterns`` join the ``portal`` and
``legal`` namespaces in ``consentry.urls``; ``token_urlpatterns`` is the
staff token page, mounted at /tokens/ as the ``tokens`` namespace.
"""

from __future__ import annotations

from django.urls import path

from decisions import api, feed_api, rights_api, token_views, views

urlpatterns = [
    path("decisions/capture", api.CaptureDecisionView.as_view(), name="decisions-capture"),
    path("decisions/use", api.UseDecisionView.as_view(), name="decisions-use"),
    path("revocations", feed_api.RevocationFeedView.as_view(), name="revocations"),
    path("revocations/stream", feed_api.RevocationStreamView.as_view(), name="revocations-stream"),
    path("simulate", api.SimulateView.as_view(), name="simulate"),
    path("tokens/", api.TokenListView.as_view(), name="tokens"),
    path("tokens/<int:pk>", api.TokenDetailView.as_view(), name="token-detail"),
    path("me/rights-requests", rights_api.MeRightsRequestListView.as_view(), name="me-rights-requests"),
    path("me/rights-requests/<uuid:pk>", rights_api.MeRightsRequestDetailView.as_view(), name="me-rights-request"),
    path(
        "me/rights-requests/<uuid:pk>/download",
        rights_api.MeRightsRequestDownloadView.as_view(),
        name="me-rights-request-download",
    ),
    path("rights-requests", rights_api.RightsRequestListView.as_view(), name="rights-requests"),
    path("rights-requests/<uuid:pk>", rights_api.RightsRequestDetailView.as_view(), name="rights-request"),
]

portal_urlpatterns = [
    path("captured/", views.captured, name="captured"),
    path("rights/", views.rights_page, name="rights"),
    path("rights/access", views.rights_access, name="rights_access"),
    path("rights/erase", views.rights_erasure, name="rights_erasure"),
    path("rights/<uuid:pk>/", views.rights_detail, name="rights_detail"),
    path("rights/<uuid:pk>/download", views.rights_download, name="rights_download"),
]

legal_urlpatterns = [
    path("simulate/", views.simulate, name="simulate"),
]

token_urlpatterns = [
    path("", token_views.tokens, name="list"),
    path("<int:pk>/revoke", token_views.token_revoke_view, name="revoke"),
]
