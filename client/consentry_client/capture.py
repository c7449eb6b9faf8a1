"""The capture gate: "may I capture category C in this context now?", answered from memory.

A ``CaptureGate`` runs two background threads:

- the *decider* asks the capture decision (``POST /api/v1/decisions/capture``)
  at start, again when the grant has a third of its life left, at once when
  the context changes or a revocation arrives, and every ``recheck_denied``
  seconds while nothing is allowed. It verifies each grant's JWS offline
  against the server's JWKS (EdDSA), checks its claims against what it asked
  for and checks the clock, and only then installs it;
- the *follower* long-polls the revocation feed from the decision's cursor
  and takes the categories of every event that concerns this grant away at
  once, before asking for a new decision.

``allows`` and ``may_capture`` read one immutable snapshot and the monotonic
clock: no lock, no I/O, well under a microsecond on a laptop. They say no
(fail closed) unless a verified grant allows the category for exactly the
context it was decided for, the grant has not expired by the monotonic clock
(counted from when the request was sent, so never later than the server's
expiry), and the feed was last heard from less than one grant lifetime ago.
A 4xx answer (token revoked, refused) drops everything at once; a network
error or 5xx keeps a verified grant only until it expires.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from consentry_client.crypto import DataKey
from consentry_client.jws import InvalidToken, KeySet
from consentry_client.transport import ApiError, ConsentryError, Transport, TransportError, abort

logger = logging.getLogger(__name__)

CAPTURE_PATH = "/api/v1/decisions/capture"
FEED_PATH = "/api/v1/revocations"
# The wire contract caps grants at 15 minutes: a longer one is not a Consentry grant.
MAX_GRANT_LIFETIME = 900


class Context(NamedTuple):
    """Where capture would happen. A named tuple: compared on every check, so it must be cheap."""

    app: str = ""
    domain: str = ""

    def as_json(self) -> dict[str, str]:
        return {name: value for name, value in (("app", self.app), ("domain", self.domain)) if value}


NO_CONTEXT = Context()


class GrantRefused(ConsentryError):
    """A grant that verified but does not say what was asked, or a clock too far off to trust it."""


@dataclass(frozen=True, slots=True)
class Grant:
    """A verified capture grant: what every record captured under it carries."""

    id: str
    subject: str
    purpose: str
    categories: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    policy_version: str
    token: str = field(repr=False)
    # Category → the data key records of that category are encrypted with (crypto.py).
    # A category the grant allows but has no usable key for is not captured.
    data_keys: Mapping[str, DataKey] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    context: Context
    allowed: frozenset[str]
    deadline: float  # monotonic; the grant's end, counted from when its request was sent
    grant: Grant | None
    denied: Mapping[str, tuple[str, ...]]  # category → reason codes
    problem: str = ""  # why there is no usable decision (offline, clock, token)


STARTING = "starting: no decision yet"
_EMPTY = _Snapshot(NO_CONTEXT, frozenset(), 0.0, None, {}, STARTING)


@dataclass(frozen=True)
class GateStatus:
    """What the gate would answer now, for people and status files."""

    state: str  # capturing, paused, denied, offline, error, stopped
    allowed: tuple[str, ...]
    denied: dict[str, list[str]]
    context: Context
    grant_id: str | None
    subject: str | None
    expires_in: float | None
    feed_connected: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "allowed": list(self.allowed),
            "denied": self.denied,
            "context": self.context._asdict(),
            "grant_id": self.grant_id,
            "subject": self.subject,
            "expires_in": None if self.expires_in is None else round(self.expires_in, 1),
            "feed_connected": self.feed_connected,
            "detail": self.detail,
        }


def _data_keys(wire: Any, categories: frozenset[str]) -> dict[str, DataKey]:
    """The grant's usable data keys; a malformed one is left out, so its category is not captured."""
    keys: dict[str, DataKey] = {}
    for category, entry in (wire or {}).items() if isinstance(wire, Mapping) else ():
        if category not in categories:
            continue
        try:
            keys[category] = DataKey.from_wire(entry["key_id"], entry["key"])
        except (TypeError, KeyError, ValueError):
            logger.warning("the grant's data key for %s is malformed: that category is not captured", category)
    return keys


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise GrantRefused("grant times must carry a time zone")
    return moment.astimezone(UTC)


