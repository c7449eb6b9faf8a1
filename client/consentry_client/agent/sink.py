"""Where the agent's records go: a ``RecordSink``, by default an encrypted JSON Lines spool on disk.

The agent hands every record (and every screenshot's bytes) to a sink with
the grant it was captured under. Anything that transforms records on the way
is a sink wrapping another sink; the agent does not change. ``EncryptingSink``
is the one the agent always uses: it seals each record and blob with the
grant's data key for its category (``consentry_client.crypto``) before the
``JsonlSpool`` below it sees anything, so the spool never holds plaintext.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from consentry_client.capture import Grant
from consentry_client.crypto import DataKey, RecordCryptoError, encrypt_blob, encrypt_record


class NoDataKey(RecordCryptoError):
    """The grant carries no data key for the record's category: the record must not be kept."""


class RecordSink(Protocol):
    def write(self, record: dict[str, Any], grant: Grant) -> None:
        """Keep one record captured under ``grant``."""

    def write_blob(self, record_id: str, data: bytes, suffix: str, grant: Grant, *, category: str) -> str:
        """Keep a record's binary payload (a screenshot); returns how the record refers to it."""

    def close(self) -> None: ...


class JsonlSpool:
    """Append-only JSON Lines files, one per UTC day, plus a folder of blobs.

    Each record is one ``write`` of one line to a file opened with O_APPEND,
    so concurrent writers never interleave within a line, and a reader (the
    uploader, a test) sees whole lines only.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.blobs = self.folder / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._day = ""
        self._fd: int | None = None

    def _file(self) -> int:
        day = datetime.now(UTC).strftime("%Y%m%d")
        if day != self._day or self._fd is None:
            if self._fd is not None:
                os.close(self._fd)
            path = self.folder / f"records-{day}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._day = day
        return self._fd

    def write(self, record: dict[str, Any], grant: Grant) -> None:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        with self._lock:
            os.write(self._file(), line)

    def write_blob(self, record_id: str, data: bytes, suffix: str, grant: Grant, *, category: str = "") -> str:
        name = f"{record_id}{suffix}"
        path = self.blobs / name
        with open(path.with_suffix(path.suffix + ".part"), "wb") as handle:
            handle.write(data)
        os.replace(path.with_suffix(path.suffix + ".part"), path)
        return f"blobs/{name}"

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class EncryptingSink:
    """Seals records and blobs with the grant's data key for their category, then hands them on.

    No key for the category, no record: ``NoDataKey`` is raised and nothing
    reaches the sink below (the agent checks for the key before capturing,
    so this is the last line, not the first).
    """

    def __init__(self, inner: RecordSink) -> None:
        self.inner = inner

    @staticmethod
    def _key(grant: Grant, category: str) -> DataKey:
        key = grant.data_keys.get(category)
        if key is None:
            raise NoDataKey(f"grant {grant.id} has no data key for {category}: not captured")
        return key

    def write(self, record: dict[str, Any], grant: Grant) -> None:
        self.inner.write(encrypt_record(record, self._key(grant, record["category"])), grant)

    def write_blob(self, record_id: str, data: bytes, suffix: str, grant: Grant, *, category: str) -> str:
        key = self._key(grant, category)
        sealed = encrypt_blob(data, key, record_id=record_id, subject=grant.subject, category=category)
        return self.inner.write_blob(record_id, sealed, f"{suffix}.enc", grant, category=category)

    def close(self) -> None:
        self.inner.close()
