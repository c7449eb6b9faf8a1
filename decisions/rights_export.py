"""The copy of everything Consentry holds about one employee: an access request's zip.

Format ``consentry-access-export/v1``. Two files:

- ``data.json``: one JSON object, for machines and for taking elsewhere
  (portability). Its keys, in this order:

  - ``format``, ``generated_at``, ``request`` (``id``, ``requested_at``);
  - ``employee``: the HR profile (HR id, name, e-mail, work location,
    entity, site, department, status and its dates);
  - ``consent_state``: where each purpose × category stands now;
  - ``consent_events``: every grant, withdrawal and expiry, oldest first,
    with the notice version shown, the channel and the receipt id;
  - ``acknowledgements``: monitoring-notice acknowledgements;
  - ``pauses``: capture pauses;
  - ``receipts``: the signed consent receipts, each as its compact JWS
    (verifiable with ``/.well-known/jwks.json``) and its decoded claims;
  - ``capture_grants``: every capture grant issued for the employee (id,
    purpose, categories, device, pseudonymous subject, times);
  - ``data_keys``: metadata of the data keys (id, category, day, purposes,
    ``active`` or ``destroyed`` with when and why), never key material;
  - ``rights_requests``: the employee's access and erasure requests;
  - ``audit_entries``: ledger entries about the employee (their ``subject``),
    with each entry's hash, so they can be checked against an audit export;
  - ``counts``: how many items each list holds.

  Times are RFC 3339 in UTC.
- ``index.html``: the same in plain language, readable offline in any
  browser: no script, no external style sheet, font or image. Long lists
  show their first ``HTML_ROWS`` items and point to ``data.json`` for the rest.

Lists are read in chunks and streamed into the zip, so memory stays flat
however many grants or ledger entries an employee has.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from django.template.loader import render_to_string

from audit.models import AuditEntry, EventType
from consent.models import ConsentEvent, ConsentState, NoticeAcknowledgement, Pause, Receipt
from decisions.models import CaptureGrant, DataKey, DestroyedKey, RightsRequest
from governance.models import DataCategory, Purpose
from people.models import Employee

EXPORT_FORMAT = "consentry-access-export/v1"
HTML_ROWS = 500
CHUNK = 1000
# A fixed time for the zip entries: the archive's bytes depend on its content only.
ZIP_TIME = (2000, 1, 1, 0, 0, 0)


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Section:
    """One list of ``data.json``: its key, title and words for the page, and its rows."""

    key: str
    title: str
    intro: str
    columns: tuple[str, ...]
    rows: Callable[[], Iterable[dict[str, Any]]]
    # For the page: (cells of) the first HTML_ROWS rows, and how many there were in all.
    shown: list[tuple[Any, ...]] = field(default_factory=list)
    count: int = 0
    cells: Callable[[dict[str, Any]], tuple[Any, ...]] = field(default=lambda row: ())

    @property
    def headings(self) -> list[str]:
        return [COLUMN_TITLES.get(column, column) for column in self.columns]


def _profile(employee: Employee) -> dict[str, Any]:
    return {
        "hr_id": employee.hr_id,
        "display_name": employee.display_name,
        "email": employee.email,
        "user_name": employee.user_name,
        "country": employee.country,
        "subdivision": employee.subdivision,
        "entity": employee.entity,
        "site": employee.site,
        "department": employee.department,
        "status": employee.status,
        "terminated_at": rfc3339(employee.terminated_at),
        "created_at": rfc3339(employee.created_at),
        "updated_at": rfc3339(employee.updated_at),
    }


def _consent_state(employee: Employee) -> Iterator[dict[str, Any]]:
    rows = ConsentState.objects.filter(employee=employee).select_related("notice").order_by("purpose", "category")
    for state in rows:
        yield {
            "purpose": state.purpose_id,
            "category": state.category_id,
            "state": state.state,
            "since": rfc3339(state.since),
            "expires_at": rfc3339(state.expires_at),
            "withdrawn_at": rfc3339(state.withdrawn_at),
            "notice_version": state.notice.version,
            "version": state.version,
        }


def _consent_events(employee: Employee) -> Iterator[dict[str, Any]]:
    rows = ConsentEvent.objects.filter(employee=employee).select_related("notice").order_by("version")
    for event in rows.iterator(chunk_size=CHUNK):
        yield {
            "version": event.version,
            "at": rfc3339(event.at),
            "kind": event.kind,
            "purpose": event.purpose_id,
            "category": event.category_id,
            "notice_version": event.notice.version,
            "channel": event.channel,
            "actor": event.actor,
            "expires_at": rfc3339(event.expires_at),
            "receipt_id": event.receipt_id,
        }


def _acknowledgements(employee: Employee) -> Iterator[dict[str, Any]]:
    rows = NoticeAcknowledgement.objects.filter(employee=employee).select_related("notice").order_by("at")
    for ack in rows:
        yield {"at": rfc3339(ack.at), "notice_version": ack.notice.version, "channel": ack.channel}


def _pauses(employee: Employee) -> Iterator[dict[str, Any]]:
    for pause in Pause.objects.filter(employee=employee).order_by("starts_at"):
        yield {
            "starts_at": rfc3339(pause.starts_at),
            "ends_at": rfc3339(pause.ends_at),
            "resumed_at": rfc3339(pause.resumed_at),
        }


def _receipts(employee: Employee) -> Iterator[dict[str, Any]]:
    rows = Receipt.objects.filter(employee=employee).order_by("issued_at", "id")
    for receipt in rows.iterator(chunk_size=CHUNK):
        yield {
            "id": receipt.id,
            "kind": receipt.kind,
            "issued_at": rfc3339(receipt.issued_at),
            "audit_seq": receipt.audit_seq,
            "jws": receipt.jws,
            "claims": receipt.claims,
        }


def _grants(employee: Employee) -> Iterator[dict[str, Any]]:
    rows = CaptureGrant.objects.filter(employee=employee).order_by("issued_at", "id")
    fields = ("id", "purpose_id", "categories", "device_id", "subject", "country", "subdivision")
    for row in rows.values(*fields, "issued_at", "expires_at", "policy_version").iterator(chunk_size=CHUNK):
        yield {
            "id": row["id"],
            "purpose": row["purpose_id"],
            "categories": row["categories"],
            "device_id": row["device_id"],
            "subject": row["subject"],
            "work_location": row["subdivision"] or row["country"],
            "issued_at": rfc3339(row["issued_at"]),
            "expires_at": rfc3339(row["expires_at"]),
            "policy_version": row["policy_version"],
        }


def _data_keys(employee: Employee) -> Iterator[dict[str, Any]]:
    """Keys that exist, then tombstones of destroyed ones: metadata only, never the (wrapped) key."""
    live = DataKey.objects.filter(employee=employee).order_by("day", "category")
    for row in live.values("id", "category", "day", "purposes", "created_at").iterator(chunk_size=CHUNK):
        yield {
            "id": row["id"],
            "category": row["category"],
            "day": row["day"].isoformat(),
            "purposes": row["purposes"],
            "status": "active",
            "created_at": rfc3339(row["created_at"]),
            "destroyed_at": None,
            "reason": None,
        }
    gone = DestroyedKey.objects.filter(employee=employee).order_by("day", "category")
    for tomb in gone.values("key_id", "category", "day", "reason", "destroyed_at").iterator(chunk_size=CHUNK):
        yield {
            "id": tomb["key_id"],
            "category": tomb["category"],
            "day": tomb["day"].isoformat(),
            "purposes": None,
            "status": "destroyed",
            "created_at": None,
            "destroyed_at": rfc3339(tomb["destroyed_at"]),
            "reason": tomb["reason"],
        }


def _rights_requests(employee: Employee) -> Iterator[dict[str, Any]]:
    for request in RightsRequest.objects.filter(employee=employee).order_by("requested_at"):
        yield {
            "id": str(request.id),
            "kind": request.kind,
            "status": request.status,
            "requested_at": rfc3339(request.requested_at),
            "completed_at": rfc3339(request.completed_at),
            "error": request.error,
        }


def _audit_entries(employee: Employee) -> Iterator[dict[str, Any]]:
    # audit_subject_at serves this.
    rows = AuditEntry.objects.filter(subject=employee.hr_id).order_by("seq")
    for entry in rows.iterator(chunk_size=CHUNK):
        yield {
            "seq": entry.seq,
            "at": rfc3339(entry.at),
            "event_type": entry.event_type,
            "actor": entry.actor,
            "object_type": entry.object_type,
            "object_id": entry.object_id,
            "region": entry.region,
            "payload": entry.payload,
            "hash": entry.hash,
        }


def sections(employee: Employee) -> list[Section]:
    """The lists of the export, in ``data.json`` order, with what the page shows of each."""
    return [
        Section(
            "consent_state",
            "Where your choices stand now",
            "For each purpose and kind of data: whether you opted in, and until when.",
            ("purpose", "category", "state", "since", "expires_at"),
            lambda: _consent_state(employee),
        ),
        Section(
            "consent_events",
            "Every choice you made",
            "Each opt-in, withdrawal and expiry, oldest first, with the notice version you were shown.",
            ("at", "kind", "purpose", "category", "notice_version", "channel"),
            lambda: _consent_events(employee),
        ),
        Section(
            "acknowledgements",
            "Monitoring notices you acknowledged",
            "Acknowledging a notice records that you were told; it never turned anything on.",
            ("at", "notice_version", "channel"),
            lambda: _acknowledgements(employee),
        ),
        Section(
            "pauses",
            "Times you paused capture",
            "Nothing was captured about you while a pause ran.",
            ("starts_at", "ends_at", "resumed_at"),
            lambda: _pauses(employee),
        ),
        Section(
            "receipts",
            "Your signed consent receipts",
            "A signed receipt for every opt-in and withdrawal. data.json holds each one in full (the signed "
            "JWS text), which anyone can verify with Consentry's public keys.",
            ("issued_at", "kind", "id"),
            lambda: _receipts(employee),
        ),
        Section(
            "capture_grants",
            "Capture permissions issued",
            "Each time a capture agent on your computer was allowed to record something, it received a "
            "short-lived permission (a grant) for exactly those kinds of data. Recordings carry the grant's id "
            "and a pseudonym instead of your name.",
            ("issued_at", "purpose", "categories", "device_id", "id"),
            lambda: _grants(employee),
        ),
        Section(
            "data_keys",
            "Encryption keys for your data",
            "Recordings of your activity are encrypted with one key per kind of data and day. Listed here: "
            "which keys exist and whether they were destroyed. The keys themselves are never included.",
            ("day", "category", "status", "destroyed_at", "id"),
            lambda: _data_keys(employee),
        ),
        Section(
            "rights_requests",
            "Your requests for a copy or erasure",
            "Including this one.",
            ("requested_at", "kind", "status", "completed_at"),
            lambda: _rights_requests(employee),
        ),
        Section(
            "audit_entries",
            "Audit log entries about you",
            "The tamper-evident log of every change that concerned you. Each entry's hash lets an auditor "
            "check it against the log.",
            ("at", "event_type", "actor", "seq"),
            lambda: _audit_entries(employee),
        ),
    ]


COLUMN_TITLES = {
    "purpose": "Purpose",
    "category": "Kind of data",
    "categories": "Kinds of data",
    "state": "State",
    "since": "Since",
    "expires_at": "Until",
    "at": "When (UTC)",
    "kind": "What",
    "notice_version": "Notice version",
    "channel": "How",
    "starts_at": "From",
    "ends_at": "Until",
    "resumed_at": "Resumed",
    "issued_at": "Issued (UTC)",
    "id": "Id",
    "device_id": "Device",
    "day": "Day",
    "status": "Status",
    "requested_at": "Asked (UTC)",
    "completed_at": "Completed (UTC)",
    "event_type": "Event",
    "actor": "By",
    "seq": "Entry",
    "destroyed_at": "Destroyed (UTC)",
}


def _labeller(columns: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """Cells for the page: slugs and event types in words, lists joined, nothing for null."""
    words = {
        "purpose": dict(Purpose.objects.values_list("slug", "name")),
        "category": dict(DataCategory.objects.values_list("slug", "name")),
        "event_type": {str(value): label for value, label in EventType.choices},
    }
    words["categories"] = words["category"]

    def cell(column: str, value: Any) -> Any:
        names = words.get(column)
        if isinstance(value, list | tuple):
            return ", ".join(str(names.get(item, item) if names else item) for item in value)
        if value is None:
            return ""
        if isinstance(value, str) and column in (
            "at",
            "since",
            "expires_at",
            "starts_at",
            "ends_at",
            "resumed_at",
            "issued_at",
            "requested_at",
            "completed_at",
        ):
            return value.replace("T", " ")[:19]
        return names.get(value, value) if names else value

    return lambda row: tuple(cell(column, row.get(column)) for column in columns)


@dataclass(frozen=True)
class ExportResult:
    counts: dict[str, int]


def write_export(
    *,
    request: RightsRequest,
    out: IO[bytes],
    on_progress: Callable[[int], None] = lambda percent: None,
    now: datetime,
) -> ExportResult:
    """Write the zip for ``request`` to ``out``; progress goes from 0 to 95 as the lists are written."""
    employee = request.employee
    parts = sections(employee)
    head = {
        "format": EXPORT_FORMAT,
        "generated_at": rfc3339(now),
        "request": {"id": str(request.id), "requested_at": rfc3339(request.requested_at)},
        "employee": _profile(employee),
    }
    for part in parts:
        part.cells = _labeller(part.columns)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("data.json", date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as data:
            data.write(orjson.dumps(head, option=orjson.OPT_INDENT_2)[:-2])
            for number, part in enumerate(parts, start=1):
                data.write(b',\n  "' + part.key.encode() + b'": [')
                for row in part.rows():
                    data.write(b"\n    " if part.count == 0 else b",\n    ")
                    data.write(orjson.dumps(row))
                    if part.count < HTML_ROWS:
                        part.shown.append(part.cells(row))
                    part.count += 1
                data.write(b"\n  ]" if part.count else b"]")
                on_progress(95 * number // len(parts))
            counts = {part.key: part.count for part in parts}
            data.write(b',\n  "counts": ' + orjson.dumps(counts) + b"\n}\n")
        page = render_to_string(
            "decisions/rights_export_index.html",
            {
                "employee": head["employee"],
                "generated_at": now,
                "request": request,
                "sections": parts,
                "html_rows": HTML_ROWS,
            },
        )
        info = zipfile.ZipInfo("index.html", date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, page.encode())
    return ExportResult(counts=counts)
