"""python manage.py import_employees FILE.csv: provision, update and transfer employees from an HR export."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.actors import Actor
from people.csv_import import import_csv


class Command(BaseCommand):
    help = "Import employees from a CSV file (docs/csv-import.md). All rows or none: every error is listed first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="CSV file with a header row (hr_id, country, region, …)")
        parser.add_argument("--actor", default="import_employees", help="name recorded in the audit log")

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        outcome = import_csv(content=content, source=path.name, actor=Actor(kind="hr", ref=options["actor"]))
        done = outcome.summary
        if done is None:
            for error in outcome.errors:
                where = f"row {error.row}" + (f", column {error.column}" if error.column else "")
                self.stderr.write(f"{where}: {error.message}")
            raise CommandError(f"{len(outcome.errors)} error(s); nothing was imported.")
        counts = f"{done.created} created, {done.updated} updated, {done.unchanged} unchanged"
        self.stdout.write(f"Imported {path.name}: {counts}.")
