"""The usage gate: only records the use decision allows get through (API.md, Use decision).

Records stream to ``POST /api/v1/decisions/use`` as NDJSON in batches of
``batch_size``; each batch's body is sent while its answers are read (a
sender thread), so neither side's buffers can fill and stall. A batch counts
only once its summary line arrived: a stream that breaks before it denies
the whole batch, and the batch is retried with the same ``Idempotency-Key``
(``retries`` times, on network errors, 429 and 5xx). Memory stays bounded by
one batch however many records go through.

``filter`` yields the allowed records themselves; ``decide`` yields every
record with its ``UseResult`` (reasons for the denied ones); ``filter_frame``
and ``filter_table`` do the same for a pandas DataFrame or a pyarrow Table
(imported only when used).

``decrypt`` takes encrypted record envelopes (``crypto.py``), asks with
``release_keys=true`` and yields the plaintext of the allowed records only.
The keys arrive with the batch's answers (a ``{"keys": …}`` line or the
summary line), live in memory for that batch alone and are never written
anywhere. A record is decrypted only if the server allowed it *and* released
its key: a key released for one record of a day never opens another record
of that day that was denied. Three client-side reasons join the server's for
records the server allowed but that cannot be opened: ``key_not_released``,
``invalid_envelope`` and ``record_tampered``.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from consentry_client.crypto import (
    DataKey,
    MalformedEnvelope,
    RecordCryptoError,
    decrypt_blob,
    decrypt_record,
    parse_envelope,
)
from consentry_client.transport import (
    ApiError,
    ConsentryError,
    Transport,
    TransportError,
    api_error,
    iter_lines,
)

logger = logging.getLogger(__name__)

USE_PATH = "/api/v1/decisions/use"
NDJSON = "application/x-ndjson"
RECORD_FIELDS = ("id", "subject", "category", "captured_at", "grant_id")
# Reasons the client adds when an allowed record cannot be opened.
KEY_NOT_RELEASED = "key_not_released"
INVALID_ENVELOPE = "invalid_envelope"
RECORD_TAMPERED = "record_tampered"


class UsageGateError(ConsentryError):
    """A batch could not be decided (after retries): none of its records may be used."""


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class UseResult:
    id: str | None
    allowed: bool
    reasons: tuple[Reason, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(reason.code for reason in self.reasons)


@dataclass
class UsageSummary:
    """Totals over everything a gate decided so far."""

    allowed: int = 0
    denied: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    batches: list[str] = field(default_factory=list)


def _wire(record: Any) -> dict[str, Any]:
    """A record as the use decision wants it: the five fields, times in RFC 3339."""
    if isinstance(record, Mapping):
        values = {name: record.get(name) for name in RECORD_FIELDS}
    else:
        values = {name: getattr(record, name, None) for name in RECORD_FIELDS}
    moment = values["captured_at"]
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # pandas gives naive UTC timestamps
        values["captured_at"] = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    elif moment is not None and not isinstance(moment, str):
        values["captured_at"] = str(moment)
    return values


class UsageGate:
    """Decide records for one purpose with a pipeline token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        purpose: str,
        batch_size: int = 5000,
        retries: int = 3,
        timeout: float = 60.0,
        transport: Transport | None = None,
    ) -> None:
        if not 1 <= batch_size <= 100_000:
            raise ValueError("batch_size must be between 1 and 100000")
        self.purpose = purpose
        self.batch_size = batch_size
        self.retries = retries
        self._transport = transport or Transport(base_url, token, timeout=timeout)
        self.summary = UsageSummary()

    # Public API -----------------------------------------------------------------------------

    def decide(self, records: Iterable[Any]) -> Iterator[tuple[Any, UseResult]]:
        """Every record with its result, in input order, batch by batch."""
        iterator = iter(records)
        while batch := list(islice(iterator, self.batch_size)):
            results, _ = self._decide_batch(batch)
            yield from zip(batch, results, strict=True)

    def filter(self, records: Iterable[Any], *, denied: list[tuple[Any, UseResult]] | None = None) -> Iterator[Any]:
        """Only the records that may be used; the others go to ``denied`` (when given) with their reasons."""
        for record, result in self.decide(records):
            if result.allowed:
                yield record
            elif denied is not None:
                denied.append((record, result))

    def decrypt(
        self,
        envelopes: Iterable[Mapping[str, Any]],
        *,
        denied: list[tuple[Any, UseResult]] | None = None,
        blobs: str | os.PathLike[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The plaintext of the envelopes that may be used, in input order; the others go to ``denied``.

        ``blobs`` is the folder record ``file`` references are relative to (the
        agent's spool): when given, each opened record with a ``data.file``
        also gets its decrypted bytes as ``blob``.
        """
        iterator = iter(envelopes)
        while batch := list(islice(iterator, self.batch_size)):
            results, keys = self._decide_batch(batch, release_keys=True)
            try:
                opened = list(open_allowed(batch, results, keys, blobs=Path(blobs) if blobs is not None else None))
            finally:
                keys.clear()  # the batch's keys go as soon as its records are open
            for (envelope, result, plaintext), answer in zip(opened, results, strict=True):
                if plaintext is not None:
                    yield plaintext
                    continue
                if answer.allowed:
                    self._downgrade(result)
                if denied is not None:
                    denied.append((envelope, result))

    def mask(self, records: Iterable[Any]) -> list[bool]:
        return [result.allowed for _, result in self.decide(records)]

    def filter_frame(self, frame: Any, *, columns: Mapping[str, str] | None = None) -> Any:
        """The rows of a pandas DataFrame that may be used (``columns`` maps wire field → column name)."""
        names = {name: (columns or {}).get(name, name) for name in RECORD_FIELDS}
        rows = (
            {name: row[index] for index, name in enumerate(RECORD_FIELDS)}
            for row in frame[[names[name] for name in RECORD_FIELDS]].itertuples(index=False, name=None)
        )
        return frame[self.mask(rows)]

    def filter_table(self, table: Any, *, columns: Mapping[str, str] | None = None) -> Any:
        """The rows of a pyarrow Table that may be used, batch by batch (``columns`` as for frames)."""
        import pyarrow as pa

        names = [(columns or {}).get(name, name) for name in RECORD_FIELDS]
        keep: list[bool] = []
        for batch in table.select(names).to_batches(max_chunksize=self.batch_size):
            columns = batch.to_pydict().values()
            rows = (dict(zip(RECORD_FIELDS, values, strict=True)) for values in zip(*columns, strict=True))
            keep.extend(self.mask(rows))
        return table.filter(pa.array(keep, type=pa.bool_()))

    # One batch ------------------------------------------------------------------------------

    def _decide_batch(
        self, batch: list[Any], *, release_keys: bool = False
    ) -> tuple[list[UseResult], dict[str, DataKey]]:
        """The batch's results, and the keys released for it (none unless ``release_keys``)."""
        key = f"use-{uuid.uuid4()}"
        body = [json.dumps(_wire(record), separators=(",", ":"), default=str).encode() + b"\n" for record in batch]
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                results, summary, keys = self._send(body, key, release_keys=release_keys)
            except ApiError as exc:
                if (exc.status != 429 and exc.status < 500) or attempt == self.retries:
                    raise UsageGateError(f"use decision refused: {exc}") from exc
                time.sleep(exc.retry_after or delay)
            except (TransportError, UsageGateError) as exc:
                if attempt == self.retries:
                    raise UsageGateError(f"use decision failed after {attempt + 1} attempts: {exc}") from exc
                time.sleep(delay)
            else:
                if len(results) != len(batch):
                    raise UsageGateError(f"{len(results)} answers for {len(batch)} records")
                self._count(results, summary)
                return results, keys
            logger.warning("retrying a use batch (attempt %d, key %s)", attempt + 2, key)
            delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")

    def _send(
        self, body: list[bytes], key: str, *, release_keys: bool = False
    ) -> tuple[list[UseResult], dict[str, Any], dict[str, DataKey]]:
        conn = self._transport.connection()
        params = {"purpose": self.purpose, "release_keys": "true" if release_keys else None}
        path = self._transport.url(USE_PATH, params)
        failure: list[BaseException] = []
        try:
            conn.putrequest("POST", path, skip_accept_encoding=True)
            headers = self._transport.headers(
                {
                    "Content-Type": NDJSON,
                    "Accept": NDJSON,
                    "Idempotency-Key": key,
                    # A length, not chunked encoding: not every WSGI server reads chunked request bodies.
                    "Content-Length": str(sum(map(len, body))),
                }
            )
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()

            def send() -> None:
                # The body goes out while the answers come back: neither side's buffers can fill up.
                try:
                    for block in _blocks(body):
                        conn.send(block)
                except OSError as exc:
                    failure.append(exc)

            sender = threading.Thread(target=send, name="consentry-use-sender", daemon=True)
            sender.start()
            raw = conn.getresponse()
            if raw.status != 200:
                raise api_error(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
            results, summary, keys = [], None, {}
            for line in iter_lines(raw):
                item = json.loads(line)
                if "summary" in item:
                    summary = item
                    if release_keys:
                        # Keys may ride on the summary line, beside or inside the summary.
                        inner = item["summary"] if isinstance(item["summary"], Mapping) else {}
                        keys.update(released_keys(item.get("keys") or inner.get("keys")))
                    break
                if "keys" in item and "id" not in item:
                    if release_keys:
                        keys.update(released_keys(item["keys"]))
                    continue
                if "error" in item:
                    raise UsageGateError(f"the stream broke off: {item['error']}")
                results.append(
                    UseResult(
                        id=item.get("id"),
                        allowed=bool(item.get("allowed")),
                        reasons=tuple(Reason(r.get("code", ""), r.get("detail", "")) for r in item.get("reasons", ())),
                    )
                )
            sender.join(timeout=self._transport.timeout)
            if summary is None:
                raise UsageGateError("the stream ended without its summary line")
            return results, summary, keys
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise TransportError(f"use decision stream: {failure[0] if failure else exc}") from exc
        finally:
            conn.close()

    def _downgrade(self, result: UseResult) -> None:
        """The server allowed a record the client could not open: count it as denied."""
        self.summary.allowed -= 1
        self.summary.denied += 1
        for code in set(result.codes):
            self.summary.by_reason[code] = self.summary.by_reason.get(code, 0) + 1

    def _count(self, results: list[UseResult], summary: Mapping[str, Any]) -> None:
        for result in results:
            if result.allowed:
                self.summary.allowed += 1
            else:
                self.summary.denied += 1
                for code in set(result.codes):
                    self.summary.by_reason[code] = self.summary.by_reason.get(code, 0) + 1
        if summary.get("batch_id"):
            self.summary.batches.append(summary["batch_id"])


def released_keys(wire: Any) -> dict[str, DataKey]:
    """``{"<key_id>": "<base64 key>"}`` as keys; a malformed one is left out (its records stay closed)."""
    keys: dict[str, DataKey] = {}
    if not isinstance(wire, Mapping):
        return keys
    for key_id, value in wire.items():
        try:
            keys[key_id] = DataKey.from_wire(key_id, value)
        except (TypeError, ValueError):
            logger.warning("a released data key (%s) is malformed: its records stay closed", key_id)
    return keys


def _refused(code: str, detail: str) -> UseResult:
    return UseResult(None, False, (Reason(code, detail),))


def open_allowed(
    envelopes: list[Any], results: list[UseResult], keys: Mapping[str, DataKey], *, blobs: Path | None = None
) -> Iterator[tuple[Any, UseResult, dict[str, Any] | None]]:
    """Each envelope with its result and, only when the server allowed it and its key came, its plaintext.

    An allowed envelope that cannot be opened comes back with a client-side
    denial (``key_not_released``, ``invalid_envelope``, ``record_tampered``)
    in place of its result.
    """
    for envelope, result in zip(envelopes, results, strict=True):
        if not result.allowed:
            yield envelope, result, None
            continue
        try:
            checked = parse_envelope(envelope)
        except MalformedEnvelope as exc:
            yield envelope, _with_id(_refused(INVALID_ENVELOPE, str(exc)), result), None
            continue
        key = keys.get(checked.key_id)
        if key is None:
            detail = f"the server released no key {checked.key_id} for this record"
            yield envelope, _with_id(_refused(KEY_NOT_RELEASED, detail), result), None
            continue
        try:
            plaintext = decrypt_record(checked, key)
            if blobs is not None and isinstance(plaintext.get("data"), Mapping) and plaintext["data"].get("file"):
                plaintext["blob"] = _open_blob(blobs, plaintext, key)
        except MalformedEnvelope as exc:
            yield envelope, _with_id(_refused(INVALID_ENVELOPE, str(exc)), result), None
            continue
        except RecordCryptoError as exc:
            yield envelope, _with_id(_refused(RECORD_TAMPERED, str(exc)), result), None
            continue
        except OSError as exc:
            yield envelope, _with_id(_refused(INVALID_ENVELOPE, f"blob unreadable: {exc}"), result), None
            continue
        yield envelope, result, plaintext


def _with_id(refusal: UseResult, result: UseResult) -> UseResult:
    return UseResult(result.id, refusal.allowed, refusal.reasons)


def _open_blob(folder: Path, record: Mapping[str, Any], key: DataKey) -> bytes:
    path = (folder / str(record["data"]["file"])).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise MalformedEnvelope("the record's file lies outside the blob folder")
    return decrypt_blob(
        path.read_bytes(), key, record_id=record["id"], subject=record["subject"], category=record["category"]
    )


def _blocks(lines: list[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    block: list[bytes] = []
    length = 0
    for line in lines:
        block.append(line)
        length += len(line)
        if length >= size:
            yield b"".join(block)
            block, length = [], 0
    if block:
        yield b"".join(block)
