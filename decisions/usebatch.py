"""The use decision over a batch or a stream of records, in constant memory.

Records are validated one by one (a bad record is denied with
``invalid_record`` and never fails the batch), grouped into chunks, and each
chunk loads the grants and employees it names with one query each. Grants
never change, and an employee's status and consent are read the first time
the stream meets them, so each is read at most once per request; both caches
are bounded, which keeps memory flat however long the stream.
"""

from __future__ import annotations

import gc
import hashlib
from collections import Counter
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import Enum, auto
from itertools import islice
from typing import Annotated, Any, Final, Protocol, final

import msgspec
import orjson

from decisions import engine
from decisions.datakeys import DESTROYED, Triple, key_states
from decisions.selectors import employees_for_use, grants_by_id

MAX_JSON_RECORDS = 10_000
CHUNK_RECORDS = 2_000
MAX_LINE_BYTES = 64 * 1024
READ_BLOCK_BYTES = 256 * 1024
MAX_ID_LENGTH = 200
MAX_FIELD_LENGTH = 64
# Bounds of the per-request caches (a cached grant takes about 400 bytes, an
# employee about 1 KB): at most some 80 MB, whatever the length of the stream.
GRANT_CACHE_LIMIT = 150_000
EMPLOYEE_CACHE_LIMIT = 20_000
FLOOR_CACHE_LIMIT = 100_000
# Data-key look-ups ((employee, category, day) → key id or destroyed), about 150 bytes each.
KEY_CACHE_LIMIT = 200_000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


# Final: the stream tells records apart by exact type (`type(x) is InvalidRecord`), the fast test.
@final
@dataclass(frozen=True, slots=True)
class InvalidRecord:
    id: str | None
    detail: str


class _Unseen(Enum):
    """A floor not computed yet; None is a computed answer (no floor)."""

    UNSEEN = auto()


_UNSEEN: Final = _Unseen.UNSEEN
_MICROSECOND = timedelta(microseconds=1)
# (subject, captured from, captured before, data key id or None): see UseEvaluator._windows_of.
Window = tuple[str, datetime, datetime, str | None]
LINE_TOO_LONG = InvalidRecord(None, f"The line is longer than {MAX_LINE_BYTES} bytes.")


_TIME_TYPE = Annotated[datetime, msgspec.Meta(tz=True)]
_ID = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
_FIELD = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_FIELD_LENGTH)]


class _WireRecord(msgspec.Struct, frozen=True, gc=False):
    """A use record as sent: msgspec checks its types, lengths and RFC 3339 time (with an offset) in C."""

    id: _ID
    subject: _FIELD
    category: _FIELD
    captured_at: _TIME_TYPE
    grant_id: _FIELD


_decode_line = msgspec.json.Decoder(_WireRecord).decode
# What decoding a hostile line may raise besides DecodeError: bad UTF-8 in a string, absurd nesting.
_REFUSED = (msgspec.DecodeError, ValueError, RecursionError)
_new_record = tuple.__new__


def parse_time(value: Any) -> datetime | str:
    """An aware datetime from RFC 3339 text (the parser of the use records), or why it is not one."""
    if type(value) is not str:
        return "captured_at must be an RFC 3339 timestamp string."
    try:
        moment = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        return "captured_at is not an RFC 3339 timestamp."
    if moment.tzinfo is None:
        return "captured_at needs a time zone (e.g. 2026-11-20T14:02:11Z)."
    if not EARLIEST <= moment < LATEST:
        return "captured_at is not between 2000 and 2100."
    return moment


