"""Consentry client: the capture gate for agents, the usage gate for pipelines, and a reference agent.

    from consentry_client import CaptureGate, Context, UsageGate

    gate = CaptureGate("https://consentry.example.com", device_token, device_id="laptop-7",
                       purpose="ai_agent_training", categories=["keystrokes", "mouse_movement"]).start()
    if grant := gate.allows("keystrokes", Context(app="com.microsoft.VSCode")):
        ...  # capture, and stamp the record with grant.id and grant.subject

    usage = UsageGate("https://consentry.example.com", pipeline_token, purpose="ai_agent_training")
    usable = list(usage.filter(records))

``consentry_client.crypto`` encrypts records with the data keys grants carry
(the agent does it before anything reaches its spool); ``UsageGate.decrypt``
opens the ones a pipeline may use with the keys the use decision releases.

``consentry_client.verify`` checks audit export bundles and inclusion proofs
offline, with nothing but ``cryptography`` and the audit public keys.

Every error, timeout or doubt is a *deny*. No Django, no server code: only the
standard library and ``cryptography``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from consentry_client.capture import NO_CONTEXT, CaptureGate, Context, GateStatus, Grant, GrantRefused
from consentry_client.crypto import (
    DataKey,
    MalformedEnvelope,
    NonceSequence,
    RecordCryptoError,
    RecordTampered,
    WrongKey,
    decrypt_record,
    encrypt_record,
)
from consentry_client.jws import InvalidToken, KeySet
from consentry_client.transport import ApiError, ConsentryError, Transport, TransportError
from consentry_client.usage import Reason, UsageGate, UsageGateError, UsageSummary, UseResult

__all__ = [
    "NO_CONTEXT",
    "ApiError",
    "CaptureGate",
    "ConsentryError",
    "Context",
    "DataKey",
    "GateStatus",
    "Grant",
    "GrantRefused",
    "InvalidToken",
    "KeySet",
    "MalformedEnvelope",
    "NonceSequence",
    "Reason",
    "RecordCryptoError",
    "RecordTampered",
    "Transport",
    "TransportError",
    "UsageGate",
    "UsageGateError",
    "UsageSummary",
    "UseResult",
    "WrongKey",
    "decrypt_record",
    "encrypt_record",
]
