"""Idempotent writes: the ``Idempotency-Key`` header (API.md, Conventions).

A write sent with a key runs at most once per caller and key. The key's row
is inserted in the same transaction as the write and filled with the write's
response before commit:

- a retry that arrives while the first attempt runs blocks on the unique
  index (PostgreSQL; SQLite serialises writers) and, once the first commits,
  replays its stored response, so ten concurrent retries make one change;
- if the first attempt fails unexpectedly, its row rolls back with it and
  the retry runs afresh, as the client expects;
- a refused write (4xx) rolls its work back but keeps its answer, so a
  retry gets the same refusal;
- the same key with a different method, path or body is a 422.

Keys are scoped per caller: a person (session or user token) or a machine
token. They are kept at least ``CONSENTRY_IDEMPOTENCY_TTL_HOURS`` and purged
by a Celery beat task.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from consentry.errors import DomainError
from consentry.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Response headers worth replaying; the rest are recomputed by the framework.
_STORED_HEADERS = ("Location",)


class KeyReused(DomainError):
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused for a different request"


def caller_of(request: Request) -> str | None:
    """Whose keys these are: the person, whatever credential they use, or the machine token."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    token_id = getattr(request.auth, "pk", None)
    return f"token:{token_id}" if token_id is not None else None


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(32 < ord(ch) < 127 for ch in key):
        raise DomainError(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters without spaces.",
            code="invalid_idempotency_key",
            errors={HEADER: "Invalid key."},
        )


def fingerprint(request: Request) -> str:
    """SHA-256 over method, path and canonical JSON body: key order and spacing do not count."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    text = f"{request.method}\n{request.path}\n{body}"
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.body, status=record.status_code, headers={**record.headers, REPLAYED_HEADER: "true"})
    if record.content_type:
        response.content_type = record.content_type
    return response


def _store(record: IdempotencyRecord, response: Response) -> None:
    data = response.data
    record.status_code = response.status_code
    # Stored as the client saw it (dates as text, decimals as strings).
    record.body = None if data is None else json.loads(JSONRenderer().render(data))
    record.content_type = response.content_type or ""
    record.headers = {name: response[name] for name in _STORED_HEADERS if response.has_header(name)}
    record.save(update_fields=["status_code", "body", "content_type", "headers"])


class _Refused(Exception):
    """Carries a 4xx answer out of the write's savepoint so its work rolls back."""

    def __init__(self, response: Response):
        self.response = response


def run_once(*, request: Request, key: str, run: Callable[[], Response]) -> Response:
    """Run ``run`` once for this caller and key, or replay the response of the run that did."""
    caller = caller_of(request)
    if caller is None:
        # Writes need a caller; an anonymous request is refused before it gets here.
        return run()
    _check_key(key)
    # Only a hand-built HttpRequest lacks a method; one from the handler always has it.
    assert request.method is not None
    digest = fingerprint(request)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    caller=caller,
                    key=key,
                    fingerprint=digest,
                    method=request.method,
                    path=request.path[:500],
                    created_at=timezone.now(),
                )
        except IntegrityError:
            record = None
        if record is None:
            # The first attempt committed (we waited for it): answer as it did.
            first = IdempotencyRecord.objects.get(caller=caller, key=key)
            if first.fingerprint != digest:
                raise KeyReused(
                    f"This {HEADER} was used for a different request; use a new key for a new request.",
                    errors={HEADER: "Already used with another method, path or body."},
                )
            return _replay(first)
        try:
            with transaction.atomic():
                response = run()
                if 400 <= response.status_code < 500:
                    raise _Refused(response)
        except _Refused as refused:
            response = refused.response
        if response.status_code >= 500:
            # Not an answer worth keeping: forget the key so a retry runs again.
            transaction.set_rollback(True)
            return response
        _store(record, response)
    return response


def idempotent(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate a DRF view's write handler to honour ``Idempotency-Key``.

    Runs after authentication, permission and throttle checks (the key is the
    caller's), and turns the handler's exceptions into the problem responses
    they would have become anyway, so refusals can be stored and replayed.
    """

    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)

        def run() -> Response:
            try:
                return handler(view, request, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - handle_exception re-raises what it cannot answer
                return view.handle_exception(exc)

        return run_once(request=request, key=key, run=run)

    return wrapper


def idempotency_purge(*, now=None) -> int:
    """Delete keys older than the retention period; returns how many went."""
    hours = settings.CONSENTRY_IDEMPOTENCY_TTL_HOURS
    cutoff = (now or timezone.now()) - timedelta(hours=hours)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
