"""HTTP to a Consentry server with a bearer token, on the standard library alone.

One connection per request: the gates make a few calls a minute, and a fresh
connection per call keeps every thread independent. Errors come back as
``ApiError`` carrying the RFC 9457 problem details; network failures as
``TransportError``. Callers treat both as *deny* (API.md, Conventions).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

USER_AGENT = "consentry-client/0.1"


class ConsentryError(Exception):
    """Anything that stops the client from getting an answer: treat it as a denial."""


class TransportError(ConsentryError):
    """The server could not be reached, or the connection broke or timed out."""


class ApiError(ConsentryError):
    """The server answered with an error status (RFC 9457 problem details when it could)."""

    def __init__(self, status: int, problem: Mapping[str, Any], headers: Mapping[str, str]):
        self.status = status
        self.problem = dict(problem)
        self.code = str(problem.get("code") or status)
        self.headers = dict(headers)
        super().__init__(f"{status} {self.code}: {problem.get('detail') or problem.get('title') or ''}".strip())

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body as JSON; ``TransportError`` when it is not (an answer cut short by a broken connection)."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            # Without a Content-Length, a connection cut mid-answer ends the body early and silently.
            raise TransportError(f"the answer ({len(self.body)} bytes) is not complete JSON: {exc}") from exc


class Transport:
    """Requests to one server with one token. Thread-safe: nothing is shared between calls."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        verify_tls: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """``headers`` go with every request (say, what a TLS-terminating proxy in between would add)."""
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port]: {base_url!r}")
        if not token:
            raise ValueError("a bearer token is required")
        self.base_url = base_url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path
        self._token = token
        self._extra = dict(headers or {})
        self.timeout = timeout
        self._tls = ssl.create_default_context() if self._https else None
        if self._tls is not None and not verify_tls:
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        timeout = self.timeout if timeout is None else timeout
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._tls)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        query = f"?{urlencode({k: v for k, v in params.items() if v is not None})}" if params else ""
        return f"{self._prefix}{path}{query}"

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._token}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            **self._extra,
            **(extra or {}),
        }

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        authenticated: bool = True,
        opened: Callable[[http.client.HTTPConnection], None] | None = None,
    ) -> Response:
        """Send one request and read the whole answer; ``ApiError`` for any status but 2xx.

        ``opened`` receives the connection before the request goes out, so
        another thread can cut a long poll short (``abort``).
        """
        body = None if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
        sent = self.headers(headers) if authenticated else {"User-Agent": USER_AGENT, **self._extra, **(headers or {})}
        if body is not None:
            sent["Content-Type"] = "application/json"
        conn = self.connection(timeout)
        try:
            if opened is not None:
                # Connected first: a connection without its socket yet could not be cut short.
                conn.connect()
                opened(conn)
            conn.request(method, self.url(path, params), body=body, headers=sent)
            raw = conn.getresponse()
            response = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{method} {path}: {exc}") from exc
        finally:
            conn.close()
        if not 200 <= response.status < 300:
            raise api_error(response.status, response.headers, response.body)
        return response

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post_json(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, json_body=body, **kwargs).json()


def api_error(status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
    try:
        problem = json.loads(body)
        if not isinstance(problem, dict):
            problem = {"detail": str(problem)}
    except ValueError:
        problem = {"detail": body[:200].decode(errors="replace")}
    return ApiError(status, problem, headers)


def iter_lines(raw: http.client.HTTPResponse) -> Iterator[bytes]:
    """Lines of a streamed answer as they arrive (NDJSON, Server-Sent Events)."""
    while True:
        line = raw.readline()
        if not line:
            return
        yield line


def abort(conn: http.client.HTTPConnection | None) -> None:
    """Break a connection another thread is blocked on (closing alone would not wake it)."""
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
