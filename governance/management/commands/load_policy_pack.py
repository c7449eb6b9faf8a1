"""``load_policy_pack [PATH] [--check] [--if-empty]``: load (or only check) a policy pack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.packs import DEFAULT_PACK_PATH, PackInvalid, check_pack, load_pack, policy_is_empty, read_pack


class Command(BaseCommand):
    help = (
        "Load or update regions, rules, purposes, categories, notices, instruments, retention and exclusions "
        "from a policy pack file. Idempotent: loading the same pack twice changes nothing, and an entry an "
        "earlier load applied that was changed since (in the console or by another pack) is kept as it is now. "
        "Example: python3 run.py manage load_policy_pack packs/2026-11.yaml"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path", nargs="?", type=Path, default=DEFAULT_PACK_PATH, help="pack file (default: the shipped pack)"
        )
        parser.add_argument("--check", action="store_true", help="validate the pack only; change nothing")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="load only into a new installation (no rule or notice approved yet); otherwise change nothing. "
            "run.py starts with this, so a restart never touches the policy legal maintains",
        )

    def handle(self, *args: Any, path: Path, check: bool, if_empty: bool, **options: Any) -> None:
        verbose = options.get("verbosity", 1) >= 1
        if if_empty and not check and not policy_is_empty():
            if verbose:
                self.stdout.write(
                    f"Policy already in place; {path.name} was not loaded (--if-empty). "
                    "Load a pack explicitly to apply its changes."
                )
            return
        try:
            source = read_pack(path)
            if check:
                self._check(source)
                return
            result = load_pack(source)
        except PackInvalid as exc:
            # Every error, one per line, so legal can fix the whole file in one pass.
            for line in exc.lines():
                self.stderr.write(line)
            raise CommandError(f"{len(exc.errors)} error(s) in {exc.filename}; nothing was changed.") from exc
        if verbose:
            for line in result.summary_lines():
                self.stdout.write(line)

    def _check(self, source: Any) -> None:
        errors = check_pack(source)
        if errors:
            raise PackInvalid(filename=source.filename, errors=errors)
        data = source.data
        self.stdout.write(f"{source.filename}: policy pack {data['name']} {data['version']} is valid.")
