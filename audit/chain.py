"""The hash chain: canonical entry content and how each hash links to the last.

An entry's hash is SHA-256 over a domain-separation tag and the canonical JSON
of its content, which includes the previous entry's hash. Canonical JSON is
UTF-8, keys sorted, no insignificant white space, and no floats (their text
form is not stable across languages), so an offline verifier in any language
rebuilds the same bytes. This module has no Django imports for that reason.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

GENESIS_HASH = "0" * 64
HASH_TAG = b"consentry.audit.entry.v1\x00"
# The fields an entry's hash covers, in the canonical document.
HASHED_FIELDS = (
    "seq",
    "at",
    "event_type",
    "actor",
    "subject",
    "object_type",
    "object_id",
    "region",
    "payload",
    "prev_hash",
)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: the one text form of an entry time."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} cannot be stored in an audit payload")


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("floats cannot be stored in an audit payload; use integers or strings")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_floats(item)


def canonical_json(value: Any) -> bytes:
    _reject_floats(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain, allow_nan=False
    ).encode()


def normalise_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    """The payload exactly as it will be stored and hashed (dates become text)."""
    return json.loads(canonical_json(payload or {}))


# The same encoding as canonical_json, for documents read back from storage:
# their values are plain JSON already, so the type checks are skipped.
_STORED_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def stored_document(row: tuple[Any, ...]) -> dict[str, Any]:
    """The hashed document of a stored entry, from its values in ``HASHED_FIELDS`` order (``at`` as text)."""
    return dict(zip(HASHED_FIELDS, row, strict=True))


def stored_line(document: dict[str, Any]) -> bytes:
    """Canonical bytes of a stored entry's document: what its hash covers, and its export line."""
    return _STORED_ENCODER.encode(document).encode()


def line_hash(line: bytes) -> str:
    return hashlib.sha256(HASH_TAG + line).hexdigest()


def entry_hash(content: dict[str, Any]) -> str:
    """Hash of one entry's canonical content (which holds ``prev_hash``)."""
    missing = set(HASHED_FIELDS) - content.keys()
    if missing:
        raise ValueError(f"entry content lacks {sorted(missing)}")
    document = {name: content[name] for name in HASHED_FIELDS}
    return hashlib.sha256(HASH_TAG + canonical_json(document)).hexdigest()
