"""Policy administration under /api/v1/ (API.md, Policy administration)."""

from __future__ import annotations

from django.urls import path

from governance import api

urlpatterns = [
    path("regions/", api.RegionListView.as_view(), name="regions"),
    path("regions/<str:code>", api.RegionDetailView.as_view(), name="region"),
    path("data-categories/", api.DataCategoryListView.as_view(), name="data-categories"),
    path("data-categories/<slug:slug>", api.DataCategoryDetailView.as_view(), name="data-category"),
    path("purposes/", api.PurposeListView.as_view(), name="purposes"),
    path("purposes/<slug:slug>", api.PurposeDetailView.as_view(), name="purpose"),
    path("notices/", api.NoticeListView.as_view(), name="notices"),
    path("notices/<int:version>", api.NoticeDetailView.as_view(), name="notice"),
    path("notices/<int:version>/approve", api.NoticeApproveView.as_view(), name="notice-approve"),
    path("jurisdiction-rules/", api.RuleListView.as_view(), name="jurisdiction-rules"),
    path("jurisdiction-rules/<int:pk>", api.RuleDetailView.as_view(), name="jurisdiction-rule"),
    path("jurisdiction-rules/<int:pk>/approve", api.RuleApproveView.as_view(), name="jurisdiction-rule-approve"),
    path("legal-instruments/", api.InstrumentListView.as_view(), name="legal-instruments"),
    path("legal-instruments/<int:pk>", api.InstrumentDetailView.as_view(), name="legal-instrument"),
    path("retention-policies/", api.RetentionListView.as_view(), name="retention-policies"),
    path("retention-policies/<int:pk>", api.RetentionDetailView.as_view(), name="retention-policy"),
    path("exclusions/", api.ExclusionListView.as_view(), name="exclusions"),
    path("exclusions/<int:pk>", api.ExclusionDetailView.as_view(), name="exclusion"),
]
