"""Employees' rights requests: a copy of their data (access), and erasure.

Each request is one named service that records it and its audit entry in one
transaction and hands the work to a Celery task after commit; the task calls
the service that does the work, which is safe to run again (a worker killed
mid-way, a message delivered twice).

- **Access** (GDPR Art. 15 and 20, CCPA §1798.110): ``rights_access_build``
  writes the zip of ``decisions.rights_export`` to a scratch file, stores it
  under a name fixed by the request id, and marks the request completed once.
- **Erasure** (GDPR Art. 17, CCPA §1798.105): the request itself goes on the
  ledger and on the revocation feed (``erasure``) at once, and from that
  moment every use decision denies the employee's earlier records with
  ``erasure_requested`` (``decisions.selectors.employees_for_use`` reads the
  request). ``rights_erasure_carry_out`` then withdraws every consent (so
  nothing more is captured), destroys the employee's data keys (so every copy
  of their captured data is unreadable), and deletes what Consentry may
  delete, while the evidence the law requires it to keep (consent events,
  receipts, acknowledgements, the append-only ledger) stays. What was deleted
  and what was kept, and why, is stored on the request in plain words.

A second request of the same kind while one is pending returns the pending
one (a partial unique index backs the check under races).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.access import AuditAccess
from audit.actors import Actor
from audit.models import AuditEntry, EventType
from audit.services import queue_seal, record
from consent.models import Channel, Pause
from consent.services import consent_withdraw_all
from consentry.aftercommit import after_commit
from consentry.models import IdempotencyRecord
from consentry.outbox import EmployeeRevoked, Topic, publish
from decisions.datakeys import destroy_employee_keys
from decisions.models import (
    RIGHTS_PENDING,
    CaptureGrant,
    DestroyedKey,
    DestructionReason,
    RightsKind,
    RightsRequest,
    RightsStatus,
)
from decisions.rights_export import write_export
from people.locks import employee_lock
from people.models import Employee

logger = logging.getLogger(__name__)
WORKER = Actor.system("rights")
FINISHED = (RightsStatus.COMPLETED, RightsStatus.FAILED)
STOPPED_BY_ERASURE = "Stopped because you asked for your data to be erased, which deletes copies of it too."

# Keyed by RightsKind; looked up with the plain strings a model field holds.
_REQUESTED: dict[str, EventType] = {
    RightsKind.ACCESS: EventType.RIGHTS_ACCESS_REQUESTED,
    RightsKind.ERASURE: EventType.RIGHTS_ERASURE_REQUESTED,
}
_FAILED: dict[str, EventType] = {
    RightsKind.ACCESS: EventType.RIGHTS_ACCESS_FAILED,
    RightsKind.ERASURE: EventType.RIGHTS_ERASURE_FAILED,
}


def export_name(request_id: uuid.UUID) -> str:
    return f"rights-exports/{request_id}.zip"


# Asking ------------------------------------------------------------------------------


def _request(
    *, employee: Employee, kind: str, user: Any, actor: Actor, at: datetime | None
) -> tuple[RightsRequest, bool]:
    """Record a request (or find the pending one); returns it and whether it is new."""
    if kind not in RightsKind.values:
        raise ValueError(f"unknown rights request kind {kind!r}")
    moment = at or timezone.now()
    with transaction.atomic():
        # The employee's row lock orders this against their other requests and consent changes.
        employee = employee_lock(employee_id=employee.pk)
        pending = RightsRequest.objects.filter(employee=employee, kind=kind, status__in=RIGHTS_PENDING).first()
        if pending is not None:
            return pending, False
        rights = RightsRequest.objects.create(
            employee=employee,
            kind=kind,
            requested_at=moment,
            requested_by=user if getattr(user, "pk", None) else None,
            region=employee.region_code,
            updated_at=moment,
        )
        record(
            event_type=_REQUESTED[kind],
            actor=actor,
            subject=employee.hr_id,
            object_type="rights_request",
            object_id=str(rights.id),
            region=employee.region_code,
            payload={"kind": kind},
            at=moment,
        )
        if kind == RightsKind.ERASURE:
            # Grant holders hear of it now, before any key is destroyed: every purpose, every category.
            publish(topic=Topic.ERASURE, payload=EmployeeRevoked(employee=employee.pk, at=moment))
        after_commit(_enqueue, kind, rights.id, what=f"enqueue {kind} request {rights.id}")
    return rights, True


def rights_request_access(
    *, employee: Employee, user: Any, actor: Actor, at: datetime | None = None
) -> tuple[RightsRequest, bool]:
    """An employee asks for a copy of everything Consentry holds about them; built in the background."""
    return _request(employee=employee, kind=RightsKind.ACCESS, user=user, actor=actor, at=at)


def rights_request_erasure(
    *, employee: Employee, user: Any, actor: Actor, at: datetime | None = None
) -> tuple[RightsRequest, bool]:
    """An employee asks for their data to be erased.

    From the commit on, use decisions deny their earlier records with
    ``erasure_requested`` and the feed carries ``erasure``; keys and deletable
    records go in the background (``rights_erasure_carry_out``).
    """
    return _request(employee=employee, kind=RightsKind.ERASURE, user=user, actor=actor, at=at)


def _enqueue(kind: str, request_id: uuid.UUID) -> None:
    # Imported here: tasks call services, not the other way round. A broker
    # outage leaves the request received; rights_sweep enqueues it again.
    from decisions.tasks import rights_access_build_task, rights_erasure_task

    task = rights_access_build_task if kind == RightsKind.ACCESS else rights_erasure_task
    task.delay(str(request_id))


# Access --------------------------------------------------------------------------------


def _start(request_id: uuid.UUID, moment: datetime) -> RightsRequest | None:
    """Mark the request running (another attempt); None when it is already finished."""
    with transaction.atomic():
        rights = (
            RightsRequest.objects.select_for_update(no_key=True, of=("self",))
            .select_related("employee")
            .get(pk=request_id)
        )
        if rights.status in FINISHED:
            return None
        rights.status = RightsStatus.RUNNING
        rights.attempts += 1
        rights.progress = 0
        rights.started_at = rights.updated_at = moment
        rights.save(update_fields=["status", "attempts", "progress", "started_at", "updated_at"])
    return rights


def rights_access_build(*, request_id: uuid.UUID, now: datetime | None = None) -> RightsRequest:
    """Build (or rebuild) the copy of an employee's data; safe to run again after a crash.

    The zip is written to a scratch file and stored only when complete, under
    a name fixed by the request, so a rerun replaces what a dead run left.
    Completion is marked, and audited with the zip's SHA-256, once.
    Queued ledger entries (capture grants) are sealed first, so the copy
    holds every entry about the employee committed before it was built.
    """
    moment = now or timezone.now()
    rights = _start(request_id, moment)
    if rights is None:
        return RightsRequest.objects.get(pk=request_id)
    queue_seal()

    def on_progress(percent: int) -> None:
        RightsRequest.objects.filter(pk=request_id, status=RightsStatus.RUNNING).update(
            progress=min(percent, 99), updated_at=timezone.now()
        )

    name = export_name(request_id)
    with tempfile.TemporaryFile() as scratch:
        result = write_export(request=rights, out=scratch, on_progress=on_progress, now=moment)
        byte_size = scratch.tell()
        scratch.seek(0)
        digest = hashlib.sha256()
        for block in iter(lambda: scratch.read(1 << 20), b""):
            digest.update(block)
        scratch.seek(0)
        default_storage.delete(name)
        stored = default_storage.save(name, File(scratch, name=name))
    with transaction.atomic():
        rights = (
            RightsRequest.objects.select_for_update(no_key=True, of=("self",))
            .select_related("employee")
            .get(pk=request_id)
        )
        if rights.status in FINISHED:
            # Finished meanwhile (an erasure stopped it): the copy must not outlive that.
            after_commit(default_storage.delete, stored, what=f"delete the unneeded copy {stored}")
            return rights
        rights.status = RightsStatus.COMPLETED
        rights.progress = 100
        rights.file.name = stored
        rights.sha256 = digest.hexdigest()
        rights.byte_size = byte_size
        rights.result = {"counts": result.counts}
        rights.error = ""
        rights.completed_at = rights.updated_at = timezone.now()
        rights.save()
        record(
            event_type=EventType.RIGHTS_ACCESS_COMPLETED,
            actor=WORKER,
            subject=rights.employee.hr_id,
            object_type="rights_request",
            object_id=str(rights.id),
            region=rights.region,
            payload={"sha256": rights.sha256, "bytes": byte_size, "counts": result.counts},
        )
    return rights


def rights_access_downloaded(*, rights: RightsRequest, actor: Actor) -> None:
    """The employee took their copy: evidence that the request was answered."""
    with transaction.atomic():
        record(
            event_type=EventType.RIGHTS_ACCESS_DOWNLOADED,
            actor=actor,
            subject=rights.employee.hr_id,
            object_type="rights_request",
            object_id=str(rights.id),
            region=rights.region,
            payload={"sha256": rights.sha256},
        )


def rights_request_fail(*, request_id: uuid.UUID, error: str) -> RightsRequest:
    """Give up on a request: the employee sees why, and the ledger records it."""
    with transaction.atomic():
        rights = (
            RightsRequest.objects.select_for_update(no_key=True, of=("self",))
            .select_related("employee")
            .get(pk=request_id)
        )
        if rights.status in FINISHED:
            return rights
        rights.status = RightsStatus.FAILED
        rights.error = error[:2000]
        rights.completed_at = rights.updated_at = timezone.now()
        rights.save(update_fields=["status", "error", "completed_at", "updated_at"])
        record(
            event_type=_FAILED[rights.kind],
            actor=WORKER,
            subject=rights.employee.hr_id,
            object_type="rights_request",
            object_id=str(rights.id),
            region=rights.region,
            payload={"error": rights.error},
        )
    return rights


# Erasure -------------------------------------------------------------------------------

# What an erasure does, in plain words: (key, what, why). The keys of
# ``result["deleted"]`` / ``result["retained"]`` map to these.
STOPPED = (
    (
        "consent",
        "Your consents",
        "Every opt-in you had given was withdrawn, so nothing more is captured about you. You can opt in again "
        "later if you wish; that starts afresh.",
    ),
    (
        "feed",
        "Capture agents and training pipelines",
        "They were told at once that you asked for erasure, and every use of data captured before your request "
        "is now refused with the reason 'erasure requested'.",
    ),
)
DELETED = (
    (
        "data_keys",
        "Encryption keys for your recorded activity",
        "Every key that encrypted recordings of your activity was destroyed. Every copy of those recordings, "
        "wherever it is stored, can no longer be read by anyone.",
    ),
    ("pauses", "Your capture pauses", "When you paused capture is no longer kept."),
    (
        "access_exports",
        "Copies of your data you asked for",
        "Prepared copies (zip files) were deleted; they cannot be downloaded again.",
    ),
    (
        "device_names",
        "Device names on capture permissions",
        "The names of the computers that captured your activity were removed from the permission records.",
    ),
    (
        "saved_responses",
        "Saved answers to your requests",
        "Answers kept for a day so that a repeated request is not carried out twice were deleted.",
    ),
)
RETAINED = (
    (
        "consent_events",
        "Your consent choices and signed receipts",
        "Kept as proof of what you agreed to and when you withdrew: the law requires us to be able to show "
        "consent (GDPR Art. 7(1)). They hold your choices, not your activity.",
    ),
    (
        "acknowledgements",
        "Monitoring notices you acknowledged",
        "Kept as proof that you were told about monitoring, which the law requires your employer to show "
        "(for example New York Civil Rights Law §52-c).",
    ),
    (
        "audit_entries",
        "Audit log entries about you",
        "The audit log is append-only and tamper-evident: removing entries would break its proof for everyone. "
        "The entries record what happened, including this erasure, not your activity.",
    ),
    (
        "capture_grants",
        "Capture permission records (ids, kinds of data, times, a pseudonym)",
        "Kept so that any copy of your data a training pipeline still holds is recognised as yours and refused. "
        "They hold no recorded activity.",
    ),
    (
        "data_key_records",
        "Records of the destroyed keys (no key material)",
        "Kept to prove that each key was destroyed, and when.",
    ),
    (
        "rights_requests",
        "Your requests for a copy or erasure",
        "Kept as proof that each request was answered.",
    ),
    (
        "profile",
        "Your employee record",
        "It comes from your employer's HR system, which remains responsible for it; Consentry keeps it so that "
        "the evidence above can name you. Ask HR to delete it there.",
    ),
)


def erasure_outcome(rights: RightsRequest) -> dict[str, Any]:
    """What the erasure did (or, while pending, will do), in plain words, with counts once done."""
    done = rights.status == RightsStatus.COMPLETED
    counts = rights.result if done else {}

    def items(spec: Iterable[tuple[str, str, str]], group: str, reason: str) -> list[dict[str, Any]]:
        found = counts.get(group, {})
        return [{"item": key, "what": what, reason: words, "count": found.get(key)} for key, what, words in spec]

    if done:
        summary = (
            "Your data was erased: the keys to your recorded activity were destroyed and what Consentry may delete "
            "was deleted. Evidence the law requires us to keep was retained, as listed."
        )
    elif rights.status == RightsStatus.FAILED:
        summary = (
            "The erasure could not be completed. Use of data captured before your request is still refused. "
            "Please ask again, or contact your privacy team."
        )
    else:
        summary = (
            "Your erasure request is recorded. Use of data captured before it is already refused; the keys and "
            "the records listed below are being deleted now."
        )
    return {
        "summary": summary,
        "stopped": items(STOPPED, "stopped", "detail"),
        "deleted": items(DELETED, "deleted", "detail"),
        "retained": items(RETAINED, "retained", "why"),
    }


def rights_message(rights: RightsRequest) -> str:
    """Where a request stands, in one plain sentence for the employee."""
    if rights.kind == RightsKind.ERASURE:
        return erasure_outcome(rights)["summary"]
    if rights.status == RightsStatus.RECEIVED:
        return "Your request is received; preparing your copy starts in a moment."
    if rights.status == RightsStatus.RUNNING:
        return f"Your copy is being prepared ({rights.progress}% done)."
    if rights.status == RightsStatus.FAILED:
        return f"Your copy could not be prepared. {rights.error} You can ask again."
    if rights.file:
        return "Your copy is ready to download."
    return "This copy was deleted when you asked for erasure, and can no longer be downloaded."


def rights_erasure_carry_out(*, request_id: uuid.UUID) -> RightsRequest:
    """Carry out an erasure in one transaction; a rerun after completion changes nothing.

    Consent is withdrawn through the consent service (receipts, audit,
    revocations as for a click in the portal), keys are destroyed through the
    data-key store, and the rest is deleted here. Stored files go after
    commit, once nothing can roll the deletion back.
    """
    with transaction.atomic():
        rights = (
            RightsRequest.objects.select_for_update(no_key=True, of=("self",))
            .select_related("employee")
            .get(pk=request_id)
        )
        if rights.status in FINISHED:
            return rights
        # Locks in one order, request rows and the employee before anything writes to the
        # ledger (whose head lock is held to commit): a copy finishing meanwhile holds its row,
        # then takes the head; taking the head first here could deadlock with it.
        employee = employee_lock(employee_id=rights.employee_id)
        exports = list(
            RightsRequest.objects.select_for_update()
            .filter(employee=employee, kind=RightsKind.ACCESS)
            .filter(Q(status__in=RIGHTS_PENDING) | ~Q(file=""))
            .order_by("pk")
        )
        actor = Actor.system("erasure")
        withdrawn = consent_withdraw_all(employee=employee, actor=actor, channel=Channel.SYSTEM)
        keys = destroy_employee_keys(employee=employee, reason=DestructionReason.ERASURE, actor=actor)
        pauses, _ = Pause.objects.filter(employee=employee).delete()
        # A copy still being prepared may store its zip under its fixed name: delete that too.
        files = [export.file.name for export in exports if export.file]
        files += [export_name(export.id) for export in exports if export.pending]
        now = timezone.now()
        for export in exports:
            if export.pending:
                export.status, export.error, export.completed_at = RightsStatus.FAILED, STOPPED_BY_ERASURE, now
            export.file, export.sha256, export.byte_size = "", "", None
            export.updated_at = now
            export.save(update_fields=["status", "error", "completed_at", "file", "sha256", "byte_size", "updated_at"])
        devices = CaptureGrant.objects.filter(employee=employee).exclude(device_id="").update(device_id="", token=None)
        saved = 0
        if employee.user_id is not None:
            saved, _ = IdempotencyRecord.objects.filter(caller=f"user:{employee.user_id}").delete()
        rights.result = {
            "stopped": {"consent": len(withdrawn), "feed": 1},
            "deleted": {
                "data_keys": keys,
                "pauses": pauses,
                "access_exports": len(exports),
                "device_names": devices,
                "saved_responses": saved,
            },
            "retained": {
                "consent_events": employee.consent_events.count(),
                "acknowledgements": employee.acknowledgements.count(),
                "capture_grants": employee.capture_grants.count(),
                "data_key_records": DestroyedKey.objects.filter(employee=employee).count(),
                "rights_requests": employee.rights_requests.count(),
                # The ledger's own entry for this completion comes on top.
                "audit_entries": AuditEntry.objects.filter(subject=employee.hr_id).count(),
            },
        }
        rights.status = RightsStatus.COMPLETED
        rights.progress = 100
        rights.attempts += 1
        rights.completed_at = rights.updated_at = now
        rights.save(update_fields=["result", "status", "progress", "attempts", "completed_at", "updated_at"])
        record(
            event_type=EventType.RIGHTS_ERASURE_COMPLETED,
            actor=actor,
            subject=employee.hr_id,
            object_type="rights_request",
            object_id=str(rights.id),
            region=rights.region,
            payload=rights.result,
        )
        for name in files:
            after_commit(default_storage.delete, name, what=f"delete erased file {name}")
    return rights


# Reading -------------------------------------------------------------------------------


def rights_requests_of(*, employee: Employee) -> QuerySet[RightsRequest]:
    """The employee's own requests, newest first (rights_employee_kind_at serves it)."""
    return RightsRequest.objects.filter(employee=employee).order_by("-requested_at")


def rights_request_of(*, employee: Employee, request_id: Any) -> RightsRequest | None:
    """One of the employee's own requests; None for anyone else's (or a malformed id)."""
    try:
        key = uuid.UUID(str(request_id))
    except ValueError:
        return None
    return rights_requests_of(employee=employee).filter(pk=key).first()


def rights_requests_visible(*, user: Any, access: AuditAccess) -> QuerySet[RightsRequest]:
    """Requests a staff member may see: HR administrators all, auditors those of the regions they cover.

    An auditor's scope is the one of the audit ledger (``audit.access``), applied to the
    work location the employee had when asking. Nobody else sees anyone's requests.
    """
    requests = RightsRequest.objects.select_related("employee").order_by("-requested_at")
    if user.has_perm("people.view_employee"):
        return requests
    if access.can_audit:
        return requests.filter(access.entries())
    return requests.none()
