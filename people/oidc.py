"""Single sign-on with the company's OpenID Connect provider (mozilla-django-oidc).

A person signs in as the employee the provider vouches for: the configured
claim (``CONSENTRY_OIDC_EMPLOYEE_CLAIM``, default ``email``) is matched to
one employee field (``CONSENTRY_OIDC_EMPLOYEE_FIELD``: email, user_name or
hr_id). No employee, several, or a terminated one: no sign-in (fail closed).
Provisioning gives each employee their portal account; an employee provisioned
before that gets it at the first sign-in, through the same create-or-link
service (``people.services.employee_login_ensure``), so both paths agree.
A disabled account (a terminated employee) signs in no more, and its open
sessions end.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from audit.actors import Actor
from consentry.errors import Conflict
from people.models import Employee, EmployeeStatus
from people.services import employee_login_ensure


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
        try:
            user = employee_login_ensure(employee=employee, actor=Actor.system("single-sign-on"))
        except Conflict:
            # The login name belongs to someone else's or an administrator's account: fail closed.
            return None
        return user if user.is_active else None

    def update_user(self, user, claims: dict):
        return user

    def get_user(self, user_id):
        # mozilla-django-oidc loads the session's user whatever its state; a disabled account's session must end.
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None


def _enabled(view):
    def guarded(request: HttpRequest, *args, **kwargs):
        if not settings.CONSENTRY_OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return view(request, *args, **kwargs)

    return guarded


authentication_request = _enabled(OIDCAuthenticationRequestView.as_view())
authentication_callback = _enabled(OIDCAuthenticationCallbackView.as_view())
