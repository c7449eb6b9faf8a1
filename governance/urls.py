"""Legal console pages. ``consentry.urls`` mounts them under ``legal/`` in the ``legal``
namespace, together with the legal pages of apps further down the layers.
"""

from __future__ import annotations

from django.urls import path

from governance import views

urlpatterns = [
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
