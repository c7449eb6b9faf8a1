"""The capture agent: X11 input and screen sources that record only what the capture gate allows.

Rules it follows, each checked per record, from memory:

- every record asks ``gate.allows(category, context)`` with the context of
  that moment; no grant, no record. A revocation or an expired grant stops
  the category at the very next event;
- key content and key timing look up the focused application for each key
  (one X round trip) and are dropped for ``FOCUS_GUARD`` seconds after the
  focus moved, so a key typed in an excluded application is never recorded
  under the previous application's decision;
- screenshots and application usage are taken on a timer, under the same checks;
- a category needs a data key in the grant as well, for the UTC day the
  record is captured on: records are encrypted with it (``EncryptingSink``)
  before they reach the spool, so a grant without that key captures nothing
  of the category (fail closed);
- records carry the grant id, the subject pseudonym, the purpose, the
  category, the time by the server's clock and a fresh record id, and go to
  the ``RecordSink``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from consentry_client.agent.sink import RecordSink
from consentry_client.agent.x11 import WindowProbe
from consentry_client.capture import CaptureGate, Context, Grant

logger = logging.getLogger(__name__)

CATEGORIES = ("keystrokes", "keystroke_timing", "mouse_movement", "mouse_clicks", "screenshots", "app_usage")
# After the focus moves, key events may still belong to the window left behind: drop them for this long.
FOCUS_GUARD = 0.3
UNKNOWN_APP = "(unknown)"
MOVE_INTERVAL = 0.05  # at most 20 mouse positions a second


def _key_text(key: Any) -> str:
    char: str | None = getattr(key, "char", None)
    if char:
        return char
    name = getattr(key, "name", None)
    return f"<{name}>" if name else f"<{getattr(key, 'vk', '?')}>"


class Agent:
    """Wires the gate, the sources and the sink. ``start`` begins capturing; ``stop`` ends it."""

    def __init__(
        self,
        gate: CaptureGate,
        sink: RecordSink,
        probe: WindowProbe,
        *,
        categories: tuple[str, ...] = CATEGORIES,
        screenshot_interval: float = 10.0,
        poll_interval: float = 0.1,
    ) -> None:
        self.gate = gate
        self.sink = sink
        self.probe = probe
        self.categories = categories
        self.screenshot_interval = screenshot_interval
        self.poll_interval = poll_interval
        self.counts: Counter[str] = Counter()
        # Events not captured because the grant had no data key for their category.
        self.without_key: Counter[str] = Counter()
        self._warned: set[tuple[str, str]] = set()
        self._stopped = threading.Event()
        self._listeners: list[Any] = []
        self._threads: list[threading.Thread] = []
        self._last_move = 0.0
        self._app_recorded: Context | None = None

    # Recording ---------------------------------------------------------------------------

    def grant_for(self, category: str, context: Context, at: datetime | None = None) -> Grant | None:
        """The grant to capture ``category`` under at ``at`` (server time), only if its data key covers it.

        Data keys are per UTC day, and the use decision releases the key of the
        day a record was captured: a grant's key (issued for the day of the
        grant) covers only records of that same day. A grant that straddles
        midnight captures nothing after it; its successor brings the new key.
        """
        grant = self.gate.allows(category, context)
        if grant is None:
            return None
        day = (at or self.gate.server_now()).astimezone(UTC).date()
        if category not in grant.data_keys or day != grant.issued_at.astimezone(UTC).date():
            self.without_key[category] += 1
            if (grant.id, category) not in self._warned:
                self._warned.add((grant.id, category))
                logger.warning("grant %s has no data key for %s on %s: not capturing it", grant.id, category, day)
            return None
        return grant

    def record(self, category: str, data: dict[str, Any], context: Context) -> bool:
        """Write one record if the gate allows ``category`` in ``context`` now; True when written."""
        if category not in self.categories or context.app == UNKNOWN_APP or self._stopped.is_set():
            return False
        captured_at = self.gate.server_now().astimezone(UTC)
        grant = self.grant_for(category, context, captured_at)
        if grant is None:
            return False
        record_id = f"r_{uuid.uuid4().hex}"
        if "_blob" in data:
            blob, suffix = data.pop("_blob")
            data["file"] = self.sink.write_blob(record_id, blob, suffix, grant, category=category)
            data["sha256"] = hashlib.sha256(blob).hexdigest()
        self.sink.write(
            {
                "id": record_id,
                "grant_id": grant.id,
                "subject": grant.subject,
                "purpose": grant.purpose,
                "category": category,
                "captured_at": captured_at.isoformat(timespec="milliseconds")[:-6] + "Z",
                "data": data,
            },
            grant,
        )
        self.counts[category] += 1
        return True

    # Keyboard ------------------------------------------------------------------------------

    def _key_context(self) -> Context | None:
        context = self.probe.context()
        return None if self.probe.changed_within(FOCUS_GUARD) else context

    def on_press(self, key: Any) -> None:
        context = self._key_context()
        if context is None:
            return
        self.record("keystrokes", {"key": _key_text(key)}, context)
        self.record("keystroke_timing", {"action": "press", "t_ms": round(time.monotonic() * 1000, 1)}, context)

    def on_release(self, key: Any) -> None:
        context = self._key_context()
        if context is not None:
            self.record("keystroke_timing", {"action": "release", "t_ms": round(time.monotonic() * 1000, 1)}, context)

    # Mouse ---------------------------------------------------------------------------------

    def on_move(self, x: int, y: int) -> None:
        now = time.monotonic()
        if now - self._last_move >= MOVE_INTERVAL:
            self._last_move = now
            self.record("mouse_movement", {"x": x, "y": y}, self.probe.last)

    def on_click(self, x: int, y: int, button: Any, pressed: bool) -> None:
        data = {"x": x, "y": y, "button": getattr(button, "name", str(button)), "pressed": pressed}
        self.record("mouse_clicks", data, self.probe.last)

    # Timers ---------------------------------------------------------------------------------

    def _watch_focus(self) -> None:
        """Tell the gate when the focused application changes; record application usage once allowed."""
        while not self._stopped.is_set():
            context = self.probe.context()
            self.gate.set_context(context)
            fresh = context != self._app_recorded and context.app not in ("", UNKNOWN_APP)
            if fresh and self.record("app_usage", {"app": context.app}, context):
                self._app_recorded = context
            self._stopped.wait(self.poll_interval)

    def _screenshots(self) -> None:
        import mss
        import mss.tools

        with mss.mss() as screen:
            while not self._stopped.wait(self.screenshot_interval):
                context = self.probe.context()
                if self.probe.changed_within(FOCUS_GUARD) or self.grant_for("screenshots", context) is None:
                    continue
                shot = screen.grab(screen.monitors[0])
                png = mss.tools.to_png(shot.rgb, shot.size)
                self.record(
                    "screenshots", {"width": shot.width, "height": shot.height, "_blob": (png, ".png")}, context
                )

    # Control --------------------------------------------------------------------------------

    def start(self) -> Agent:
        from pynput import keyboard, mouse

        self.gate.set_context(self.probe.context())
        self.gate.start()
        if {"keystrokes", "keystroke_timing"} & set(self.categories):
            self._listeners.append(keyboard.Listener(on_press=self.on_press, on_release=self.on_release))
        if {"mouse_movement", "mouse_clicks"} & set(self.categories):
            self._listeners.append(mouse.Listener(on_move=self.on_move, on_click=self.on_click))
        for listener in self._listeners:
            listener.start()
        for listener in self._listeners:
            listener.wait()
        timers = [("consentry-focus", self._watch_focus)]
        if "screenshots" in self.categories:
            timers.append(("consentry-screenshots", self._screenshots))
        for name, target in timers:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopped.set()
        self.gate.stop()
        for listener in self._listeners:
            listener.stop()
        for thread in self._threads:
            thread.join(timeout=2)
        self.sink.close()
