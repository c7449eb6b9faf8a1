"""The byte strings the audit key signs: checkpoint statements and export manifests.

Plain text, not JWS, so a verifier needs only an Ed25519 implementation: a
checkpoint statement is a fixed header line then one ``name value`` line per
field, in this order, each ending in a newline. A manifest signature covers a
header line and the manifest file's exact bytes. The header lines keep a
signature made for one from passing for the other. Signatures are Ed25519,
base64url without padding; ``kid`` is the key's RFC 7638 thumbprint as in the
JWKS.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consentry.signing import b64url, keyring

CHECKPOINT_HEADER = "consentry-audit-checkpoint/v1"
MANIFEST_HEADER = b"consentry-audit-export-manifest/v1\n"
AUDIT_RING = "audit"


@dataclass(frozen=True, slots=True)
class Statement:
    """What a checkpoint signs."""

    number: int
    size: int
    root: str
    head: str
    prev_signature: str
    issued_at: str
    kid: str

    def message(self) -> bytes:
        return (
            f"{CHECKPOINT_HEADER}\n"
            f"number {self.number}\n"
            f"size {self.size}\n"
            f"root {self.root}\n"
            f"head {self.head}\n"
            f"previous {self.prev_signature or '-'}\n"
            f"time {self.issued_at}\n"
            f"kid {self.kid}\n"
        ).encode()


def current_kid() -> str:
    """The kid of the key ``sign`` uses now: it goes into what is signed."""
    return keyring(AUDIT_RING).kid


def sign(message: bytes) -> str:
    """Ed25519 signature by the audit ring's current key, base64url."""
    return b64url(keyring(AUDIT_RING).private_key.sign(message))


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signature_valid(message: bytes, signature: str, key: Ed25519PublicKey | None) -> bool:
    if key is None:
        return False
    try:
        key.verify(b64url_decode(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def audit_public_key(kid: str) -> Ed25519PublicKey | None:
    """The audit ring's key with this kid, current or retired; None if unknown."""
    return keyring(AUDIT_RING).public_key(kid)
