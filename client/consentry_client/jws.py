"""Offline verification of grant tokens: compact JWS, EdDSA (Ed25519), keys from the server's JWKS.

The client keeps the JWKS it fetched and verifies every grant against it
without a round trip. A token signed with a key it does not know makes it
fetch the JWKS once more (the server rotated its key), at most once per
``refresh_interval``; anything else that does not verify is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consentry_client.transport import ConsentryError, Transport

JWKS_PATH = "/.well-known/jwks.json"


class InvalidToken(ConsentryError):
    """The token is malformed, signed by an unknown key, or its signature does not verify."""


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("not base64url") from exc


def _public_key(jwk: dict[str, Any]) -> Ed25519PublicKey | None:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    except (ValueError, InvalidToken):
        return None


class KeySet:
    """The server's Ed25519 verification keys by kid, fetched once and refreshed on an unknown kid."""

    def __init__(self, transport: Transport, *, refresh_interval: float = 60.0) -> None:
        self._transport = transport
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at: float | None = None
        self._refresh_interval = refresh_interval
        self._lock = threading.Lock()

    def load(self, jwks: dict[str, Any]) -> None:
        keys = {}
        for jwk in jwks.get("keys", ()):
            key = _public_key(jwk) if isinstance(jwk, dict) else None
            if key is not None and isinstance(jwk.get("kid"), str):
                keys[jwk["kid"]] = key
        with self._lock:
            self._keys = keys
            self._fetched_at = time.monotonic()

    def refresh(self) -> None:
        """Fetch the JWKS (no token needed: it is public)."""
        self.load(self._transport.get_json(JWKS_PATH, authenticated=False))

    def key(self, kid: str) -> Ed25519PublicKey | None:
        found = self._keys.get(kid)
        if found is not None:
            return found
        fetched = self._fetched_at
        if fetched is None or time.monotonic() - fetched >= self._refresh_interval:
            self.refresh()
            return self._keys.get(kid)
        return None

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a compact JWS signed with EdDSA by a key in this set; ``InvalidToken`` otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("a compact JWS has three parts")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
        except ValueError as exc:
            raise InvalidToken("header or payload is not JSON") from exc
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise InvalidToken("header and payload must be JSON objects")
        # Only EdDSA: never let the token choose a weaker algorithm ("none", HMAC).
        if header.get("alg") != "EdDSA" or "crit" in header:
            raise InvalidToken(f"unsupported JWS header {header.get('alg')!r}")
        key = self.key(str(header.get("kid", "")))
        if key is None:
            raise InvalidToken(f"unknown signing key {header.get('kid')!r}")
        try:
            key.verify(b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii"))
        except (InvalidSignature, UnicodeEncodeError) as exc:
            raise InvalidToken("the signature does not verify") from exc
        return claims