def _text_ok(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_FIELD_LENGTH


def _use_record(wire: _WireRecord) -> engine.UseRecord | InvalidRecord:
    moment = wire.captured_at
    if not EARLIEST <= moment < LATEST:
        return InvalidRecord(wire.id, "captured_at is not between 2000 and 2100.")
    # The named tuple's own __new__ is a Python function; this is the same tuple, built in C.
    return _new_record(engine.UseRecord, (wire.id, wire.subject, wire.category, moment, wire.grant_id))


def parse_record(value: Any) -> engine.UseRecord | InvalidRecord:
    """Validate one record: an object with string id, subject, category, grant_id and an RFC 3339 captured_at.

    The same checks as ``parse_line``, on a value already parsed from JSON.
    """
    try:
        wire = msgspec.convert(value, _WireRecord)
    except msgspec.ValidationError:
        return _why_invalid(value)
    return _use_record(wire)


def _why_invalid(value: Any) -> InvalidRecord:
    """What is wrong with a record the wire format refused, said in plain words."""
    if type(value) is not dict:
        return InvalidRecord(None, "A record must be a JSON object.")
    get = value.get
    record_id = get("id")
    if type(record_id) is not str or not 0 < len(record_id) <= MAX_ID_LENGTH:
        return InvalidRecord(None, f"id must be a string of 1 to {MAX_ID_LENGTH} characters.")
    missing = [name for name in ("subject", "category", "grant_id") if not _text_ok(get(name))]
    if missing:
        return InvalidRecord(record_id, f"{', '.join(missing)}: must be strings of 1 to {MAX_FIELD_LENGTH} characters.")
    captured_at = parse_time(get("captured_at"))
    return InvalidRecord(record_id, captured_at if type(captured_at) is str else "The record is not valid.")


def parse_line(line: bytes) -> engine.UseRecord | InvalidRecord:
    """One NDJSON line, decoded and validated by msgspec in one pass (about six times faster than
    parsing with orjson and checking in Python). A refused line is parsed again by orjson (strict
    JSON and UTF-8, a nesting limit) only to say what is wrong with it.
    """
    try:
        wire = _decode_line(line)
    except _REFUSED:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            return InvalidRecord(None, "The line is not valid JSON (or not UTF-8).")
        return _why_invalid(value)
    return _use_record(wire)


class ByteStream(Protocol):
    """What ndjson_lines reads from: a file, or a Django request's unread body."""

    def read(self, size: int, /) -> bytes: ...


def ndjson_lines(stream: ByteStream) -> Iterator[bytes | InvalidRecord]:
    """Non-blank lines of an NDJSON body, read in blocks; an over-long line becomes LINE_TOO_LONG.

    Never holds more than one block and one line: the rest of an over-long
    line is read and dropped, not buffered.
    """
    pending = b""
    skipping = False
    while True:
        block = stream.read(READ_BLOCK_BYTES)
        if not block:
            break
        pieces = (pending + block).split(b"\n")
        pending = pieces.pop()
        for piece in pieces:
            if skipping:
                # The end of the over-long line already reported.
                skipping = False
                continue
            if len(piece) > MAX_LINE_BYTES:
                yield LINE_TOO_LONG
            elif piece.strip():
                yield piece
        if len(pending) > MAX_LINE_BYTES:
            if not skipping:
                yield LINE_TOO_LONG
                skipping = True
            pending = b""
    if pending.strip() and not skipping:
        yield pending


def chunked(items: Iterable[Any], size: int | None = None) -> Iterator[list[Any]]:
    size = size or CHUNK_RECORDS
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


Result = tuple[str | None, tuple[engine.Reason, ...]]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector held off for the block (reference counting still frees everything)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def result_blocks(evaluator: UseEvaluator, items: Iterable[engine.UseRecord | InvalidRecord]) -> Generator[bytes]:
    """The NDJSON result lines of ``items``, one block per chunk.

    A long stream's caches grow to hundreds of thousands of small objects
    (grants, employees, windows, key states). None of them form cycles, so
    reference counting frees them, but CPython's cyclic collector would walk
    them again at every collection as they grow: a quarter of the stream's
    time. So each chunk is evaluated with the collector paused, and what
    survives the chunk is frozen (``gc.freeze``) so later collections skip
    it. The collector runs between chunks for whatever else the process
    does, and the stream's end (or abandonment) unfreezes everything.
    """
    try:
        for chunk in chunked(items):
            with _collector_paused():
                block = b"".join(map(evaluator.result_line, evaluator.evaluate(chunk)))
                gc.freeze()
            yield block
    finally:
        gc.unfreeze()


def _utc_day(moment: datetime) -> date:
    return (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).date()


def grant_day(grant: engine.GrantFacts) -> date | None:
    """The UTC day a grant lies in (the day of its records' data keys), or None when it spans midnight."""
    day = _utc_day(grant.issued_at)
    return day if _utc_day(grant.expires_at - _MICROSECOND) == day else None


def reason_json(reason: engine.Reason) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": reason.code,
        "detail": reason.detail,
        "missing_configuration": reason.missing_configuration,
    }
    if reason.preconditions:
        body["preconditions"] = list(reason.preconditions)
    return body


