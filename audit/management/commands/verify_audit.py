"""python manage.py verify_audit [EXPORT]: verify the live ledger, or an export bundle.

Prints the first bad entry (or checkpoint, or stored Merkle node) and exits
non-zero when the evidence is not intact. Bundles are checked against this
deployment's audit keys and checkpoint allowance only, never against the keys
a bundle carries. Entries not yet under a checkpoint but young enough are
noted, not failed.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.verifiers import summary, verify_bundle, verify_live


class Command(BaseCommand):
    help = (
        "Verify the audit ledger (sequence, hash chain, signed checkpoints and how soon they came, Merkle roots "
        "and stored nodes) or an export bundle."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("export", nargs="?", help="an export bundle (.zip); without it the live database")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options) -> None:
        source = options["export"]
        if source:
            if not Path(source).is_file():
                raise CommandError(f"{source}: no such file")
            report = verify_bundle(source)
        else:
            report = verify_live()
        what = f"bundle {source}" if source else "live ledger"
        if options["json"]:
            self.stdout.write(json.dumps({"source": what, **summary(report), "seconds": round(report.seconds, 3)}))
        elif report.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"OK: {what} verified: {report.entries} entries, tree of {report.size}, "
                    f"{report.checkpoints} signed checkpoints in {report.seconds:.2f} s"
                )
            )
            for note in report.notes:
                self.stdout.write(f"  {note}")
        if not report.ok:
            if not options["json"]:
                self.stderr.write(f"FAILED: {what} is not intact")
                for problem in report.findings:
                    self.stderr.write(f"  {problem}")
            raise CommandError(f"first problem: {report.findings[0]}", returncode=1)
