"""The use decision over a batch or a stream of records, in constant memory.

Records are validated one by one (a bad record is denied with
``invalid_record`` and never fails the batch), grouped into chunks, and each
chunk loads the grants and employees it names with one query each. Grants
never change, and an employee's status and consent are read the first time
the stream meets them, so each is read at most once per request; both caches
are bounded, which keeps memory flat however long the stream.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import islice
from typing import Any, BinaryIO

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
# Data-key look-ups ((employee, category, day) → key id or destroyed), about 150 bytes each.
KEY_CACHE_LIMIT = 200_000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    id: str | None
    detail: str


LINE_TOO_LONG = InvalidRecord(None, f"The line is longer than {MAX_LINE_BYTES} bytes.")


def parse_time(value: Any) -> datetime | str:
    """An aware datetime from RFC 3339 text, or why it is not one."""
    if type(value) is not str or len(value) > 40:
        return "captured_at must be an RFC 3339 timestamp string."
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return "captured_at is not an RFC 3339 timestamp."
    if moment.tzinfo is None:
        return "captured_at needs a time zone (e.g. 2026-11-20T14:02:11Z)."
    if not EARLIEST <= moment < LATEST:
        return "captured_at is not between 2000 and 2100."
    return moment


def _text_ok(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_FIELD_LENGTH


def parse_record(value: Any) -> engine.UseRecord | InvalidRecord:
    """Validate one record: an object with string id, subject, category, grant_id and captured_at."""
    if type(value) is not dict:
        return InvalidRecord(None, "A record must be a JSON object.")
    get = value.get
    record_id = get("id")
    if type(record_id) is not str or not 0 < len(record_id) <= MAX_ID_LENGTH:
        return InvalidRecord(None, f"id must be a string of 1 to {MAX_ID_LENGTH} characters.")
    subject, category, grant_id = get("subject"), get("category"), get("grant_id")
    # One combined test on the common path; the slow path says which field is wrong.
    if not (
        type(subject) is str
        and type(category) is str
        and type(grant_id) is str
        and 0 < len(subject) <= MAX_FIELD_LENGTH
        and 0 < len(category) <= MAX_FIELD_LENGTH
        and 0 < len(grant_id) <= MAX_FIELD_LENGTH
    ):
        missing = [name for name in ("subject", "category", "grant_id") if not _text_ok(get(name))]
        return InvalidRecord(record_id, f"{', '.join(missing)}: must be strings of 1 to {MAX_FIELD_LENGTH} characters.")
    captured_at = parse_time(get("captured_at"))
    if type(captured_at) is str:
        return InvalidRecord(record_id, captured_at)
    return engine.UseRecord(record_id, subject, category, captured_at, grant_id)


def parse_line(line: bytes) -> engine.UseRecord | InvalidRecord:
    # orjson: strict JSON and UTF-8, a nesting limit instead of a RecursionError,
    # and about four times faster than json on a million lines.
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return InvalidRecord(None, "The line is not valid JSON (or not UTF-8).")
    return parse_record(value)


def ndjson_lines(stream: BinaryIO) -> Iterator[bytes | InvalidRecord]:
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
        self._reason_text: dict[engine.Reason, bytes] = {}

    @property
    def records_digest(self) -> str:
        return self._digest.hexdigest()

    def summary(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "denied": self.denied, "by_reason": dict(sorted(self.by_reason.items()))}

    def _load(self, records: list[engine.UseRecord]) -> None:
        """Load the grants and employees this chunk names and the caches lack."""
        needed = {record.grant_id for record in records}
        if _make_room(self._grants, len(needed - self._grants.keys()), GRANT_CACHE_LIMIT):
            self._grant_scopes.clear()
        missing = needed - self._grants.keys()
        if missing:
            found = grants_by_id(missing)
            self._grants.update((grant_id, found.get(grant_id)) for grant_id in missing)
        people = {grant.employee for grant_id in needed if (grant := self._grants[grant_id]) is not None}
        if _make_room(self._employees, len(people - self._employees.keys()), EMPLOYEE_CACHE_LIMIT):
            self._employee_scopes.clear()
        absent = people - self._employees.keys()
        if absent:
            found_people = employees_for_use(hr_ids=absent, purpose=self.purpose)
            self._employees.update((hr_id, found_people.get(hr_id)) for hr_id in absent)

    def _limits_for(self, grant: engine.GrantFacts, employee: engine.EmployeeFacts, category: str):
        """Retention limits, shared by every record with the same two scopes and category."""
        captured = self._grant_scopes.get(grant.id)
        if captured is None:
            scope = engine.capture_scope(self.policy, grant, employee)
            captured = self._grant_scopes[grant.id] = self._scopes.setdefault(scope, scope)
        current = self._employee_scopes.get(employee.hr_id)
        if current is None:
            scope = engine.current_scope(self.policy, employee, self.at)
            current = self._employee_scopes[employee.hr_id] = self._scopes.setdefault(scope, scope)
        # Scopes are interned above, so their ids are stable keys for this evaluator.
        key = (id(captured), id(current), category)
        limits = self._limits.get(key)
        if limits is None:
            limits = self._limits[key] = engine.scoped_limits(self.policy, captured, current, self.purpose, category)
        return limits

    def _key_triples(self, records: list[engine.UseRecord]) -> tuple[list[Triple | None], dict[str, frozenset]]:
        """Each record's (employee, category, UTC day), and per employee the destroyed (category, day) pairs.

        The engine denies a record whose day's key is destroyed; only the pairs
        this chunk needs are handed to it, so memory stays bounded.
        """
        grants, cache = self._grants, self._keys
        triples: list[Triple | None] = []
        for record in records:
            grant = grants[record.grant_id]
            triples.append(
                None if grant is None else (grant.employee, record.category, record.captured_at.astimezone(UTC).date())
            )
        wanted = {triple for triple in triples if triple is not None}
        # Room first, then what is missing: an entry this chunk needs is never dropped after its look-up.
        _make_room(cache, len(wanted - cache.keys()), KEY_CACHE_LIMIT)
        missing = wanted - cache.keys()
        if missing:
            found = key_states(missing)
            cache.update((triple, found.get(triple)) for triple in missing)
        destroyed: dict[str, set] = {}
        for triple in wanted:
            if cache.get(triple) == DESTROYED:
                destroyed.setdefault(triple[0], set()).add((triple[1], triple[2]))
        return triples, {hr_id: frozenset(pairs) for hr_id, pairs in destroyed.items()}

    def evaluate(self, items: list[engine.UseRecord | InvalidRecord]) -> list[Result]:
        """Decide each item, in order, counting outcomes and hashing ids as it goes."""
        records = [item for item in items if type(item) is engine.UseRecord]
        self._load(records)
        triples, destroyed = self._key_triples(records)
        policy, purpose, at = self.policy, self.purpose, self.at
        grants, employees, by_reason = self._grants, self._employees, self.by_reason
        decide, limits_for = engine.decide_use, self._limits_for
        keys, released, release = self._keys, self.released, self.release_keys
        # This chunk's view of employees whose data keys were destroyed.
        shredded = {
            hr_id: replace(facts, destroyed_keys=destroyed[hr_id])
            for hr_id in destroyed
            if (facts := employees.get(hr_id)) is not None
        }
        results: list[Result] = []
        denied = 0
        position = 0
        for item in items:
            if type(item) is InvalidRecord:
                reasons: tuple[engine.Reason, ...] = (engine.Reason(engine.Code.INVALID_RECORD, item.detail),)
            else:
                triple = triples[position]
                position += 1
                grant = grants[item.grant_id]
                employee = None
                if grant is not None:
                    employee = shredded.get(grant.employee) or employees.get(grant.employee)
                limits = limits_for(grant, employee, item.category) if employee is not None else None
                reasons = decide(
                    policy, record=item, purpose=purpose, grant=grant, employee=employee, at=at, limits=limits
                )
                if release and not reasons:
                    key_id = keys.get(triple)
                    if key_id is not None and key_id != DESTROYED:
                        released.add(key_id)
            if reasons:
                denied += 1
                by_reason.update({reason.code for reason in reasons})
            results.append((item.id, reasons))
        self.denied += denied
        self.allowed += len(items) - denied
        self._digest.update("".join(f"{item.id or ''}\n" for item in items).encode())
        return results

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
