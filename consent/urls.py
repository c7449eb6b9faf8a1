"""Employee portal pages, plus the legal pages that read consent.

``consentry.urls`` mounts ``urlpatterns`` in the ``portal`` namespace and
``legal_urlpatterns`` in the ``legal`` one: the opt-in rates read consent
data, which the governance app may not import.
"""

from __future__ import annotations

from django.urls import path

from consent import views

urlpatterns = [
    path("", views.home, name="home"),
    path("choices", views.save_choices, name="save"),
    path("withdraw-everything", views.withdraw_everything, name="withdraw_all"),
    path("acknowledge", views.acknowledge, name="acknowledge"),
    path("pause", views.pause, name="pause"),
    path("resume", views.resume, name="resume"),
    path("history/", views.history, name="history"),
]

legal_urlpatterns = [
    path("opt-in-rates/", views.opt_in_rates_page, name="opt_in_rates"),
]
