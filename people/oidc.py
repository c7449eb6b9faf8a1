"""Single sign-on with the company's OpenID Connect provider (mozilla-django-oidc).

A person signs in as the employee the provider vouches for: the configured
claim (``CONSENTRY_OIDC_EMPLOYEE_CLAIM``, default ``email``) is matched to
one employee field (``CONSENTRY_OIDC_EMPLOYEE_FIELD``: email, user_name or
hr_id). No employee, several, or a terminated one: no sign-in (fail closed).
The first sign-in creates the portal account and links it to the employee.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from audit.actors import Actor
from people.models import Employee, EmployeeStatus
from people.roles import Role, ensure_roles
from people.services import employee_attach_user


def employee_for_claims(claims: dict) -> Employee | None:
    """The one active (or on-leave) employee the claims name, or None."""
    value = claims.get(settings.CONSENTRY_OIDC_EMPLOYEE_CLAIM)
    if not isinstance(value, str) or not value.strip():
        return None
    field = settings.CONSENTRY_OIDC_EMPLOYEE_FIELD
    lookup = "hr_id" if field == "hr_id" else f"{field}__iexact"
    matches = list(
        Employee.objects.select_related("user")
        .filter(**{lookup: value.strip()}, deprovisioned_at__isnull=True)
        .exclude(status=EmployeeStatus.TERMINATED)[:2]
    )
    return matches[0] if len(matches) == 1 else None


class EmployeeOIDCBackend(OIDCAuthenticationBackend):
    def authenticate(self, request: HttpRequest | None, **kwargs):
        if not settings.CONSENTRY_OIDC_ENABLED:
            return None
        return super().authenticate(request, **kwargs)

    def verify_claims(self, claims: dict) -> bool:
        return employee_for_claims(claims) is not None

    def filter_users_by_claims(self, claims: dict):
        employee = employee_for_claims(claims)
        if employee is None or employee.user is None:
            return get_user_model().objects.none()
        return get_user_model().objects.filter(pk=employee.user.pk, is_active=True)

    def create_user(self, claims: dict):
        employee = employee_for_claims(claims)
        if employee is None:
            return None
        username = employee.user_name or employee.hr_id
        User = get_user_model()
        if User.objects.filter(username__iexact=username).exists():
            # A local account already holds the name: never take it over by SSO.
            return None
        user = User.objects.create_user(username=username, email=employee.email)
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.add(ensure_roles()[Role.EMPLOYEE])
        employee_attach_user(employee=employee, user=user, actor=Actor.for_user(user))
        return user

    def update_user(self, user, claims: dict):
        return user


def _enabled(view):
    def guarded(request: HttpRequest, *args, **kwargs):
        if not settings.CONSENTRY_OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return view(request, *args, **kwargs)

    return guarded


authentication_request = _enabled(OIDCAuthenticationRequestView.as_view())
authentication_callback = _enabled(OIDCAuthenticationCallbackView.as_view())
