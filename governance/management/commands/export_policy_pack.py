"""``python3 run.py manage export_policy_pack [--output PATH]``: the approved policy as a pack file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from governance.packs import export_pack


class Command(BaseCommand):
    help = (
        "Write the approved policy (regions, categories, purposes, published notices, approved rules, "
        "instruments, retention, exclusions) as a policy pack that load_policy_pack reads back unchanged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")
        parser.add_argument("--name", default="consentry-export", help="the pack's name")
        parser.add_argument("--pack-version", help="the pack's version (default: the current UTC time)")

    def handle(self, *args: Any, output: Path | None, name: str, pack_version: str | None, **options: Any) -> None:
        version = pack_version or timezone.now().strftime("%Y.%m.%d.%H%M%S")
        text = export_pack(
            name=name,
            version=version,
            description="Exported from the approved policy in Consentry.",
        )
        if output is None:
            self.stdout.write(text, ending="")
            return
        output.write_text(text, encoding="utf-8")
        self.stdout.write(f"Wrote policy pack {name} {version} to {output}.")