class CaptureGate:
    """Holds the current capture grant for one device and purpose and answers from memory.

    ``base_url`` and ``token`` (a device token) reach the server; ``device_id``
    must be the token's device (the grant's audience); ``categories`` are the
    ones this agent would capture. Call ``start()`` once, ``set_context()``
    whenever the focused app or web domain changes, ``allows()`` before every
    capture, and ``stop()`` at the end.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        device_id: str,
        purpose: str,
        categories: Iterable[str],
        issuer: str | None = None,
        max_clock_skew: float = 30.0,
        recheck_denied: float = 15.0,
        request_timeout: float = 10.0,
        feed_wait: int = 25,
        transport: Transport | None = None,
    ) -> None:
        self.purpose = purpose
        self.device_id = device_id
        self.categories = tuple(dict.fromkeys(categories))
        if not self.categories:
            raise ValueError("a capture gate needs at least one category")
        self.issuer = issuer
        self.max_clock_skew = max_clock_skew
        self.recheck_denied = recheck_denied
        self.feed_wait = feed_wait
        self._transport = transport or Transport(base_url, token, timeout=request_timeout)
        self.keys = KeySet(self._transport)
        self._snapshot = _EMPTY
        self._feed_deadline = 0.0
        self._feed_connected = False
        self._feed_conn: http.client.HTTPConnection | None = None
        self._cursor: str | None = None
        self._cursor_ready = threading.Event()
        self._wanted = NO_CONTEXT
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        # Revocations received, numbered, so a decision in flight when one arrived is corrected on arrival.
        self._received = 0
        self._recent: deque[tuple[int, frozenset[str], str]] = deque(maxlen=256)
        self._listeners: list[Callable[[GateStatus], object]] = []
        self._renew_at = 0.0
        self.clock_offset = timedelta(0)

    # The fast path ---------------------------------------------------------------------

    def allows(self, category: str, context: Context | None = None) -> Grant | None:
        """The grant to capture ``category`` under, or None: capture nothing.

        ``context`` is where the capture would happen now; a context other than
        the one the grant was decided for is a no (and asks for a decision for it).
        """
        snapshot = self._snapshot
        if context is not None and context != snapshot.context:
            if context != self._wanted:
                self.set_context(context)
            return None
        if category in snapshot.allowed:
            now = time.monotonic()
            if now < snapshot.deadline and now < self._feed_deadline:
                return snapshot.grant
        return None

    def may_capture(self, category: str, context: Context | None = None) -> bool:
        """``allows`` as a yes or no."""
        return self.allows(category, context) is not None

    def server_now(self) -> datetime:
        """The current time by the server's clock (as estimated from the last grant): records carry it."""
        return datetime.now(UTC) + self.clock_offset

    # Control -------------------------------------------------------------------------

    def start(self) -> CaptureGate:
        for name, target in (("consentry-decider", self._decide_loop), ("consentry-feed", self._feed_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop capturing at once, then wait for the gate's threads to end.

        Nothing is allowed from the moment this is called. A decision request
        already in flight is left to finish (up to ``timeout``, by default the
        transport's request timeout), so once this returns the gate sends
        nothing more and leaves no half-done request behind.
        """
        self._stopped.set()
        self._wake.set()
        self._cursor_ready.set()
        # Cut the waiting long poll short rather than leave it for the server to time out.
        abort(self._feed_conn)
        with self._lock:
            self._snapshot = _Snapshot(self._snapshot.context, frozenset(), 0.0, None, {}, "stopped")
        self._notify()
        wait = getattr(self._transport, "timeout", 10.0) + 1.0 if timeout is None else timeout
        deadline = time.monotonic() + wait
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def set_context(self, context: Context) -> None:
        """The focused app or web domain changed: decide again for it (until then, nothing is allowed there)."""
        if context != self._wanted:
            self._wanted = context
            self._wake.set()

    def refresh(self) -> None:
        """Ask for a new decision now (say, the employee just gave consent), not only at renewal."""
        self._wake.set()

    def on_change(self, listener: Callable[[GateStatus], object]) -> None:
        """Call ``listener`` (from a gate thread) whenever what the gate allows may have changed."""
        self._listeners.append(listener)

    def status(self) -> GateStatus:
        snapshot = self._snapshot
        now = time.monotonic()
        live = now < snapshot.deadline and now < self._feed_deadline
        allowed = tuple(sorted(snapshot.allowed)) if live else ()
        codes = {code for reasons in snapshot.denied.values() for code in reasons}
        if self._stopped.is_set():
            state, detail = "stopped", "stopped"
        elif allowed:
            state, detail = "capturing", ""
        elif snapshot.problem:
            state = (
                snapshot.problem.split(":", 1)[0] if snapshot.problem.startswith(("offline", "starting")) else "error"
            )
            detail = snapshot.problem
        elif snapshot.allowed and not now < self._feed_deadline:
            state, detail = "offline", "the revocation feed has not answered within a grant's lifetime"
        elif snapshot.allowed:
            state, detail = "offline", "the grant expired and was not renewed"
        elif "paused_by_employee" in codes or "paused" in codes:
            state, detail = "paused", "paused by the employee"
        else:
            state, detail = "denied", ", ".join(sorted(codes)) or "nothing allowed"
        grant = snapshot.grant
        return GateStatus(
            state=state,
            allowed=allowed,
            denied={category: list(reasons) for category, reasons in sorted(snapshot.denied.items())},
            context=snapshot.context,
            grant_id=grant.id if grant and live else None,
            subject=grant.subject if grant else None,
            expires_in=max(snapshot.deadline - now, 0.0) if grant else None,
            feed_connected=self._feed_connected,
            detail=detail,
        )

    def _notify(self) -> None:
        status = self.status()
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:
                logger.exception("capture gate listener failed")

    # Deciding ----------------------------------------------------------------------------

    def _decide_loop(self) -> None:
        backoff = 1.0
        while not self._stopped.is_set():
            try:
                self.decide()
                backoff = 1.0
                wait = max(self._renew_at - time.monotonic(), 0.05)
            except ApiError as exc:
                self._drop(
                    f"refused: {exc.code}" if exc.status < 500 else f"offline: {exc.code}", keep=exc.status >= 500
                )
                wait = max(exc.retry_after or 0, backoff if exc.status >= 500 else self.recheck_denied)
                backoff = min(backoff * 2, 10.0)
            except TransportError as exc:
                self._drop(f"offline: {exc}", keep=True)
                wait, backoff = backoff, min(backoff * 2, 10.0)
            except (InvalidToken, GrantRefused) as exc:
                # A grant we cannot trust is no grant: say why, keep asking (a key rotation, a clock fixed).
                logger.warning("capture grant refused: %s", exc)
                self._drop(f"error: {exc}", keep=False)
                wait, backoff = backoff, min(backoff * 2, 10.0)
            except Exception as exc:
                logger.exception("capture decision failed")
                self._drop(f"error: {exc}", keep=False)
                wait, backoff = backoff, min(backoff * 2, 10.0)
            self._wake.wait(wait)
            self._wake.clear()

    def decide(self) -> None:
        """Ask for a decision for the wanted context now and install it (the decider thread calls this)."""
        context = self._wanted
        seen = self._received
        body: dict[str, Any] = {"purpose": self.purpose, "categories": list(self.categories)}
        if context != NO_CONTEXT:
            body["context"] = context.as_json()
        sent_mono, sent_wall = time.monotonic(), datetime.now(UTC)
        decision = self._transport.post_json(CAPTURE_PATH, body)
        received_wall = datetime.now(UTC)
        self._install(decision, context, sent_mono, sent_wall + (received_wall - sent_wall) / 2, seen)

    def _install(
        self, decision: Mapping[str, Any], context: Context, sent: float, midpoint: datetime, seen: int
    ) -> None:
        denied = {
            category: tuple(reason.get("code", "") for reason in result.get("reasons", ()))
            for category, result in (decision.get("categories") or {}).items()
            if not result.get("allowed")
        }
        grant, deadline = None, 0.0
        if decision.get("grant"):
            grant = self._verify(decision["grant"], midpoint)
            deadline = sent + (grant.expires_at - grant.issued_at).total_seconds()
        allowed = grant.categories.intersection(self.categories) if grant else frozenset()
        with self._lock:
            if self._stopped.is_set():
                return  # stop() came while this decision was in flight: a stopped gate allows nothing
            # Revocations that arrived while this decision was in flight may postdate it: apply them.
            for number, categories, code in self._recent:
                if number > seen and categories & allowed:
                    allowed = allowed - categories
                    denied.update({category: (code,) for category in categories if category in self.categories})
            self._snapshot = _Snapshot(context, allowed, deadline, grant, denied)
            if self._cursor is None and decision.get("revocation_cursor"):
                self._cursor = decision["revocation_cursor"]
                self._cursor_ready.set()
        lifetime = (grant.expires_at - grant.issued_at).total_seconds() if grant else 0
        self._renew_at = sent + lifetime * 2 / 3 if grant else time.monotonic() + self.recheck_denied
        self._notify()

    def _verify(self, grant: Mapping[str, Any], midpoint: datetime) -> Grant:
        claims = self.keys.verify(str(grant.get("token", "")))
        expected = {
            "aud": self.device_id,
            "jti": grant.get("id"),
            "sub": grant.get("subject"),
            "purpose": self.purpose,
        }
        if self.issuer is not None:
            expected["iss"] = self.issuer
        wrong = [name for name, value in expected.items() if claims.get(name) != value]
        if sorted(claims.get("categories") or ()) != sorted(grant.get("categories") or ()):
            wrong.append("categories")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or not 0 < exp - iat <= MAX_GRANT_LIFETIME:
            wrong.append("iat/exp")
        if wrong:
            raise GrantRefused(f"the grant's token does not match the grant: {', '.join(wrong)}")
        assert isinstance(iat, int) and isinstance(exp, int)  # else "iat/exp" was refused just above
        issued_at, expires_at = _parse_time(grant["issued_at"]), _parse_time(grant["expires_at"])
        if abs(issued_at.timestamp() - iat) > 1 or abs(expires_at.timestamp() - exp) > 1:
            raise GrantRefused("the grant's times do not match its token")
        # The server issued the grant while the request was in flight: the gap is our clock's error.
        offset = issued_at - midpoint
        if abs(offset.total_seconds()) > self.max_clock_skew:
            raise GrantRefused(f"this machine's clock is {offset.total_seconds():+.1f}s off the server's")
        self.clock_offset = offset
        return Grant(
            id=claims["jti"],
            subject=claims["sub"],
            purpose=claims["purpose"],
            categories=frozenset(claims["categories"]),
            issued_at=issued_at,
            expires_at=expires_at,
            policy_version=str(claims.get("policy_version", "")),
            token=grant["token"],
            data_keys=_data_keys(grant.get("data_keys"), frozenset(claims["categories"])),
        )

    def _drop(self, problem: str, *, keep: bool) -> None:
        """No usable decision: keep a verified grant until it expires (``keep``) or drop it now."""
        with self._lock:
            current = self._snapshot
            if keep and current.grant is not None and time.monotonic() < current.deadline:
                return
            self._snapshot = _Snapshot(current.context, frozenset(), 0.0, None, current.denied, problem)
        self._notify()

    # Following the revocation feed -------------------------------------------------------

    def _feed_loop(self) -> None:
        backoff = 0.5
        contacted = False
        while not self._stopped.is_set():
            cursor = self._cursor
            if cursor is None:
                self._cursor_ready.wait(1.0)
                self._cursor_ready.clear()
                continue
            lifetime = self._lifetime()
            # The first poll answers at once, so the feed counts as heard from straight away.
            wait = int(max(1, min(self.feed_wait, lifetime / 3))) if contacted else 0
            started = time.monotonic()
            try:
                response = self._transport.request(
                    "GET",
                    FEED_PATH,
                    params={"after": cursor, "wait": wait},
                    timeout=wait + 10,
                    opened=self._remember_feed_connection,
                )
                # Read here: an answer cut short is a broken connection like any other.
                body = response.json()
            except ApiError as exc:
                self._feed_connected = False
                contacted = False
                if exc.status in (401, 403):
                    self._drop(f"refused: {exc.code}", keep=False)
                elif exc.status == 422:
                    # A cursor the server no longer knows: restart from the next decision's.
                    with self._lock:
                        if self._cursor == cursor:
                            self._cursor = None
                    self._wake.set()
                self._stopped.wait(exc.retry_after or backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except TransportError:
                self._feed_connected = False
                contacted = False
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.5
            for event in body.get("events", ()):
                self._revoke(event)
            with self._lock:
                if self._cursor == cursor:
                    self._cursor = body.get("cursor") or cursor
            # Everything committed before this poll started has now been seen.
            self._feed_deadline = started + max(lifetime, 1.0)
            if not (contacted and self._feed_connected):
                self._feed_connected = contacted = True
                self._notify()
            retry_after = response.headers.get("retry-after")
            if retry_after:
                self._stopped.wait(float(retry_after))

    def _remember_feed_connection(self, conn: http.client.HTTPConnection) -> None:
        self._feed_conn = conn
        if self._stopped.is_set():
            abort(conn)

    def _lifetime(self) -> float:
        grant = self._snapshot.grant
        return (grant.expires_at - grant.issued_at).total_seconds() if grant else 60.0

    def _revoke(self, event: Mapping[str, Any]) -> None:
        """Take an event's categories away now, then ask for a new decision."""
        if event.get("purpose") != self.purpose:
            return
        categories = frozenset(event.get("categories") or self.categories)
        code = str(event.get("type", "revoked"))
        with self._lock:
            current = self._snapshot
            if code == "grant_revoked" and (current.grant is None or current.grant.id not in event.get("grants", ())):
                return  # another device's grant
            self._received += 1
            self._recent.append((self._received, categories, code))
            lost = current.allowed & categories
            if lost:
                denied = {**current.denied, **dict.fromkeys(lost, (code,))}
                self._snapshot = _Snapshot(
                    current.context, current.allowed - lost, current.deadline, current.grant, denied
                )
        logger.info("revocation %s for %s", code, ", ".join(sorted(categories)))
        self._notify()
        self._wake.set()
