"""A receipt carries the ledger's proof of its audit entry, and the standalone verifier checks it all offline."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from consentry_client import verify as standalone
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rest_framework.test import APIClient

from audit.models import AuditCheckpoint
from audit.services import checkpoint_create
from audit.statements import Statement
from audit.tasks import checkpoint_tick
from conftest import SYSTEM
from consent.services import consent_grant, consent_withdraw
from consentry.signing import jwks, public_jwk, thumbprint

pytestmark = pytest.mark.django_db
PURPOSE = "ai_agent_training"


@pytest.fixture
def withdrawal(small_policy, ny_employee):
    """A grant then its withdrawal; returns (grant event, withdrawal event)."""
    [grant] = consent_grant(
        employee=ny_employee, notice=small_policy["notice"], choices=[(PURPOSE, "screenshots")], actor=SYSTEM
    )
    [withdrawn] = consent_withdraw(employee=ny_employee, purpose=PURPOSE, categories=["screenshots"], actor=SYSTEM)
    return grant, withdrawn


def download(employee, receipt_id: str) -> dict:
    """The receipt file exactly as the portal's history page offers it."""
    client = APIClient()
    client.force_login(employee.user)
    response = client.get(f"/portal/receipts/{receipt_id}")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    return json.loads(response.content)


def run_cli(tmp_path, document: dict, keys: dict | None = None) -> int:
    receipt_file, keys_file = tmp_path / "receipt.json", tmp_path / "jwks.json"
    receipt_file.write_text(json.dumps(document))
    keys_file.write_text(json.dumps(keys or jwks()))
    return standalone.main(["receipt", str(receipt_file), "--jwks", str(keys_file)])


def history_page(employee) -> str:
    client = APIClient()
    client.force_login(employee.user)
    response = client.get("/portal/history/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_withdrawal_receipt_proves_offline_that_the_withdrawal_is_in_the_signed_ledger(
    withdrawal, ny_employee, tmp_path, capsys
):
    _, withdrawn = withdrawal
    checkpoint = checkpoint_create()
    assert checkpoint is not None
    document = download(ny_employee, withdrawn.receipt_id)
    assert document["inclusion_status"] == "proven"
    inclusion = document["inclusion"]
    evidence = document["receipt"]["record"]["evidence"]
    assert inclusion["entry_hash"] == evidence["ledger_entry_hash"]
    assert inclusion["leaf_index"] == evidence["ledger_seq"] - 1
    assert inclusion["checkpoint"]["number"] == checkpoint.number and inclusion["audit_path"]
    assert inclusion["entry"]["event_type"] == "consent.withdrawn"

    result = standalone.verify_receipt(document, jwks=jwks())
    assert result.ok and not result.pending, result.findings
    assert run_cli(tmp_path, document) == 0
    out = capsys.readouterr().out
    assert "OK: receipt verified and proven in the ledger" in out
    assert f"receipt {withdrawn.receipt_id} is signed" in out and "consent withdrawn for screenshots" in out
    assert f"checkpoint #{checkpoint.number}" in out


def test_the_api_serves_the_same_proof_as_the_download(withdrawal, ny_employee):
    _, withdrawn = withdrawal
    checkpoint_create()
    client = APIClient()
    client.force_login(ny_employee.user)
    body = client.get(f"/api/v1/me/receipts/{withdrawn.receipt_id}").json()
    assert body == download(ny_employee, withdrawn.receipt_id)
    assert standalone.verify_receipt(body, jwks=jwks()).ok


def test_a_receipt_before_any_checkpoint_is_pending_then_proven_after_one(
    withdrawal, ny_employee, tmp_path, capsys, settings
):
    settings.CONSENTRY_CHECKPOINT_POLL_SECONDS = 30
    _, withdrawn = withdrawal
    document = download(ny_employee, withdrawn.receipt_id)
    assert document["inclusion"] is None and document["inclusion_status"] == "pending"
    assert document["inclusion_detail"].startswith("pending: the next checkpoint is due by ")
    assert "Proof pending" in history_page(ny_employee)

    result = standalone.verify_receipt(document, jwks=jwks())
    assert result.ok and result.pending.startswith("pending:")
    assert run_cli(tmp_path, document) == 3
    assert "NOT YET PROVEN: pending: the next checkpoint is due by" in capsys.readouterr().out

    # A consent change makes the very next beat tick sign a checkpoint.
    assert checkpoint_tick() == 1
    document = download(ny_employee, withdrawn.receipt_id)
    assert document["inclusion_status"] == "proven"
    assert run_cli(tmp_path, document) == 0
    page = history_page(ny_employee)
    assert "Proven: the download includes the proof" in page and "Proof pending" not in page


