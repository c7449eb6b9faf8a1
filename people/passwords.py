"""Set-password links: how a provisioned employee without single sign-on gets in.

Provisioning gives every employee a login with no usable password
(``people.services.employee_login_ensure``). Where the company has no SSO,
the employee sets a password through a link built on Django's password-reset
tokens: the link names the account and carries a token that is an HMAC of the
account's current password hash and last sign-in, so it stops working once
used, once the password changes, or after ``PASSWORD_RESET_TIMEOUT`` (three
days by default). The link is e-mailed to the employee's work address when HR
gave one; an operator can also print it (``manage.py set_password_link``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.views import PasswordResetConfirmView
from django.core.mail import send_mail
from django.urls import reverse, reverse_lazy
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from audit.actors import Actor
from audit.models import EventType
from audit.services import record
from consentry.errors import Conflict
from people.models import Employee, EmployeeStatus


@dataclass(frozen=True, slots=True)
class SetPasswordLink:
    url: str
    # The address it was sent to, or "" when it was only produced.
    emailed_to: str


def set_password_url(user) -> str:
    """The absolute set-password URL for ``user``, valid until used or expired."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("people:set-password", kwargs={"uidb64": uidb64, "token": token})
    return f"{settings.CONSENTRY_PUBLIC_URL}{path}"


def set_password_link_issue(*, employee: Employee, actor: Actor, send: bool = True) -> SetPasswordLink:
    """A set-password link for the employee's login, e-mailed to their work address when known.

    Refused for an employee without a login or no longer employed: a link
    would open a disabled account to nobody's benefit. Whoever holds a link
    can act as the employee until it is used, so each one issued is on the
    ledger: who asked for it and whether it was e-mailed (never the link).
    """
    user = employee.user
    if user is None:
        raise Conflict(f"Employee {employee.hr_id} has no login yet.", code="no_login")
    if employee.status == EmployeeStatus.TERMINATED or not user.is_active:
        raise Conflict(f"Employee {employee.hr_id} is terminated: their login is disabled.", code="login_disabled")
    url = set_password_url(user)
    emailed_to = employee.email if send else ""
    if emailed_to:
        _send_set_password_mail(employee=employee, login=user.get_username(), url=url)
    record(
        event_type=EventType.SET_PASSWORD_LINK_ISSUED,
        actor=actor,
        subject=employee.hr_id,
        object_type="employee",
        object_id=employee.pk,
        payload={"login": user.get_username(), "emailed": bool(emailed_to)},
    )
    return SetPasswordLink(url=url, emailed_to=emailed_to)


def _send_set_password_mail(*, employee: Employee, login: str, url: str) -> None:
    send_mail(
        subject="Set your Consentry password",
        message=(
            f"Hello {employee.display_name},\n\n"
            "Consentry shows what workplace activity may be captured about you and lets you decide.\n"
            f"Your login is {login}. Set your password here (the link works once, "
            f"for {settings.PASSWORD_RESET_TIMEOUT // 86400} days):\n\n{url}\n"
        ),
        from_email=None,
        recipient_list=[employee.email],
    )


class SetPasswordView(PasswordResetConfirmView):
    """The page a set-password link opens: Django's reset confirmation, for active accounts only."""

    template_name = "people/set_password.html"
    success_url = reverse_lazy("login")

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        # A terminated employee's link must not bring the account back to life.
        return user if user is not None and user.is_active else None

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password is set. Sign in with your login and the new password.")
        return response
