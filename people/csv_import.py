"""Reading an HR export (CSV) into HR records, with every error found before anything is written.

For HR systems without SCIM. The columns are the same fields SCIM carries
(docs/csv-import.md). Rows are numbered as a spreadsheet shows them: the
header is row 1, so the first employee is row 2. Validation reads the
database once for all rows (existing HR ids and user names), so a file of
ten thousand rows costs a handful of queries before the import starts.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.functions import Lower

from audit.actors import Actor
from consentry.errors import DomainError
from people.models import Employee, EmployeeStatus
from people.services import HRRecord, ImportSummary, employees_import

COLUMNS = (
    "hr_id",
    "user_name",
    "external_id",
    "display_name",
    "email",
    "country",
    "region",
    "entity",
    "site",
    "department",
    "status",
)
REQUIRED = ("hr_id", "country")
# HRRecord field for each column that is named differently.
_FIELD = {"region": "subdivision"}


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str
    message: str


@dataclass
class ParsedFile:
    records: list[tuple[int, HRRecord]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # Over CONSENTRY_CSV_MAX_ROWS: the API answers 413 rather than 422.
    too_large: bool = False


def _region(country: str, region: str) -> str:
    region = region.strip().upper()
    if region and "-" not in region and country:
        return f"{country}-{region}"
    return region


def _decode(content: bytes) -> str | RowError:
    try:
        # utf-8-sig: spreadsheets save UTF-8 with a byte-order mark.
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return RowError(0, "", f"The file is not UTF-8 text (byte {exc.start}).")


def parse_csv(content: bytes) -> ParsedFile:
    """Every row as an HR record, and every error with its row and column; nothing is written."""
    parsed = ParsedFile()
    text = _decode(content)
    if isinstance(text, RowError):
        parsed.errors.append(text)
        return parsed
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in reader.fieldnames or []]
    except csv.Error as exc:
        parsed.errors.append(RowError(1, "", f"The header cannot be read: {exc}."))
        return parsed
    reader.fieldnames = header
    for name in REQUIRED:
        if name not in header:
            parsed.errors.append(RowError(1, name, "This required column is missing."))
    for name in header:
        if name not in COLUMNS:
            parsed.errors.append(RowError(1, name, f"Unknown column; the columns are {', '.join(COLUMNS)}."))
    if parsed.errors:
        return parsed
    limit = settings.CONSENTRY_CSV_MAX_ROWS
    rows = 0
    last_line = 1
    try:
        for row in reader:
            number, last_line = last_line + 1, reader.line_num
            rows += 1
            if rows > limit:
                parsed.errors.append(RowError(number, "", f"The file has more than {limit} rows; split it."))
                parsed.too_large = True
                break
            _parse_row(row, number, parsed)
    except csv.Error as exc:
        # The record that failed starts on the line after the last one read.
        parsed.errors.append(RowError(last_line + 1, "", f"The CSV cannot be read here: {exc}."))
    if not parsed.records and not parsed.errors:
        parsed.errors.append(RowError(2, "", "The file has no employee rows."))
    if parsed.records and not parsed.too_large:
        # Also when some rows are invalid: every invalid row is reported at once.
        _check_against_database(parsed)
    parsed.errors.sort(key=lambda error: (error.row, error.column))
    return parsed


def _parse_row(row: dict, number: int, parsed: ParsedFile) -> None:
    if None in row:
        parsed.errors.append(RowError(number, "", "The row has more values than the header has columns."))
        return
    values = {name: (value or "").strip() for name, value in row.items()}
    country = values.get("country", "").upper()
    values["country"] = country
    values["region"] = _region(country, values.get("region", ""))
    values["status"] = (values.get("status") or EmployeeStatus.ACTIVE).lower()
    # Provisioning names a person without a display name by their HR id: the same
    # file imported again must then leave them unchanged, not blank the name.
    values["display_name"] = values.get("display_name") or values.get("hr_id", "")
    record = HRRecord(**{_FIELD.get(name, name): value for name, value in values.items()})
    errors = record.errors()
    if "country" in errors:
        # A region is read against its country: with the country wrong, its error is noise.
        errors.pop("subdivision", None)
    column_of = {"subdivision": "region"}
    for name, message in errors.items():
        parsed.errors.append(RowError(number, column_of.get(name, name), message))
    if not errors:
        parsed.records.append((number, record))


def _check_against_database(parsed: ParsedFile) -> None:
    """Duplicates inside the file, user names and logins held by others, reactivations of terminated people."""
    seen_ids: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    for number, record in parsed.records:
        if record.hr_id in seen_ids:
            parsed.errors.append(RowError(number, "hr_id", f"Also on row {seen_ids[record.hr_id]}."))
        seen_ids.setdefault(record.hr_id, number)
        name = record.user_name.lower()
        if name and name in seen_names:
            parsed.errors.append(RowError(number, "user_name", f"Also on row {seen_names[name]}."))
        if name:
            seen_names.setdefault(name, number)
    existing = {
        employee.hr_id: employee
        for employee in Employee.objects.filter(hr_id__in=list(seen_ids)).only("hr_id", "status", "user_id")
    }
    holders = dict(
        Employee.objects.annotate(lowered=Lower("user_name"))
        .filter(lowered__in=list(seen_names))
        .values_list("lowered", "hr_id")
    )
    for number, record in parsed.records:
        holder = holders.get(record.user_name.lower())
        if holder and holder != record.hr_id:
            parsed.errors.append(RowError(number, "user_name", f"Already the user name of {holder}."))
        current = existing.get(record.hr_id)
        if (
            current is not None
            and current.status == EmployeeStatus.TERMINATED
            and record.status != EmployeeStatus.TERMINATED
        ):
            parsed.errors.append(RowError(number, "status", "This employee is terminated; a rehire is a new HR id."))
    _check_logins(parsed, existing)


def _check_logins(parsed: ParsedFile, existing: dict[str, Employee]) -> None:
    """The login each row gets (its user name, else its HR id) must be free, or the row's own, or linkable.

    The same rules as ``employee_login_ensure``, read in two queries for the
    whole file so a taken login is a row error rather than a failed import.
    """
    logins = {number: (record.user_name or record.hr_id) for number, record in parsed.records}
    accounts = {
        account.lowered: account
        for account in get_user_model()
        .objects.annotate(lowered=Lower("username"))
        .filter(lowered__in=[login.lower() for login in logins.values()])
    }
    holders = dict(
        Employee.objects.filter(user__in=[account.pk for account in accounts.values()]).values_list("user_id", "hr_id")
    )
    for number, record in parsed.records:
        login = logins[number]
        account = accounts.get(login.lower())
        if account is None:
            continue
        column = "user_name" if record.user_name else "hr_id"
        holder = holders.get(account.pk)
        current = existing.get(record.hr_id)
        if holder == record.hr_id:
            continue
        if holder is not None:
            message = f"The login {login!r} belongs to employee {holder}."
        elif current is not None and current.user_id is not None:
            message = f"The login {login!r} is already taken."
        elif account.is_staff or account.is_superuser:
            message = f"The login {login!r} is an administrator account."
        else:
            continue
        parsed.errors.append(RowError(number, column, message))


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What an import did: a summary when it ran, every error when it did not."""

    errors: list[RowError]
    summary: ImportSummary | None = None
    # Refused for its size (CONSENTRY_CSV_MAX_BYTES or _MAX_ROWS), whatever its rows say.
    too_large: bool = False

    @property
    def ok(self) -> bool:
        return self.summary is not None


def import_csv(*, content: bytes, source: str, actor: Actor) -> ImportOutcome:
    """Validate the whole file, then import it atomically; nothing is written when any row is wrong."""
    if len(content) > settings.CONSENTRY_CSV_MAX_BYTES:
        limit = settings.CONSENTRY_CSV_MAX_BYTES
        return ImportOutcome(
            errors=[RowError(0, "", f"The file is larger than {limit} bytes; split it.")], too_large=True
        )
    parsed = parse_csv(content)
    if parsed.errors:
        return ImportOutcome(errors=parsed.errors, too_large=parsed.too_large)
    try:
        summary = employees_import(
            records=[record for _, record in parsed.records],
            actor=actor,
            source=source,
            digest=hashlib.sha256(content).hexdigest(),
        )
    except DomainError as exc:
        # Only a concurrent change between validation and import gets here.
        details = "; ".join(f"{name}: {message}" for name, message in exc.errors.items())
        return ImportOutcome(errors=[RowError(0, "", f"{exc.detail} {details}".strip())])
    return ImportOutcome(errors=[], summary=summary)
