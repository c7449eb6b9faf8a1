"""Signed consent receipts: what the employee keeps as proof of each grant and withdrawal.

A receipt is a compact JWS (EdDSA, the ``signing`` key ring published at
``/.well-known/jwks.json``), so anyone can verify it without the platform.
Its claims carry the fields of the Kantara Consent Receipt v1.1 at the top
level, under their Kantara names, so a Kantara reader finds them where it
expects, and ``record`` arranges the same facts as an ISO/IEC TS 27560
consent record: header, notice, processing, event and evidence.

The subject is the employee's HR id, not a pseudonym. The receipt is handed
only to the employee, and it must name them in a way the employer can match
without any secret: a per-purpose pseudonym would depend on a key that may
rotate, and would tie the employee's own evidence to the identifiers that
training data carries. Name and e-mail stay out (data minimisation).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings

from audit.chain import format_time
from audit.models import AuditEntry
from consent.models import Channel, ConsentEvent, ConsentEventKind, Receipt
from consentry.signing import sign_jws
from governance.models import DataCategory, Notice, Purpose
from people.models import Employee

KANTARA_VERSION = "KI-CR-v1.1.0"
RECORD_SCHEMA = "ISO/IEC TS 27560:2023"
# Explicit JWS typing (RFC 8725 §3.11): a receipt can never pass for a capture grant.
RECEIPT_TYP = "consent-receipt+jwt"
RECEIPTED_KINDS = frozenset({ConsentEventKind.GRANTED, ConsentEventKind.WITHDRAWN})
# ISO/IEC TS 27560 event types for our event kinds.
_EVENT_TYPE = {ConsentEventKind.GRANTED: "given", ConsentEventKind.WITHDRAWN: "withdrawn"}


def notice_reference(notice: Notice) -> str:
    """A stable name for one notice version (Kantara policyUrl), valid long after it is replaced."""
    return f"urn:consentry:notice:{notice.version}"


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _controller() -> dict[str, Any]:
    contact = settings.CONSENTRY_CONTROLLER_CONTACT
    return {
        "piiController": settings.CONSENTRY_CONTROLLER_NAME,
        "contact": contact,
        "email": contact if "@" in contact else "",
        "address": settings.CONSENTRY_CONTROLLER_ADDRESS,
        "phone": settings.CONSENTRY_CONTROLLER_PHONE,
    }


def _termination(event: ConsentEvent) -> str:
    if event.kind == ConsentEventKind.WITHDRAWN:
        return "Consent withdrawn at the timestamp of this receipt; data captured under it is no longer used."
    # Receipts are for grants and withdrawals, and a grant always expires (consent_grant_has_expiry).
    assert event.expires_at is not None
    return (
        f"Consent lapses on {format_time(event.expires_at)} unless renewed, and can be withdrawn at any time "
        "in the employee portal or with POST /api/v1/me/consent/withdraw-all."
    )


def receipt_claims(
    *,
    event: ConsentEvent,
    employee: Employee,
    purpose: Purpose,
    category: DataCategory,
    notice: Notice,
    ledger_entry: AuditEntry,
) -> dict[str, Any]:
    """The claims of the receipt for one consent event (pure: no queries, no clock)."""
    policy_url = notice_reference(notice)
    controller = _controller()
    sensitive = category.sensitive or category.biometric
    timestamp = _epoch(event.at)
    return {
        # RFC 7519 registered claims, so generic JWT tooling can read and check them.
        "iss": settings.CONSENTRY_ISSUER,
        "sub": employee.hr_id,
        "iat": timestamp,
        "jti": event.receipt_id,
        # Kantara Consent Receipt v1.1.
        "version": KANTARA_VERSION,
        "jurisdiction": employee.region_code,
        "consentTimestamp": timestamp,
        "collectionMethod": Channel(event.channel).label,
        "consentReceiptID": event.receipt_id,
        "language": "en",
        "piiPrincipalId": employee.hr_id,
        "piiControllers": [controller],
        "policyUrl": policy_url,
        "services": [
            {
                "service": purpose.name,
                "purposes": [
                    {
                        "purpose": purpose.description,
                        "purposeCategory": [purpose.slug],
                        "consentType": "EXPLICIT",
                        "piiCategory": [category.slug],
                        "primaryPurpose": True,
                        "termination": _termination(event),
                        # Data stays with the controller; pipelines are its own.
                        "thirdPartyDisclosure": False,
                    }
                ],
            }
        ],
        "sensitive": sensitive,
        "spiCat": [category.slug] if sensitive else [],
        # The same facts as an ISO/IEC TS 27560 consent record.
        "record": {
            "schema_version": RECORD_SCHEMA,
            "record_id": event.receipt_id,
            "pii_principal_id": employee.hr_id,
            "notice": {
                "id": policy_url,
                "version": notice.version,
                "title": notice.title,
                "material": notice.material,
            },
            "processing": {
                "controllers": [controller["piiController"]],
                "purposes": [{"id": purpose.slug, "name": purpose.name, "prohibited": purpose.prohibited}],
                "pii_categories": [
                    {"id": category.slug, "sensitive": category.sensitive, "biometric": category.biometric}
                ],
                "legal_basis": "consent",
                "jurisdiction": employee.region_code,
            },
            "event": {
                "type": _EVENT_TYPE[ConsentEventKind(event.kind)],
                "timestamp": format_time(event.at),
                "method": event.channel,
                "actor": event.actor,
                "valid_until": format_time(event.expires_at) if event.expires_at else None,
                "consent_version": event.version,
            },
            # The audit entry that records this event; the ledger's inclusion
            # proof for it ties the receipt to a signed checkpoint.
            "evidence": {"ledger_seq": ledger_entry.seq, "ledger_entry_hash": ledger_entry.hash},
        },
    }


def receipt_issue(*, event: ConsentEvent, employee: Employee, ledger_entry: AuditEntry) -> Receipt:
    """Sign and store the receipt for a grant or withdrawal.

    Called by the consent services inside the transaction that appends the
    event, so an event never exists without its receipt, nor a receipt
    without its event.
    """
    if event.kind not in RECEIPTED_KINDS:
        raise ValueError(f"no receipt is issued for {event.kind} events")
    claims = receipt_claims(
        event=event,
        employee=employee,
        purpose=event.purpose,
        category=event.category,
        notice=event.notice,
        ledger_entry=ledger_entry,
    )
    return Receipt.objects.create(
        id=event.receipt_id,
        event=event,
        employee=employee,
        kind=event.kind,
        issued_at=event.at,
        jws=sign_jws(claims, typ=RECEIPT_TYP),
        claims=claims,
        audit_seq=ledger_entry.seq,
    )
