"""``python3 run.py manage load_demo``: demo employees, users for every role, some consent; prints logins."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from consent.demo import load_demo


class Command(BaseCommand):
    help = "Load demo employees in several regions and users for every role, then print the logins."

    def handle(self, *args, **options) -> None:
        call_command("load_policy_pack", if_empty=True, verbosity=0)
        try:
            rows = load_demo()
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        width = max(len(username) for username, _, _ in rows)
        self.stdout.write("Demo logins (stored in the state folder, demo_logins.json):")
        for username, password, who in rows:
            self.stdout.write(f"  {username.ljust(width)}  {password}  {who}")
