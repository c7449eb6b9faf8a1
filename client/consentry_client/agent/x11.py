"""Which application has the keyboard focus on X11, as the context capture decisions are asked for.

Exclusions name applications by reverse-DNS id (``com.1password.*``), X11
windows by ``WM_CLASS``: a small table maps the well-known ones (extendable
with a JSON file), anything else goes as its lower-cased class name.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from consentry_client.capture import Context

# WM_CLASS (instance or class, lower-cased) → the application id exclusions use.
KNOWN_APPS = {
    "1password": "com.1password.1password",
    "keepassxc": "org.keepassxc.KeePassXC",
    "bitwarden": "com.bitwarden.desktop",
    "lastpass": "com.lastpass.LastPass",
    "code": "com.microsoft.VSCode",
    "firefox": "org.mozilla.firefox",
    "google-chrome": "com.google.Chrome",
    "chromium": "org.chromium.Chromium",
    "slack": "com.slack.Slack",
    "thunderbird": "org.mozilla.Thunderbird",
}


def load_app_map(path: str | None) -> dict[str, str]:
    table = dict(KNOWN_APPS)
    if path:
        table.update({key.lower(): value for key, value in json.loads(Path(path).read_text()).items()})
    return table


class _XWindow(Protocol):
    """What the probe asks of a python-xlib window (the library has no type information)."""

    def get_wm_class(self) -> tuple[str, str] | None: ...

    def query_tree(self) -> Any: ...


class WindowProbe:
    """Asks the X server for the focused window's application. Thread-safe (one lock, one connection)."""

    def __init__(self, display: str | None = None, app_map: dict[str, str] | None = None) -> None:
        from Xlib import X
        from Xlib import display as xdisplay

        self._X = X
        self._display = xdisplay.Display(display)
        self._root = self._display.screen().root
        self._active_atom = self._display.intern_atom("_NET_ACTIVE_WINDOW")
        self._apps = app_map or dict(KNOWN_APPS)
        self._lock = threading.Lock()
        self._last = Context()
        self.changed_at = 0.0

    def _focused(self) -> _XWindow | None:
        active = self._root.get_full_property(self._active_atom, self._X.AnyPropertyType)
        if active is not None and active.value and active.value[0]:
            window: _XWindow = self._display.create_resource_object("window", active.value[0])
            return window
        # No window manager (a bare Xvfb): whoever has the input focus.
        focus: _XWindow | int = self._display.get_input_focus().focus
        return None if isinstance(focus, int) else focus

    def _wm_class(self, window: _XWindow | None) -> tuple[str, str] | None:
        for _ in range(8):
            if window is None or window == self._root:
                return None
            found = window.get_wm_class()
            if found:
                return found
            window = window.query_tree().parent
        return None

    def app_of(self, wm_class: tuple[str, str] | None) -> str:
        if not wm_class:
            return ""
        instance, klass = (part.lower() for part in wm_class)
        return self._apps.get(instance) or self._apps.get(klass) or klass

    def context(self) -> Context:
        """The focused application now (one round trip to the X server)."""
        with self._lock:
            try:
                context = Context(app=self.app_of(self._wm_class(self._focused())))
            except Exception:  # noqa: BLE001 - a window that vanished mid-query: unknown, and counted as a change
                context = Context(app="(unknown)")
            if context != self._last:
                self._last = context
                self.changed_at = time.monotonic()
            return context

    @property
    def last(self) -> Context:
        """The last context seen, without asking the X server."""
        return self._last

    def changed_within(self, seconds: float) -> bool:
        return time.monotonic() - self.changed_at < seconds

    def close(self) -> None:
        with self._lock:
            self._display.close()
