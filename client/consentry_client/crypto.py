"""Record encryption with the data keys Consentry issues: AES-256-GCM, one envelope per record.

A data key exists per employee × category × UTC day. The capture agent gets
it in the capture grant (``grant.data_keys[category]``) and encrypts every
record with it before the record touches the disk; a pipeline gets it back
only for the records the use decision allows (``release_keys``). Destroying
the key on the server (withdrawal, erasure, retention) makes every copy of
those records unreadable.

The envelope (``v`` 1) is one JSON object. The metadata the use decision
needs stays readable; everything else is in ``ciphertext``::

    {"v": 1, "id": "r_…", "subject": "p_…", "purpose": "ai_agent_training",
     "category": "keystrokes", "captured_at": "2026-11-20T14:02:11.123Z",
     "grant_id": "g_…", "key_id": "k_…",
     "nonce": "<standard base64, 12 bytes>",
     "ciphertext": "<standard base64: AES-256-GCM of the body, then the 16-byte tag>"}

The body is the record without its metadata (for the agent, ``{"data": …}``)
as compact JSON. The associated data binds the ciphertext to the envelope:
the canonical JSON array ``["consentry-record", v, key_id, id, subject,
purpose, category, captured_at, grant_id]`` (``captured_at`` normalised to
UTC with microseconds, ``purpose`` null when absent). A ciphertext moved onto
another record, or a record whose id, subject, category, time or grant was
changed, fails to decrypt with ``RecordTampered``; so does a wrong key.

Blobs (screenshots) are encrypted the same way into a small binary format,
see ``encrypt_blob``.

Nonces: see ``NonceSequence``. Every encryption in this process draws from
one sequence, so no two encryptions in a process ever share a nonce, whatever
the key.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from consentry_client.transport import ConsentryError

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
RECORD_TAG = "consentry-record"
BLOB_TAG = "consentry-blob"
BLOB_MAGIC = b"CSB"
# The fields kept readable in the envelope, all bound into the associated data.
METADATA = ("id", "subject", "purpose", "category", "captured_at", "grant_id")
ENVELOPE_FIELDS = ("v", *METADATA, "key_id", "nonce", "ciphertext")
_REQUIRED = ("id", "subject", "category", "captured_at", "grant_id")


class RecordCryptoError(ConsentryError):
    """A record could not be encrypted or decrypted: never use it."""


class MalformedEnvelope(RecordCryptoError, ValueError):
    """Not a Consentry record envelope this client can read (a field missing or wrong, bad base64, a version)."""


class RecordTampered(RecordCryptoError):
    """Authentication failed: the ciphertext, its metadata or the key is not the one it was sealed with."""


class WrongKey(RecordCryptoError):
    """The key offered is not the one the envelope names."""


class NonceExhausted(RecordCryptoError):
    """This process has used up its nonce counter (2^63 encryptions at least): restart it."""


@dataclass(frozen=True, slots=True)
class DataKey:
    """One AES-256 data key and its id. Held in memory only; the key never appears in a repr."""

    key_id: str
    secret: bytes = field(repr=False)
    _aead: AESGCM = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not 0 < len(self.key_id) <= 255:
            raise ValueError("a data key id must be a string of 1 to 255 characters")
        if not isinstance(self.secret, bytes) or len(self.secret) != KEY_BYTES:
            raise ValueError(f"a data key must be {KEY_BYTES} bytes (AES-256)")
        object.__setattr__(self, "_aead", AESGCM(self.secret))

    @classmethod
    def from_wire(cls, key_id: str, key: str) -> DataKey:
        """A key as API.md sends it: standard base64 of 32 bytes."""
        return cls(key_id, _b64decode(key, "key"))


class NonceSequence:
    """96-bit GCM nonces that never repeat in this process: a 32-bit prefix and a 64-bit counter.

    The prefix is random, drawn when the sequence starts (and again in a child
    after ``fork``, so parent and child never share a sequence). The counter
    starts at a random value below 2^63 and goes up by one per nonce, across
    every key; the sequence refuses to go past 2^64 (``NonceExhausted``), so
    at least 2^63 nonces are available and none repeats. Within a process a
    (key, nonce) pair therefore repeats never: by construction, not by chance.

    Across processes that share a key (agent restarts in a day, an employee's
    second laptop), two sequences collide only if both their prefixes are
    equal and their counter windows overlap. For ``m`` processes each
    encrypting at most ``n`` records under one key, the chance of any repeat
    is below m² · n / 2^95: for a thousand processes of four billion records
    each, about 10^-13. Data keys last one day, which keeps ``m`` and ``n`` small.
    """

    _live: weakref.WeakSet[NonceSequence] = weakref.WeakSet()

    def __init__(self) -> None:
        self._restart()
        NonceSequence._live.add(self)

    def _restart(self) -> None:
        # A new lock too: in a child after fork, another thread may have held the old one.
        self._prefix = secrets.randbits(32).to_bytes(4, "big")
        self._counter = secrets.randbits(63)
        self._lock = threading.Lock()

    def next(self) -> bytes:
        with self._lock:
            value = self._counter
            if value >= 1 << 64:
                raise NonceExhausted("the nonce counter is used up")
            self._counter = value + 1
        return self._prefix + value.to_bytes(8, "big")

    @classmethod
    def _after_fork(cls) -> None:
        for sequence in list(cls._live):
            sequence._restart()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=NonceSequence._after_fork)

NONCES = NonceSequence()


def seal(
    key: DataKey, plaintext: bytes, associated: bytes, *, nonces: NonceSequence | None = None
) -> tuple[bytes, bytes]:
    """AES-256-GCM with the next nonce of ``nonces`` (the process's sequence by default): (nonce, ciphertext+tag)."""
    nonce = (nonces or NONCES).next()
    return nonce, key._aead.encrypt(nonce, plaintext, associated)


def unseal(key: DataKey, nonce: bytes, ciphertext: bytes, associated: bytes) -> bytes:
    try:
        return key._aead.decrypt(nonce, ciphertext, associated)
    except InvalidTag:
        raise RecordTampered("the record does not authenticate: wrong key, or ciphertext or metadata altered") from None


# Records ------------------------------------------------------------------------------------


def encrypt_record(record: Mapping[str, Any], key: DataKey, *, nonces: NonceSequence | None = None) -> dict[str, Any]:
    """The envelope for ``record`` (a dict with id, subject, category, captured_at, grant_id, and its data)."""
    missing = [name for name in _REQUIRED if not isinstance(record.get(name), str) or not record.get(name)]
    if missing:
        raise ValueError(f"a record needs {', '.join(missing)} (non-empty strings) to be encrypted")
    metadata = {name: record.get(name) for name in METADATA}
    body = {name: value for name, value in record.items() if name not in METADATA}
    plaintext = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    nonce, ciphertext = seal(key, plaintext, _record_aad(VERSION, key.key_id, metadata), nonces=nonces)
    return {
        "v": VERSION,
        **metadata,
        "key_id": key.key_id,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }


@dataclass(frozen=True, slots=True)
class Envelope:
    """A checked envelope: metadata, key id, the raw nonce and ciphertext, and the associated data they bind."""

    metadata: Mapping[str, Any]
    key_id: str
    nonce: bytes
    ciphertext: bytes
    associated: bytes = field(repr=False)

    @property
    def id(self) -> str:
        ident: str = self.metadata["id"]
        return ident


def parse_envelope(envelope: Any) -> Envelope:
    """Check an envelope's shape, version and encodings; ``MalformedEnvelope`` says what is wrong."""
    if not isinstance(envelope, Mapping):
        raise MalformedEnvelope("a record envelope must be a JSON object")
    version = envelope.get("v")
    if version is None:
        raise MalformedEnvelope("not an encrypted record (no 'v'): plaintext records are not accepted")
    if version != VERSION or isinstance(version, bool):
        raise MalformedEnvelope(f"envelope version {version!r} is not supported (this client reads {VERSION})")
    # captured_at may have become a datetime on the way (a DataFrame): checked below.
    texts = ("id", "subject", "category", "grant_id", "key_id")
    wrong = [name for name in texts if not isinstance(envelope.get(name), str) or not envelope[name]]
    if envelope.get("purpose") is not None and not isinstance(envelope["purpose"], str):
        wrong.append("purpose")
    if wrong:
        raise MalformedEnvelope(f"envelope fields missing or not strings: {', '.join(wrong)}")
    nonce = _b64decode(envelope.get("nonce"), "nonce", MalformedEnvelope)
    if len(nonce) != NONCE_BYTES:
        raise MalformedEnvelope(f"the nonce must be {NONCE_BYTES} bytes, not {len(nonce)}")
    ciphertext = _b64decode(envelope.get("ciphertext"), "ciphertext", MalformedEnvelope)
    if len(ciphertext) < TAG_BYTES:
        raise MalformedEnvelope("the ciphertext is shorter than its authentication tag: truncated")
    metadata = {name: envelope.get(name) for name in METADATA}
    try:
        associated = _record_aad(VERSION, envelope["key_id"], metadata)
    except ValueError as exc:  # captured_at
        raise MalformedEnvelope(str(exc)) from None
    return Envelope(metadata, envelope["key_id"], nonce, ciphertext, associated)


def decrypt_record(envelope: Mapping[str, Any] | Envelope, key: DataKey) -> dict[str, Any]:
    """The plaintext record (metadata and body), or ``MalformedEnvelope`` / ``WrongKey`` / ``RecordTampered``."""
    checked = envelope if isinstance(envelope, Envelope) else parse_envelope(envelope)
    if checked.key_id != key.key_id:
        raise WrongKey(f"the record is sealed with {checked.key_id}, not {key.key_id}")
    plaintext = unseal(key, checked.nonce, checked.ciphertext, checked.associated)
    body = json.loads(plaintext)
    return {**{name: value for name, value in checked.metadata.items() if value is not None}, **body}


def _record_aad(version: int, key_id: str, metadata: Mapping[str, Any]) -> bytes:
    values = [RECORD_TAG, version, key_id]
    values += [metadata["id"], metadata["subject"], metadata.get("purpose"), metadata["category"]]
    values += [_canonical_time(metadata["captured_at"]), metadata["grant_id"]]
    return _canonical(values)


# Blobs --------------------------------------------------------------------------------------


def encrypt_blob(
    data: bytes, key: DataKey, *, record_id: str, subject: str, category: str, nonces: NonceSequence | None = None
) -> bytes:
    """A blob's encrypted form: ``b"CSB"``, version byte, key id length byte, key id, nonce, ciphertext+tag.

    The associated data binds it to its record (``["consentry-blob", v,
    key_id, record_id, subject, category]``): a blob swapped for another
    record's fails to decrypt.
    """
    kid = key.key_id.encode()
    nonce, ciphertext = seal(key, data, _blob_aad(key.key_id, record_id, subject, category), nonces=nonces)
    return BLOB_MAGIC + bytes([VERSION, len(kid)]) + kid + nonce + ciphertext


def blob_key_id(blob: bytes) -> str:
    """The id of the key a blob is sealed with (``MalformedEnvelope`` if it is no Consentry blob)."""
    return _split_blob(blob)[0]


def decrypt_blob(blob: bytes, key: DataKey, *, record_id: str, subject: str, category: str) -> bytes:
    key_id, nonce, ciphertext = _split_blob(blob)
    if key_id != key.key_id:
        raise WrongKey(f"the blob is sealed with {key_id}, not {key.key_id}")
    return unseal(key, nonce, ciphertext, _blob_aad(key_id, record_id, subject, category))


def _split_blob(blob: bytes) -> tuple[str, bytes, bytes]:
    if len(blob) < len(BLOB_MAGIC) + 2 or not blob.startswith(BLOB_MAGIC):
        raise MalformedEnvelope("not an encrypted Consentry blob")
    version, length = blob[3], blob[4]
    if version != VERSION:
        raise MalformedEnvelope(f"blob version {version} is not supported (this client reads {VERSION})")
    start = 5 + length
    if len(blob) < start + NONCE_BYTES + TAG_BYTES:
        raise MalformedEnvelope("the blob is truncated")
    try:
        key_id = blob[5:start].decode()
    except UnicodeDecodeError:
        raise MalformedEnvelope("the blob's key id is not UTF-8") from None
    return key_id, blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]


def _blob_aad(key_id: str, record_id: str, subject: str, category: str) -> bytes:
    return _canonical([BLOB_TAG, VERSION, key_id, record_id, subject, category])


# Encodings ----------------------------------------------------------------------------------


def _canonical(values: list[Any]) -> bytes:
    # A JSON array in a fixed order, no spaces, UTF-8: each string is quoted and
    # escaped, so no two different lists of values encode to the same bytes.
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()


def _canonical_time(value: Any) -> str:
    """``captured_at`` as UTC with microseconds, whatever form it arrives in (text, datetime, pandas)."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"captured_at is not an RFC 3339 time: {value[:40]!r}") from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise ValueError("captured_at must be an RFC 3339 time")
    if moment.tzinfo is None:
        raise ValueError("captured_at needs a time zone")
    # isoformat, not strftime: a tenth of the cost, and this runs for every record.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _b64decode(value: Any, name: str, error: type[Exception] = ValueError) -> bytes:
    if not isinstance(value, str):
        raise error(f"{name} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{name} is not valid standard base64") from None
