from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_roles(sender, **kwargs) -> None:
    from people.roles import ensure_roles

    ensure_roles()


class PeopleConfig(AppConfig):
    name = "people"
    verbose_name = "People"

    def ready(self) -> None:
        # Groups need every app's permissions, which exist only after migrate.
        post_migrate.connect(_ensure_roles, dispatch_uid="people.ensure_roles")
        # Defining BearerTokenScheme registers it with the OpenAPI generator.
        from people import authentication  # noqa: F401
