"""python manage.py issue_token {device,pipeline,user,hr} …: prints the new token alone on its last line."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.actors import Actor
from consentry.errors import DomainError
from governance.models import Purpose
from people.models import Employee
from people.tokens import token_issue


class Command(BaseCommand):
    help = "Issue an API token. The token is shown once: store it now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=["device", "pipeline", "user", "hr"])
        parser.add_argument("--employee", help="HR id of the employee (device tokens)")
        parser.add_argument("--device", help="device id (device tokens)")
        parser.add_argument("--name", default="", help="a label for the token")
        parser.add_argument("--purpose", action="append", default=[], help="purpose slug (pipeline tokens; repeat)")
        parser.add_argument("--username", help="the person the token acts as (user tokens)")
        parser.add_argument("--days", type=int, default=90, help="lifetime in days (default 90, at most 366)")

    def handle(self, *args, **options) -> None:
        kind = options["kind"]
        employee = user = None
        if kind == "device":
            if not options["employee"] or not options["device"]:
                raise CommandError("A device token needs --employee and --device.")
            employee = Employee.objects.filter(hr_id=options["employee"]).first()
            if employee is None:
                raise CommandError(f"No employee with HR id {options['employee']!r}.")
        if kind == "user":
            user = get_user_model().objects.filter(username=options["username"] or "").first()
            if user is None:
                raise CommandError(f"No user named {options['username']!r}.")
        if kind == "pipeline":
            purposes = {p.slug: p for p in Purpose.objects.filter(slug__in=options["purpose"])}
            unknown = sorted(set(options["purpose"]) - set(purposes))
            if unknown:
                raise CommandError(f"Unknown purposes: {', '.join(unknown)}.")
            prohibited = sorted(slug for slug, p in purposes.items() if p.prohibited)
            if prohibited:
                raise CommandError(f"Prohibited purposes can never be used: {', '.join(prohibited)}.")
        try:
            token, raw = token_issue(
                kind=kind,
                name=options["name"] or options["device"] or options["username"] or "",
                employee=employee,
                device_id=options["device"] or "",
                user=user,
                purposes=options["purpose"],
                lifetime=timedelta(days=options["days"]),
                actor=Actor.system("issue_token"),
            )
        except DomainError as exc:
            details = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
            raise CommandError(f"{exc.detail} {details}".strip()) from exc
        self.stdout.write(f"Issued {token} expiring {token.expires_at:%Y-%m-%d %H:%M} UTC. It will not be shown again:")
        self.stdout.write(raw)
