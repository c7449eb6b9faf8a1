"""Audit URLs, one namespace ``audit``: the API under /api/v1/audit/ and the auditor console under /audit/."""

from __future__ import annotations

from django.urls import include, path

from audit import api, views

app_name = "audit"

api_urlpatterns = [
    path("entries", api.EntryList.as_view(), name="entry-list"),
    path("entries/<int:seq>", api.EntryDetail.as_view(), name="entry-detail"),
    path("entries/<int:seq>/proof", api.EntryProof.as_view(), name="entry-proof"),
    path("checkpoints/", api.CheckpointList.as_view(), name="checkpoint-list"),
    path("checkpoints/<int:number>", api.CheckpointDetail.as_view(), name="checkpoint-detail"),
    path("exports", api.ExportList.as_view(), name="export-list"),
    path("exports/<uuid:pk>", api.ExportDetail.as_view(), name="export-detail"),
    path("exports/<uuid:pk>/download", api.ExportDownload.as_view(), name="export-download"),
]

console_urlpatterns = [
    path("", views.entries, name="entries"),
    path("entries/<int:seq>/", views.entry_detail, name="entry"),
    path("exports/", views.exports, name="exports"),
    path("checkpoints/", views.checkpoints, name="checkpoints"),
]

# Mounted once at the root: two includes sharing a namespace would hide each other's names.
urlpatterns = [
    path("api/v1/audit/", include(api_urlpatterns)),
    path("audit/", include(console_urlpatterns)),
]