def test_the_history_page_costs_one_more_query_whatever_the_number_of_receipts(
    withdrawal, ny_employee, django_assert_max_num_queries
):
    checkpoint_create()
    client = APIClient()
    client.force_login(ny_employee.user)
    client.get("/portal/history/")
    with django_assert_max_num_queries(14):
        assert client.get("/portal/history/").status_code == 200


def _proven(withdrawal, employee) -> dict:
    checkpoint_create()
    return download(employee, withdrawal[1].receipt_id)


def _fails(document: dict, tmp_path, keys: dict | None = None) -> str:
    result = standalone.verify_receipt(document, jwks=keys or jwks())
    assert not result.ok
    assert run_cli(tmp_path, document, keys) == 1
    return str(result.findings[0])


def test_a_tampered_audit_path_fails(withdrawal, ny_employee, tmp_path):
    document = _proven(withdrawal, ny_employee)
    path = document["inclusion"]["audit_path"]
    path[0] = ("0" if path[0][0] != "0" else "1") + path[0][1:]
    assert "audit path does not lead to checkpoint" in _fails(document, tmp_path)


def test_a_wrong_leaf_fails(withdrawal, ny_employee, tmp_path):
    document = _proven(withdrawal, ny_employee)
    document["inclusion"]["leaf_index"] -= 1
    assert "not this entry's leaf" in _fails(document, tmp_path)


def test_a_checkpoint_signed_by_another_key_fails(withdrawal, ny_employee, tmp_path):
    document = _proven(withdrawal, ny_employee)
    forger = Ed25519PrivateKey.generate()
    checkpoint = document["inclusion"]["checkpoint"]
    for kid in (checkpoint["kid"], thumbprint(forger.public_key())):
        checkpoint["kid"] = kid
        fields = {name: checkpoint[name] for name in ("number", "size", "root", "head", "prev_signature", "issued_at")}
        message = Statement(**fields, kid=kid).message()
        checkpoint["signature"] = base64.urlsafe_b64encode(forger.sign(message)).rstrip(b"=").decode()
        assert "checkpoint #" in _fails(document, tmp_path)


def test_a_receipt_whose_entry_is_not_the_proven_leaf_fails(withdrawal, ny_employee, tmp_path):
    grant, withdrawn = withdrawal
    checkpoint_create()
    grant_document = download(ny_employee, grant.receipt_id)
    document = download(ny_employee, withdrawn.receipt_id)
    # A valid proof, of another entry (the grant's), beside the withdrawal's receipt.
    document["inclusion"] = grant_document["inclusion"]
    assert standalone.verify_proof(document["inclusion"], jwks=jwks()).ok
    assert "the proven leaf is not the receipt's audit entry" in _fails(document, tmp_path)


def test_a_receipt_signed_by_another_key_or_with_edited_claims_fails(withdrawal, ny_employee, tmp_path):
    document = _proven(withdrawal, ny_employee)
    edited = copy.deepcopy(document)
    edited["receipt"]["record"]["event"]["type"] = "given"
    assert "differ from the signed ones" in _fails(edited, tmp_path)
    header, claims, signature = document["jws"].split(".")
    forged = copy.deepcopy(document)
    forged["jws"] = f"{header}.{claims}.{signature[::-1]}"
    assert "signature does not verify" in _fails(forged, tmp_path)
    other_keys = {"keys": [public_jwk(Ed25519PrivateKey.generate().public_key())]}
    assert "unknown key" in _fails(document, tmp_path, other_keys)


def test_a_later_checkpoint_still_proves_an_old_receipt(withdrawal, ny_employee, small_policy):
    _, withdrawn = withdrawal
    checkpoint_create()
    consent_grant(employee=ny_employee, notice=small_policy["notice"], choices=[(PURPOSE, "screenshots")], actor=SYSTEM)
    checkpoint_create()
    document = download(ny_employee, withdrawn.receipt_id)
    assert document["inclusion"]["checkpoint"]["number"] == AuditCheckpoint.objects.count() == 2
    assert standalone.verify_receipt(document, jwks=jwks()).ok
