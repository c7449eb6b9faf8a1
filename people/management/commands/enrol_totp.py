"""python manage.py enrol_totp USERNAME: give a person a new authenticator and print its key.

For demo staff and recovery: the operator hands the printed key or
``otpauth://`` URI to the person (or scans it into an authenticator app).
Any earlier authenticator of that person is removed. Audited.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.actors import Actor
from people.second_factor import base32_secret, totp_device_enrol_confirmed


class Command(BaseCommand):
    help = "Enrol a new TOTP authenticator for a user and print its secret and provisioning URI."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args, **options) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        device = totp_device_enrol_confirmed(user=user, actor=Actor.system("enrol_totp"))
        self.stdout.write(f"Secret (base32): {base32_secret(device)}")
        self.stdout.write(device.config_url)
