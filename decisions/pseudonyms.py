"""Per-purpose pseudonyms: what records carry instead of an employee's HR id.

A keyed HMAC-SHA256 of (purpose, HR id) with ``CONSENTRY_PSEUDONYM_KEY``: the
same employee has a different, stable pseudonym per purpose, so data sets of
two purposes cannot be joined on it, and nobody without the key can compute
or reverse one. The mapping back to an employee goes through the stored grant.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        # Not base64: an operator-chosen passphrase; use its bytes as the key.
        return secret.encode()


def pseudonym(*, purpose: str, hr_id: str) -> str:
    """``p_`` and 32 base32 characters (160 bits) of HMAC-SHA256 over purpose and HR id."""
    message = purpose.encode() + b"\x00" + hr_id.encode()
    digest = hmac.new(_key(settings.CONSENTRY_PSEUDONYM_KEY), message, hashlib.sha256).digest()
    return "p_" + base64.b32encode(digest[:20]).decode().lower()
