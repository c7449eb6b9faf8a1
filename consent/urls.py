"""Employee self-service under /api/v1/me/ (API.md, Employee self-service), and the portal pages.

``urlpatterns`` is the API. ``consentry.urls`` mounts ``portal_urlpatterns``
in the ``portal`` namespace and ``legal_urlpatterns`` in the ``legal`` one:
the opt-in rates read consent data, which the governance app may not import.
"""

from __future__ import annotations

from django.urls import path

from consent import api, views

urlpatterns = [
    path("me/consent", api.MeConsentView.as_view(), name="me-consent"),
    path("me/consent/withdraw-all", api.MeWithdrawAllView.as_view(), name="me-consent-withdraw-all"),
    path("me/acknowledgements", api.MeAcknowledgementView.as_view(), name="me-acknowledgements"),
    path("me/pause", api.MePauseView.as_view(), name="me-pause"),
    path("me/receipts/", api.MeReceiptListView.as_view(), name="me-receipts"),
    path("me/receipts/<str:receipt_id>", api.MeReceiptDetailView.as_view(), name="me-receipt"),
]

portal_urlpatterns = [
    path("", views.home, name="home"),
    path("choices", views.save_choices, name="save"),
    path("withdraw-everything", views.withdraw_everything, name="withdraw_all"),
    path("acknowledge", views.acknowledge, name="acknowledge"),
    path("pause", views.pause, name="pause"),
    path("resume", views.resume, name="resume"),
    path("history/", views.history, name="history"),
    path("receipts/<str:receipt_id>", views.receipt, name="receipt"),
]

legal_urlpatterns = [
    path("opt-in-rates/", views.opt_in_rates_page, name="opt_in_rates"),
]
