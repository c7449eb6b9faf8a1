from __future__ import annotations

from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    name = "decisions"
    verbose_name = "Decisions"

    def ready(self) -> None:
        # Registers the revocation feed as the consumer of its outbox topics.
        from decisions import revocations  # noqa: F401
