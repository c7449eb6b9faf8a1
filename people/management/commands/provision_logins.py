"""python3 run.py manage provision_logins: give a login to every employee provisioned before logins were.

Provisioning creates or links each employee's login (``employee_login_ensure``);
employees provisioned earlier get theirs here, by the same rule, so
``issue_token user`` and set-password links work for them too. Idempotent:
employees who have a login, and terminated ones, are left alone. A login
name that belongs to someone else is reported and skipped; the command then
exits 1 so a script notices.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.actors import Actor
from consentry.errors import DomainError
from people.models import Employee, EmployeeStatus
from people.services import employee_login_ensure


class Command(BaseCommand):
    help = "Create or link the portal login of every employee who has none yet (provisioned before logins were)."

    def handle(self, *args, **options) -> None:
        actor = Actor.system("provision_logins")
        waiting = Employee.objects.filter(user__isnull=True).exclude(status=EmployeeStatus.TERMINATED).order_by("pk")
        done, refused = 0, []
        for employee in waiting.iterator():
            try:
                user = employee_login_ensure(employee=employee, actor=actor)
            except DomainError as exc:
                refused.append(f"{employee.hr_id}: {exc.detail}")
                continue
            done += 1
            self.stdout.write(f"{employee.hr_id}: login {user.get_username()}")
        self.stdout.write(f"{done} logins created or linked, {len(refused)} refused.")
        if refused:
            for line in refused:
                self.stderr.write(line)
            raise CommandError("Some employees got no login: change their userName in the HR system and run again.")
