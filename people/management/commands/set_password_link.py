"""python manage.py set_password_link LOGIN: a set-password link for a provisioned employee without SSO.

Prints the link alone on its last line, and e-mails it to the employee's work
address when HR gave one (``--no-email`` to only print it).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.actors import Actor
from consentry.errors import DomainError
from people.models import Employee
from people.passwords import set_password_link_issue


class Command(BaseCommand):
    help = "Produce (and e-mail, when the employee has a work address) a set-password link for an employee's login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("login", help="the employee's login (SCIM userName) or HR id")
        parser.add_argument("--no-email", action="store_true", help="only print the link")

    def handle(self, *args, **options) -> None:
        login = options["login"].strip()
        employee = (
            Employee.objects.select_related("user").filter(user__username__iexact=login).first()
            or Employee.objects.select_related("user").filter(hr_id=login).first()
        )
        if employee is None:
            raise CommandError(f"No employee has the login or HR id {login!r}.")
        try:
            link = set_password_link_issue(
                employee=employee, actor=Actor.system("set_password_link"), send=not options["no_email"]
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        if link.emailed_to:
            self.stderr.write(f"Sent to {link.emailed_to}.")
        self.stdout.write(link.url)