def _make_room(cache: dict[Any, Any], incoming: int, limit: int) -> bool:
    """Drop the oldest entries (at least half the cache) if ``incoming`` more would pass ``limit``.

    Whatever the chunk needs is loaded again after this, so dropping an entry
    it uses is only a wasted read. Returns whether anything was dropped.
    """
    excess = len(cache) + incoming - limit
    if excess <= 0:
        return False
    for key in list(islice(cache, max(excess, limit // 2))):
        del cache[key]
    return True


class UseEvaluator:
    """Evaluates records for one purpose at one moment, and keeps the batch's counts and digest."""

    def __init__(self, *, policy: engine.Policy, purpose: str, at: datetime, release_keys: bool = False):
        self.policy = policy
        self.release_keys = release_keys
        # Ids of the data keys of allowed records, each once: all a release keeps in memory.
        self.released: set[str] = set()
        self._keys: dict[Triple, str | None] = {}
        self.purpose = purpose
        self.at = at
        self.allowed = 0
        self.denied = 0
        self.by_reason: Counter[str] = Counter()
        self._digest = hashlib.sha256()
        self._grants: dict[str, engine.GrantFacts | None] = {}
        self._scopes: dict[engine.Scope, engine.Scope] = {}
        self._grant_scopes: dict[str, engine.Scope] = {}
        self._employee_scopes: dict[str, engine.Scope] = {}
        self._limits: dict[tuple[int, int, str], tuple[int | None, int]] = {}
        self._employees: dict[str, engine.EmployeeFacts | None] = {}
        # Grant id → {category: the capture times decide_use allows}; other categories: ask it.
        self._windows: dict[str, dict[str, Window]] = {}
        # (HR id, capture scope id) → {category: what the employee's facts allow}, shared by their grants.
        self._floors: dict[tuple[str, int], dict[str, engine.UseFloor | None]] = {}
        self._reason_text: dict[engine.Reason, bytes] = {}

    @property
    def records_digest(self) -> str:
        return self._digest.hexdigest()

    def summary(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "denied": self.denied, "by_reason": dict(sorted(self.by_reason.items()))}

    def _load(self, grant_ids: set[str]) -> bool:
        """Load the grants ``grant_ids`` name and their employees, where the caches lack them.

        Returns whether a cache was trimmed to make room: grants and employees
        the caller counted on may then be gone, so it loads again for its
        whole chunk.
        """
        grants, employees = self._grants, self._employees
        # Lookups, not `grant_ids - grants.keys()`: that walks the whole cache.
        missing = [grant_id for grant_id in grant_ids if grant_id not in grants]
        trimmed = _make_room(grants, len(missing), GRANT_CACHE_LIMIT)
        if trimmed:
            self._grant_scopes.clear()
            self._windows.clear()
            missing = [grant_id for grant_id in grant_ids if grant_id not in grants]
        if missing:
            found = grants_by_id(missing)
            grants.update((grant_id, found.get(grant_id)) for grant_id in missing)
        people = {grant.employee for grant_id in grant_ids if (grant := grants[grant_id]) is not None}
        absent = [hr_id for hr_id in people if hr_id not in employees]
        if _make_room(employees, len(absent), EMPLOYEE_CACHE_LIMIT):
            trimmed = True
            self._employee_scopes.clear()
            self._windows.clear()
            self._floors.clear()
            absent = [hr_id for hr_id in people if hr_id not in employees]
        if len(self._floors) > FLOOR_CACHE_LIMIT:
            # Categories come from grants and employees, whose caches are bounded; this one is kept in step.
            self._floors.clear()
        if absent:
            found_people = employees_for_use(hr_ids=absent, purpose=self.purpose)
            employees.update((hr_id, found_people.get(hr_id)) for hr_id in absent)
        return trimmed

    def _scopes_of(self, grant: engine.GrantFacts, employee: engine.EmployeeFacts) -> tuple[engine.Scope, engine.Scope]:
        """Where the grant's data was captured and where its employee works now, interned."""
        captured = self._grant_scopes.get(grant.id)
        if captured is None:
            scope = engine.capture_scope(self.policy, grant, employee)
            captured = self._grant_scopes[grant.id] = self._scopes.setdefault(scope, scope)
        current = self._employee_scopes.get(employee.hr_id)
        if current is None:
            scope = engine.current_scope(self.policy, employee, self.at)
            current = self._employee_scopes[employee.hr_id] = self._scopes.setdefault(scope, scope)
        return captured, current

    def _scoped_limits(self, captured: engine.Scope, current: engine.Scope, category: str) -> tuple[int | None, int]:
        """Retention limits, shared by every record with the same two scopes and category."""
        # Scopes are interned, so their ids are stable keys for this evaluator.
        key = (id(captured), id(current), category)
        limits = self._limits.get(key)
        if limits is None:
            limits = self._limits[key] = engine.scoped_limits(self.policy, captured, current, self.purpose, category)
        return limits

    def _limits_for(self, grant: engine.GrantFacts, employee: engine.EmployeeFacts, category: str):
        return self._scoped_limits(*self._scopes_of(grant, employee), category)

    def _windows_of(self, grant_id: str) -> dict[str, Window]:
        """Category → window of one grant, for the categories that have one: (subject, start, end, key id).

        A record naming the subject and captured in [start, end) is allowed;
        the key id (None unless keys are released) is its data key. Computed
        once per grant for all its categories from ``engine.use_window``'s
        parts and kept, so a record costs two small lookups; a category
        without a window is decided by ``engine.decide_use``. The employee's
        part of each window (its floor) is shared by every grant of theirs
        captured under the same scope.

        A grant ends at UTC midnight at the latest, so its records share one
        data key per category: a window exists only while that key is not
        destroyed. A grant spanning midnight (issued before grants ended
        there) gets no window, and each of its records is decided on its own.
        """
        windows: dict[str, Window] = {}
        self._windows[grant_id] = windows
        grant = self._grants[grant_id]
        if grant is None or grant.purpose != self.purpose:
            return windows
        employee = self._employees.get(grant.employee)
        day = grant_day(grant)
        if employee is None or day is None:
            return windows
        captured, current = self._scopes_of(grant, employee)
        key = (employee.hr_id, id(captured))
        floors = self._floors.get(key)
        if floors is None:
            floors = self._floors[key] = {}
        keys = self._keys
        for category in grant.categories:
            floor = floors.get(category, _UNSEEN)
            if floor is _UNSEEN:
                floor = floors[category] = engine.use_floor(
                    self.policy,
                    purpose=self.purpose,
                    category=category,
                    employee=employee,
                    at=self.at,
                    limits=self._scoped_limits(captured, current, category),
                )
            if floor is None or (window := engine.grant_window(grant, floor)) is None:
                continue
            # Not looked up (the cache was trimmed since): decide_use will say.
            key_id = keys.get((grant.employee, category, day), DESTROYED)
            if key_id != DESTROYED:
                windows[category] = (*window, key_id)
        return windows

    def _fetch_keys(self, triples: Iterable[Triple]) -> None:
        """Read the key states of ``triples`` the cache lacks (tombstones only, unless keys are released)."""
        cache = self._keys
        wanted = set(triples)
        # Room first, then what is missing: an entry this chunk needs is never dropped after its look-up.
        # Lookups, not `wanted - cache.keys()`: that walks the whole cache.
        missing = [triple for triple in wanted if triple not in cache]
        if _make_room(cache, len(missing), KEY_CACHE_LIMIT):
            missing = [triple for triple in wanted if triple not in cache]
        if missing:
            found = key_states(missing, key_ids=self.release_keys)
            cache.update((triple, found.get(triple)) for triple in missing)

    def _fetch_window_keys(self, grant_ids: Iterable[str]) -> None:
        """The key states of the days of the grants whose windows this chunk may build, in one query."""
        grants, purpose = self._grants, self.purpose
        triples: list[Triple] = []
        for grant_id in grant_ids:
            grant = grants.get(grant_id)
            if grant is not None and grant.purpose == purpose and (day := grant_day(grant)) is not None:
                triples.extend((grant.employee, category, day) for category in grant.categories)
        self._fetch_keys(triples)

    def evaluate(self, items: list[engine.UseRecord | InvalidRecord]) -> list[Result]:
        """Decide each item, in order, counting outcomes and hashing ids as it goes.

        A record inside its grant's window for its category (``_windows_of``)
        is allowed with one comparison; every other record goes through
        ``engine.decide_use``, which says why it is denied (``_decide_slowly``).
        """
        record_type, windows = engine.UseRecord, self._windows
        # One pass for the windows already known: a grant with windows has its
        # grant and employee loaded (trimming a cache drops the windows too),
        # so only the others need the database.
        known = [windows.get(item.grant_id) if type(item) is record_type else None for item in items]
        unknown = {
            item.grant_id
            for item, found in zip(items, known, strict=True)
            if found is None and type(item) is record_type
        }
        if unknown and self._load(unknown):
            # A cache was trimmed: what this chunk counted on may be gone.
            unknown = {item.grant_id for item in items if type(item) is record_type}
            self._load(unknown)
            known = [None] * len(items)
        if unknown:
            self._fetch_window_keys(unknown)
        windows_for, released, release = self._windows_of, self.released, self.release_keys
        results: list[Any] = []
        append = results.append
        # Positions of the records decide_use must answer; each holds its record until then.
        slow: list[int] = []
        invalid = 0
        for item, windows_of in zip(items, known, strict=True):
            if type(item) is record_type:
                if windows_of is None:
                    windows_of = windows.get(item.grant_id)
                    if windows_of is None:
                        windows_of = windows_for(item.grant_id)
                window = windows_of.get(item.category)
                if window is not None and item.subject == window[0] and window[1] <= item.captured_at < window[2]:
                    append((item.id, ()))
                    if release and window[3] is not None:
                        released.add(window[3])
                    continue
                slow.append(len(results))
                append(item)
            else:
                # The type test above is the fast one; this only tells the type checker what is left.
                assert isinstance(item, InvalidRecord)
                invalid += 1
                append((item.id, (engine.Reason(engine.Code.INVALID_RECORD, item.detail),)))
        if invalid:
            self.by_reason[engine.Code.INVALID_RECORD] += invalid
        denied = invalid + (self._decide_slowly(results, slow) if slow else 0)
        self.denied += denied
        self.allowed += len(items) - denied
        self._digest.update("".join([f"{item.id or ''}\n" for item in items]).encode())
        return results

    def _decide_slowly(self, results: list[Any], positions: list[int]) -> int:
        """Answer the records at ``positions`` of ``results`` with ``engine.decide_use``; returns how many deny.

        The engine denies a record whose day's data key is destroyed, so each
        record's (employee, category, UTC day) is looked up first, all of the
        chunk's at once, and handed to the engine in a per-chunk copy of its
        employee's facts: only the pairs this chunk needs, so memory stays bounded.
        """
        grants, employees, keys = self._grants, self._employees, self._keys
        records: list[engine.UseRecord] = [results[position] for position in positions]
        triples: list[Triple | None] = []
        for item in records:
            grant = grants[item.grant_id]
            triples.append(None if grant is None else (grant.employee, item.category, _utc_day(item.captured_at)))
        self._fetch_keys(triple for triple in triples if triple is not None)
        destroyed: dict[str, set[tuple[str, date]]] = {}
        for triple in triples:
            if triple is not None and keys.get(triple) == DESTROYED:
                destroyed.setdefault(triple[0], set()).add((triple[1], triple[2]))
        shredded = {
            hr_id: replace(facts, destroyed_keys=frozenset(pairs))
            for hr_id, pairs in destroyed.items()
            if (facts := employees.get(hr_id)) is not None
        }
        policy, purpose, at, by_reason = self.policy, self.purpose, self.at, self.by_reason
        denied = 0
        for position, item, triple in zip(positions, records, triples, strict=True):
            grant = grants[item.grant_id]
            employee: engine.EmployeeFacts | None = None
            limits = None
            if grant is not None:
                employee = shredded.get(grant.employee) or employees.get(grant.employee)
                if employee is not None:
                    limits = self._limits_for(grant, employee, item.category)
            reasons = engine.decide_use(
                policy, record=item, purpose=purpose, grant=grant, employee=employee, at=at, limits=limits
            )
            if reasons:
                denied += 1
                by_reason.update({reason.code for reason in reasons})
            elif (
                self.release_keys
                and triple is not None
                and (key_id := keys.get(triple)) is not None
                and key_id != DESTROYED
            ):
                self.released.add(key_id)
            results[position] = (item.id, reasons)
        return denied

    def result_json(self, result: Result) -> dict[str, Any]:
        record_id, reasons = result
        return {"id": record_id, "allowed": not reasons, "reasons": [reason_json(reason) for reason in reasons]}

    def result_line(self, result: Result) -> bytes:
        """One NDJSON result line; reasons repeat a lot, so their JSON is built once."""
        record_id, reasons = result
        head = b'{"id":' + orjson.dumps(record_id)
        if not reasons:
            return head + b',"allowed":true,"reasons":[]}\n'
        parts = []
        for reason in reasons:
            text = self._reason_text.get(reason)
            if text is None:
                text = orjson.dumps(reason_json(reason))
                if len(self._reason_text) < 10_000:
                    self._reason_text[reason] = text
            parts.append(text)
        return head + b',"allowed":false,"reasons":[' + b",".join(parts) + b"]}\n"
