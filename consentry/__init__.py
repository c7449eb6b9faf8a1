"""Consentry project package: settings, URLs, the Celery app and key material."""

from __future__ import annotations

from consentry.celery import app as celery_app

__all__ = ("celery_app",)
