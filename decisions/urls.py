"""Routes of the decision API, mounted under /api/v1/, and of the pages that read decisions.

``portal_urlpatterns`` and ``legal_urlpatterns`` join the ``portal`` and
``legal`` namespaces in ``consentry.urls``.
"""

from __future__ import annotations

from django.urls import path

from decisions import api, feed_api, views

urlpatterns = [
    path("decisions/capture", api.CaptureDecisionView.as_view(), name="decisions-capture"),
    path("decisions/use", api.UseDecisionView.as_view(), name="decisions-use"),
    path("revocations", feed_api.RevocationFeedView.as_view(), name="revocations"),
    path("revocations/stream", feed_api.RevocationStreamView.as_view(), name="revocations-stream"),
    path("simulate", api.SimulateView.as_view(), name="simulate"),
    path("tokens/", api.TokenListView.as_view(), name="tokens"),
    path("tokens/<int:pk>", api.TokenDetailView.as_view(), name="token-detail"),
]

portal_urlpatterns = [
    path("captured/", views.captured, name="captured"),
]

legal_urlpatterns = [
    path("simulate/", views.simulate, name="simulate"),
]
