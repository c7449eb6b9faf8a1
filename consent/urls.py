"""Employee self-service under /api/v1/me/ (API.md, Employee self-service)."""

from __future__ import annotations

from django.urls import path

from consent import api

urlpatterns = [
    path("me/consent", api.MeConsentView.as_view(), name="me-consent"),
    path("me/consent/withdraw-all", api.MeWithdrawAllView.as_view(), name="me-consent-withdraw-all"),
    path("me/acknowledgements", api.MeAcknowledgementView.as_view(), name="me-acknowledgements"),
    path("me/pause", api.MePauseView.as_view(), name="me-pause"),
    path("me/receipts/", api.MeReceiptListView.as_view(), name="me-receipts"),
    path("me/receipts/<str:receipt_id>", api.MeReceiptDetailView.as_view(), name="me-receipt"),
]
