"""Ed25519 signing keys, compact JWS (EdDSA) and the published JWKS.

Two key rings: ``signing`` (capture grants, consent receipts) and ``audit``
(checkpoints and export manifests). Each ring has one current private key
and any number of retired public keys. Retired keys stay in the JWKS for
good: receipts are evidence years later, so the key that signed one must
remain verifiable after rotation. Key ids are RFC 7638 thumbprints.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from consentry.env import env_raw
from consentry.localstate import ed25519_pem

RINGS = {"signing": "CONSENTRY_SIGNING_KEY", "audit": "CONSENTRY_AUDIT_SIGNING_KEY"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 of the required members in lexicographic order."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw_public_bytes(key))}
    return b64url(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def public_jwk(key: Ed25519PublicKey, *, use: str = "sig") -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(raw_public_bytes(key)),
        "kid": thumbprint(key),
        "alg": "EdDSA",
        "use": use,
    }


@dataclass(frozen=True)
class KeyRing:
    name: str
    private_key: Ed25519PrivateKey
    retired: tuple[Ed25519PublicKey, ...]

    @property
    def kid(self) -> str:
        return thumbprint(self.private_key.public_key())

    def public_keys(self) -> list[Ed25519PublicKey]:
        return [self.private_key.public_key(), *self.retired]

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        return next((key for key in self.public_keys() if thumbprint(key) == kid), None)


def _retired_file(ring: str) -> Path:
    return Path(settings.STATE_DIR) / "secrets" / f"{RINGS[ring].lower()}_retired.pem"


def _load_public_pems(text: str) -> tuple[Ed25519PublicKey, ...]:
    keys = []
    for block in text.split("-----END PUBLIC KEY-----"):
        if "-----BEGIN PUBLIC KEY-----" in block:
            key = serialization.load_pem_public_key((block.strip() + "\n-----END PUBLIC KEY-----\n").encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("retired signing keys must be Ed25519 public keys")
            keys.append(key)
    return tuple(keys)


@lru_cache(maxsize=4)
def keyring(ring: str = "signing") -> KeyRing:
    """The ring's keys: current from settings, retired from ``<NAME>_RETIRED`` and local state."""
    pem = getattr(settings, RINGS[ring])
    private_key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValueError(f"{RINGS[ring]} must be an Ed25519 private key")
    retired_text = env_raw(f"{RINGS[ring]}_RETIRED") or ""
    local = _retired_file(ring)
    if local.exists():
        retired_text += "\n" + local.read_text()
    return KeyRing(name=ring, private_key=private_key, retired=_load_public_pems(retired_text))


def sign_jws(claims: dict[str, Any], *, ring: str = "signing", typ: str = "JWT") -> str:
    """Compact JWS over ``claims`` with the ring's current key (alg EdDSA, kid set)."""
    keys = keyring(ring)
    return jwt.encode(claims, keys.private_key, algorithm="EdDSA", headers={"kid": keys.kid, "typ": typ})


def verify_jws(token: str, *, ring: str = "signing", **options: Any) -> dict[str, Any]:
    """Verify a JWS made by ``sign_jws`` (current or retired key); raises jwt.InvalidTokenError."""
    kid = jwt.get_unverified_header(token).get("kid", "")
    key = keyring(ring).public_key(kid)
    if key is None:
        raise jwt.InvalidSignatureError(f"unknown signing key {kid!r}")
    return jwt.decode(token, key, algorithms=["EdDSA"], **options)


def jwks() -> dict[str, list[dict[str, str]]]:
    """Every public key a verifier may need: grants, receipts, audit checkpoints."""
    keys: list[dict[str, str]] = []
    for ring in RINGS:
        keys.extend(public_jwk(key) for key in keyring(ring).public_keys())
    return {"keys": keys}


def rotate_local_key(ring: str = "signing") -> str:
    """Retire the ring's locally generated key and make a new one; returns the new kid.

    Only for keys kept in the local state folder: deployments that pass keys
    through the environment rotate by setting the new key and appending the
    old public key to ``<NAME>_RETIRED``.
    """
    if env_raw(RINGS[ring]):
        raise RuntimeError(f"{RINGS[ring]} comes from the environment; rotate it there.")
    path = Path(settings.STATE_DIR) / "secrets" / RINGS[ring].lower()
    old = keyring(ring).private_key.public_key()
    with _retired_file(ring).open("a") as handle:
        handle.write(
            old.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        )
    new_pem = ed25519_pem()
    path.write_text(new_pem)
    setattr(settings, RINGS[ring], new_pem)
    keyring.cache_clear()
    return keyring(ring).kid
