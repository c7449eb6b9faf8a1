"""The agent's state, for the person at the machine: one line per change on the terminal, a JSON status file."""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from consentry_client.capture import CaptureGate


def describe(status: dict[str, Any]) -> str:
    """``capturing: keystrokes, mouse_movement | denied: screenshots (no_consent)``"""
    parts = [f"{status['state']}: {', '.join(status['allowed']) or 'nothing'}"]
    if status["denied"]:
        denied = ", ".join(f"{category} ({', '.join(codes)})" for category, codes in status["denied"].items())
        parts.append(f"denied: {denied}")
    if status["detail"] and status["state"] != "capturing":
        parts.append(status["detail"])
    if status["context"].get("app"):
        parts.append(f"app: {status['context']['app']}")
    return " | ".join(parts)


class StatusReporter:
    """Writes the status file (atomically) and prints a line whenever the state changes."""

    def __init__(self, gate: CaptureGate, path: str | os.PathLike[str], *, stream: TextIO = sys.stdout) -> None:
        self.gate = gate
        self.path = Path(path)
        self.stream = stream
        self._printed = ""
        self._lock = threading.Lock()
        self.extra: dict[str, Any] = {}

    def update(self, *_: object) -> dict[str, Any]:
        status = self.gate.status().as_json()
        status.update(self.extra, pid=os.getpid(), updated_at=datetime.now(UTC).isoformat())
        with self._lock:
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(status, indent=2))
            os.replace(temporary, self.path)
            line = describe(status)
            if line != self._printed:
                self._printed = line
                print(f"[consentry-agent] {line}", file=self.stream, flush=True)
        return status
