"""The audit API under /api/v1/audit/."""

from __future__ import annotations

from django.urls import path

from audit import api

app_name = "audit"

urlpatterns = [
    path("entries", api.EntryList.as_view(), name="entry-list"),
    path("entries/<int:seq>", api.EntryDetail.as_view(), name="entry-detail"),
    path("entries/<int:seq>/proof", api.EntryProof.as_view(), name="entry-proof"),
    path("checkpoints/", api.CheckpointList.as_view(), name="checkpoint-list"),
    path("checkpoints/<int:number>", api.CheckpointDetail.as_view(), name="checkpoint-detail"),
    path("exports", api.ExportList.as_view(), name="export-list"),
    path("exports/<uuid:pk>", api.ExportDetail.as_view(), name="export-detail"),
    path("exports/<uuid:pk>/download", api.ExportDownload.as_view(), name="export-download"),
]
