"""Consent receipts verify against the published JWKS with an independent JWS library (joserfc)."""

from __future__ import annotations

import base64
import json
import warnings

import pytest
from django.db import DatabaseError, transaction
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from rest_framework.test import APIClient

from audit.models import AuditEntry
from conftest import SYSTEM
from consent.models import Receipt
from consent.receipts import KANTARA_VERSION, RECEIPT_TYP
from consent.services import consent_grant, consent_withdraw_all
from consentry.signing import rotate_local_key

pytestmark = pytest.mark.django_db
PURPOSE = "ai_agent_training"


def published_keys() -> KeySet:
    response = APIClient().get("/.well-known/jwks.json")
    assert response.status_code == 200
    return KeySet.import_key_set(response.json())


def verify(token: str, keys: KeySet) -> tuple[dict, dict]:
    with warnings.catch_warnings():
        # joserfc flags EdDSA as superseded by the fully specified "Ed25519" name (RFC 9864).
        warnings.simplefilter("ignore")
        obj = jws.deserialize_compact(token, keys, algorithms=["EdDSA"])
    return obj.headers(), json.loads(obj.payload)


def fetch_receipt(employee, receipt_id: str) -> dict:
    client = APIClient()
    client.force_login(employee.user)
    response = client.get(f"/api/v1/me/receipts/{receipt_id}")
    assert response.status_code == 200
    return response.json()


def test_a_grant_receipt_verifies_against_the_jwks_and_says_what_was_agreed(small_policy, ny_employee, settings):
    settings.CONSENTRY_CONTROLLER_NAME = "Acme Robotics Inc."
    [event] = consent_grant(
        employee=ny_employee, notice=small_policy["notice"], choices=[(PURPOSE, "screenshots")], actor=SYSTEM
    )
    body = fetch_receipt(ny_employee, event.receipt_id)
    headers, claims = verify(body["jws"], published_keys())
    assert headers["alg"] == "EdDSA" and headers["typ"] == RECEIPT_TYP and headers["kid"]
    assert claims == body["receipt"]
    # Kantara Consent Receipt v1.1 fields.
    assert claims["version"] == KANTARA_VERSION
    assert claims["consentReceiptID"] == event.receipt_id == claims["jti"]
    assert claims["jurisdiction"] == "US-NY"
    assert claims["collectionMethod"] == "Employee portal"
    assert claims["piiPrincipalId"] == ny_employee.hr_id == claims["sub"]
    assert claims["piiControllers"][0]["piiController"] == "Acme Robotics Inc."
    assert claims["policyUrl"] == "urn:consentry:notice:1"
    [service] = claims["services"]
    [purpose] = service["purposes"]
    assert purpose["purposeCategory"] == [PURPOSE] and purpose["piiCategory"] == ["screenshots"]
    assert purpose["consentType"] == "EXPLICIT" and "withdrawn at any time" in purpose["termination"]
    assert claims["sensitive"] is True and claims["spiCat"] == ["screenshots"]
    assert claims["consentTimestamp"] == int(event.at.timestamp())
    # The ISO/IEC TS 27560 record.
    record = claims["record"]
    assert record["record_id"] == event.receipt_id
    assert record["notice"] == {
        "id": "urn:consentry:notice:1",
        "version": 1,
        "title": "Activity capture for AI training",
        "material": True,
    }
    assert record["event"]["type"] == "given" and record["event"]["valid_until"]
    assert record["processing"]["legal_basis"] == "consent"
    entry = AuditEntry.objects.get(seq=record["evidence"]["ledger_seq"])
    assert entry.hash == record["evidence"]["ledger_entry_hash"]
    assert entry.payload["receipt_id"] == event.receipt_id


def test_a_withdrawal_receipt_says_withdrawn(small_policy, ny_employee):
    consent_grant(employee=ny_employee, notice=small_policy["notice"], choices=[(PURPOSE, "keystrokes")], actor=SYSTEM)
    [event] = consent_withdraw_all(employee=ny_employee, actor=SYSTEM)
    _, claims = verify(fetch_receipt(ny_employee, event.receipt_id)["jws"], published_keys())
    assert claims["record"]["event"]["type"] == "withdrawn"
    assert claims["record"]["event"]["valid_until"] is None
    assert "withdrawn" in claims["services"][0]["purposes"][0]["termination"]


def test_a_tampered_receipt_fails_verification(small_policy, ny_employee):
    [event] = consent_grant(
        employee=ny_employee, notice=small_policy["notice"], choices=[(PURPOSE, "keystrokes")], actor=SYSTEM
    )
    token = Receipt.objects.get(pk=event.receipt_id).jws
    header, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["record"]["event"]["type"] = "withdrawn"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(BadSignatureError):
        verify(f"{header}.{forged_payload}.{signature}", published_keys())


def test_a_receipt_still_verifies_after_the_signing_key_is_rotated(small_policy, ny_employee, settings, tmp_path):
    settings.STATE_DIR = tmp_path
    (tmp_path / "secrets").mkdir()
    [event] = consent_grant(
        employee=ny_employee, notice=small_policy["notice"], choices=[(PURPOSE, "keystrokes")], actor=SYSTEM
    )
    original = settings.CONSENTRY_SIGNING_KEY
    try:
        rotate_local_key("signing")
        verify(Receipt.objects.get(pk=event.receipt_id).jws, published_keys())
    finally:
        from consentry.signing import keyring

        settings.CONSENTRY_SIGNING_KEY = original
        keyring.cache_clear()


@pytest.mark.postgres
def test_a_stored_receipt_cannot_be_changed_or_deleted(small_policy, ny_employee):
    [event] = consent_grant(
        employee=ny_employee, notice=small_policy["notice"], choices=[(PURPOSE, "keystrokes")], actor=SYSTEM
    )
    with pytest.raises(DatabaseError), transaction.atomic():
        Receipt.objects.filter(pk=event.receipt_id).update(jws="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        Receipt.objects.filter(pk=event.receipt_id).delete()
