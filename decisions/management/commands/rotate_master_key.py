"""python manage.py rotate_master_key [--generate] [--check]: re-wrap every data key under the current master key.

To rotate with keys from the environment: set the new key as
``CONSENTRY_MASTER_KEY``, list the old one in ``CONSENTRY_MASTER_KEY_PREVIOUS``,
restart the processes, then run this command. Locally (master key generated
into the state folder) ``--generate`` makes the new key and keeps the old one
in the local keyring. Only the wrapping changes: the data keys, and so every
record encrypted with them, stay as they are. Interrupted, it resumes where it
stopped when run again; each batch is audited, and so is the completion.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count

from audit.actors import Actor
from consentry.env import env_raw
from decisions.datakeys import data_keys_rewrap, master_key_rotation_complete
from decisions.kms import (
    DATA_KEY_BYTES,
    LocalKeyEncryptionKey,
    decode_master_key,
    install_local_master_key,
    key_encryption_key,
    previous_master_keys,
    retire_local_master_key,
)
from decisions.models import DataKey

ACTOR = Actor.system("rotate_master_key")


class Command(BaseCommand):
    help = "Re-wrap all data keys under the current master key (resumable; data is not touched)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--generate",
            action="store_true",
            help="make a new local master key first (only when the master key comes from the state folder)",
        )
        parser.add_argument("--check", action="store_true", help="only report how many keys each master version holds")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, **options) -> None:
        if options["check"]:
            self._report(key_encryption_key().version)
            return
        kek = self._generate() if options["generate"] else key_encryption_key()
        total = 0
        while rewrapped := data_keys_rewrap(kek=kek, actor=ACTOR, batch_size=max(1, options["batch_size"])):
            total += rewrapped
            if options["verbosity"] > 1:
                self.stdout.write(f"re-wrapped {total} data keys")
        left = DataKey.objects.exclude(master_version=kek.version).count()
        if left:
            # Rows another rotation held: run again once it finished.
            raise CommandError(f"{left} data keys are still under an older master key; run the command again")
        master_key_rotation_complete(kek=kek, actor=ACTOR, rewrapped=total)
        self.stdout.write(f"re-wrapped {total} data keys; every data key is now under master key {kek.version}")
        self.stdout.write("older master keys may now be removed from CONSENTRY_MASTER_KEY_PREVIOUS")

    def _generate(self) -> LocalKeyEncryptionKey:
        if settings.CONSENTRY_KEK_CLASS != "decisions.kms.LocalKeyEncryptionKey":
            raise CommandError("--generate works with the local master key only; rotate in your KMS instead")
        if env_raw("CONSENTRY_MASTER_KEY"):
            raise CommandError(
                "CONSENTRY_MASTER_KEY comes from the environment: set the new key there, move the old one to "
                "CONSENTRY_MASTER_KEY_PREVIOUS, restart, then run this command without --generate"
            )
        old = decode_master_key(settings.CONSENTRY_MASTER_KEY)
        new = secrets.token_bytes(DATA_KEY_BYTES)
        # The old key is kept before the new one replaces it: no moment without a way to read a key.
        retire_local_master_key(old)
        install_local_master_key(new)
        key_encryption_key.cache_clear()
        return LocalKeyEncryptionKey(current=new, previous=[old, *previous_master_keys()])

    def _report(self, current: str) -> None:
        versions = DataKey.objects.values_list("master_version").annotate(count=Count("id")).order_by("master_version")
        for version, count in versions:
            marker = " (current)" if version == current else ""
            self.stdout.write(f"{version}{marker}: {count}")
