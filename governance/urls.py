"""Policy administration under /api/v1/ (API.md, Policy administration), and the legal console pages.

``urlpatterns`` is the API; ``legal_urlpatterns`` are the console pages, which
``consentry.urls`` mounts under ``legal/`` in the ``legal`` namespace together
with the legal pages of apps further down the layers.
"""

from __future__ import annotations

from django.urls import path

from governance import api, views

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

legal_urlpatterns = [
    path("", views.regions, name="regions"),
    path("regions/<str:code>/", views.region_detail, name="region"),
    path("regions/<str:code>/draft", views.rule_draft, name="rule_draft"),
    path("rules/<int:pk>/", views.rule_detail, name="rule"),
    path("rules/<int:pk>/approve", views.rule_approve, name="rule_approve"),
    path("rules/<int:pk>/discard", views.rule_discard, name="rule_discard"),
    path("instruments/", views.instruments, name="instruments"),
    path("instruments/new", views.instrument_edit, name="instrument_new"),
    path("instruments/<int:pk>/edit", views.instrument_edit, name="instrument_edit"),
    path("catalogue/", views.catalogue, name="catalogue"),
    path("catalogue/notices/<int:version>/", views.notice_detail, name="notice"),
    path("packs/", views.packs, name="packs"),
    path("packs/export", views.pack_export, name="pack_export"),
]
