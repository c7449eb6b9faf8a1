"""Where the agent's records go: a ``RecordSink``, by default a JSON Lines spool on disk.

The agent hands every record (and every screenshot's bytes) to a sink with
the grant it was captured under. Anything that transforms records on the way
(record encryption with the grant's data keys, say) is a sink wrapping
another sink; the agent does not change.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from consentry_client.capture import Grant


class RecordSink(Protocol):
    def write(self, record: dict[str, Any], grant: Grant) -> None:
        """Keep one record captured under ``grant``."""

    def write_blob(self, record_id: str, data: bytes, suffix: str, grant: Grant) -> str:
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

    def write_blob(self, record_id: str, data: bytes, suffix: str, grant: Grant) -> str:
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
