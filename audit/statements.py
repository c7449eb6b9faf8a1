"""The byte strings the audit key signs: checkpoint statements and export manifests.

Plain text, not JWS, so a verifier needs only an Ed25519 implementation: a
checkpoint statement is a fixed header line then one ``name value`` line per
field, in this order, each ending in a newline. A manifest signature covers a
header line and the manifest file's exact bytes. The header lines keep a
signature made for one from passing for the other. Signatures are Ed25519,
base64url without padding; ``kid`` is the key's RFC 7638 thumbprint as in the
JWKS. Both formats, and checking a signature, are the standalone verifier's
(``consentry_client.verify``), so what the server signs is by definition
what auditors check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from consentry_client.verify import MANIFEST_TAG as MANIFEST_HEADER
from consentry_client.verify import checkpoint_statement, signature_valid
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consentry.signing import b64url, keyring, public_jwk, thumbprint

AUDIT_RING = "audit"

__all__ = (
    "AUDIT_RING",
    "MANIFEST_HEADER",
    "Statement",
    "audit_jwks",
    "audit_public_key",
    "audit_public_keys",
    "current_kid",
    "sign",
    "signature_valid",
)


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
        return checkpoint_statement(**asdict(self))


def current_kid() -> str:
    """The kid of the key ``sign`` uses now: it goes into what is signed."""
    return keyring(AUDIT_RING).kid


def sign(message: bytes) -> str:
    """Ed25519 signature by the audit ring's current key, base64url."""
    return b64url(keyring(AUDIT_RING).private_key.sign(message))


def audit_public_key(kid: str) -> Ed25519PublicKey | None:
    """The audit ring's key with this kid, current or retired; None if unknown."""
    return keyring(AUDIT_RING).public_key(kid)


def audit_public_keys() -> dict[str, Ed25519PublicKey]:
    """Every audit key, current and retired, by kid: the only keys a ledger or bundle is checked against."""
    return {thumbprint(key): key for key in keyring(AUDIT_RING).public_keys()}


def audit_jwks() -> dict[str, list[dict[str, str]]]:
    """The audit keys as a JWKS, as the standalone verifier takes pinned keys."""
    return {"keys": [public_jwk(key) for key in keyring(AUDIT_RING).public_keys()]}
