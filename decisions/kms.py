"""Key encryption keys: how data keys are wrapped at rest (envelope encryption).

A data key is stored only wrapped under a master key (the key encryption key,
KEK). ``KeyEncryptionKey`` is the whole interface the rest of the project
uses: wrap a data key, unwrap it again, and name the master version that
wrapped it. ``CONSENTRY_KEK_CLASS`` names the implementation, so a cloud KMS
(AWS KMS, Google Cloud KMS, Vault transit) can replace the local one without
touching anything else.

``LocalKeyEncryptionKey`` wraps with AES-256-GCM under a master key from the
environment (``CONSENTRY_MASTER_KEY`` or ``CONSENTRY_MASTER_KEY_FILE``) or,
locally, generated once into the state folder like the other secrets. The
data key's id is the associated data: a wrapped key copied onto another key's
row does not unwrap. A master version is a fingerprint of the master key, so
versions need no bookkeeping; keys retired by a rotation stay readable from
``CONSENTRY_MASTER_KEY_PREVIOUS`` (or the local keyring folder) until every
data key has been re-wrapped (``manage.py rotate_master_key``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

DATA_KEY_BYTES = 32
NONCE_BYTES = 12
# Where the local implementation keeps master keys a rotation retired.
KEYRING_FOLDER = "master_keys_previous"
CURRENT_FILE = "consentry_master_key"


class UnwrapError(Exception):
    """A wrapped key that does not open: unknown master version, tampered bytes, or another key's row."""


@runtime_checkable
class KeyEncryptionKey(Protocol):
    """Wraps and unwraps data keys; what a cloud KMS implements to replace the local master key."""

    @property
    def version(self) -> str:
        """The master version new wraps use."""
        ...

    def wrap(self, key: bytes, *, key_id: str) -> bytes:
        """``key`` encrypted under the current master version, bound to ``key_id``."""
        ...

    def unwrap(self, wrapped: bytes | memoryview, *, key_id: str, version: str) -> bytes:
        """The data key back, from what ``wrap`` returned under master ``version``; UnwrapError otherwise."""
        ...


def decode_master_key(text: str, *, name: str = "CONSENTRY_MASTER_KEY") -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured(f"{name} is not base64") from exc
    if len(raw) != DATA_KEY_BYTES:
        raise ImproperlyConfigured(f"{name} must be {DATA_KEY_BYTES} bytes (base64 of 32 random bytes)")
    return raw


def master_version(master: bytes) -> str:
    """A public name for a master key: a domain-separated hash, never the key itself."""
    return "m_" + hashlib.sha256(b"consentry.master-key.v1\0" + master).hexdigest()[:16]


class LocalKeyEncryptionKey:
    """AES-256-GCM under a master key held by this process (see the module docstring)."""

    def __init__(self, current: bytes | None = None, previous: list[bytes] | None = None):
        if current is None:
            current = decode_master_key(settings.CONSENTRY_MASTER_KEY)
            previous = [*(previous or []), *previous_master_keys()]
        self._current = current
        self._version = master_version(current)
        self._keys = {master_version(key): key for key in previous or ()}
        self._keys[self._version] = current

    @property
    def version(self) -> str:
        return self._version

    def versions(self) -> set[str]:
        return set(self._keys)

    def wrap(self, key: bytes, *, key_id: str) -> bytes:
        if len(key) != DATA_KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(self._current).encrypt(nonce, key, key_id.encode())

    def unwrap(self, wrapped: bytes | memoryview, *, key_id: str, version: str) -> bytes:
        master = self._keys.get(version)
        if master is None:
            # Another process may have rotated since this one started: look at the keyring again.
            self._keys.update({master_version(key): key for key in previous_master_keys()})
            master = self._keys.get(version)
        if master is None:
            raise UnwrapError(f"master key version {version} is not available")
        wrapped = bytes(wrapped)
        try:
            return AESGCM(master).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], key_id.encode())
        except InvalidTag as exc:
            raise UnwrapError(f"data key {key_id} does not unwrap under {version}") from exc


def keyring_dir() -> Path:
    return Path(settings.STATE_DIR) / "secrets" / KEYRING_FOLDER


def previous_master_keys() -> list[bytes]:
    """Retired master keys: from CONSENTRY_MASTER_KEY_PREVIOUS, then from the local keyring folder."""
    keys = [
        decode_master_key(text, name="CONSENTRY_MASTER_KEY_PREVIOUS")
        for text in getattr(settings, "CONSENTRY_MASTER_KEY_PREVIOUS", [])
    ]
    folder = keyring_dir()
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            keys.append(decode_master_key(path.read_text(), name=str(path)))
    return keys


def retire_local_master_key(old: bytes) -> None:
    """Keep a master key a local rotation replaced, so data keys still wrapped under it stay readable."""
    folder = keyring_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / master_version(old)
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(old).decode())


def install_local_master_key(new: bytes) -> None:
    """Make ``new`` the local current master key (state folder), replacing the file atomically."""
    path = Path(settings.STATE_DIR) / "secrets" / CURRENT_FILE
    temporary = path.with_suffix(".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(new).decode())
    os.replace(temporary, path)


@cache
def key_encryption_key() -> KeyEncryptionKey:
    """The configured KEK, built once per process (``CONSENTRY_KEK_CLASS``)."""
    kek = import_string(settings.CONSENTRY_KEK_CLASS)()
    if not isinstance(kek, KeyEncryptionKey):
        raise ImproperlyConfigured(f"{settings.CONSENTRY_KEK_CLASS} does not implement KeyEncryptionKey")
    return kek
