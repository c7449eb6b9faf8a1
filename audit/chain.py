"""The hash chain: canonical entry content and how each hash links to the last.

An entry's hash is SHA-256 over a domain-separation tag and the canonical JSON
of its content, which includes the previous entry's hash. Canonical JSON is
UTF-8, keys sorted, no insignificant white space, and no floats (their text
form is not stable across languages), so an offline verifier in any language
rebuilds the same bytes. This module has no Django imports for that reason.

The tag, the hashed fields and the canonical encoding of a stored entry are
the standalone verifier's (``consentry_client.verify``): one definition for
the server that writes entries and for every verifier that reads them. Here is
only what a writer adds: turning Python values into that plain JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from consentry_client.verify import ENTRY_TAG as HASH_TAG
from consentry_client.verify import FIELDS as HASHED_FIELDS
from consentry_client.verify import GENESIS as GENESIS_HASH
from consentry_client.verify import entry_line, line_hash

__all__ = (
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "HASH_TAG",
    "canonical_json",
    "entry_hash",
    "entry_line",
    "format_time",
    "line_hash",
    "normalise_payload",
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
    """Canonical JSON of a value about to be stored: ``entry_line``'s bytes once its values are plain JSON."""
    _reject_floats(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain, allow_nan=False
    ).encode()


def normalise_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    """The payload exactly as it will be stored and hashed (dates become text)."""
    return json.loads(canonical_json(payload or {}))


def entry_hash(content: dict[str, Any]) -> str:
    """Hash of one entry's canonical content (which holds ``prev_hash``)."""
    missing = set(HASHED_FIELDS) - content.keys()
    if missing:
        raise ValueError(f"entry content lacks {sorted(missing)}")
    document = {name: content[name] for name in HASHED_FIELDS}
    return line_hash(canonical_json(document))
