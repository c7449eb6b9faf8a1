"""The transport's failures: an answer cut short is a network failure, not a server error."""

from __future__ import annotations

import socket
import threading

import pytest
from consentry_client.transport import ApiError, Transport, TransportError


def _server(answer: bytes) -> str:
    """A one-shot HTTP server that reads a request, sends ``answer`` and closes the connection."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"


@pytest.mark.parametrize(
    "answer",
    [
        HEAD + b"\r\n",
        HEAD + b'\r\n{"decision_id": "d_1", "categ',
        HEAD + b"Content-Length: 40\r\n\r\n" + b'{"decision_id": "d_1"',
        b"HTTP/1.1 200 OK\r\nContent-Ty",
    ],
    ids=["no body", "body cut short", "shorter than its length", "headers cut short"],
)
def test_an_answer_cut_short_is_a_transport_error(answer):
    transport = Transport(_server(answer), "cst_device_x", timeout=5)
    with pytest.raises(TransportError):
        transport.post_json("/api/v1/decisions/capture", {"purpose": "ai_agent_training"})


def test_a_complete_answer_is_read_and_an_error_status_is_an_api_error():
    body = b'{"decision_id": "d_1"}'
    ok = HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
    assert Transport(_server(ok), "t", timeout=5).post_json("/x", {}) == {"decision_id": "d_1"}
    problem = b'{"code": "token_expired", "detail": "expired"}'
    refused = (
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/problem+json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n" % len(problem) + problem
    )
    with pytest.raises(ApiError) as caught:
        Transport(_server(refused), "t", timeout=5).post_json("/x", {})
    assert caught.value.status == 401 and caught.value.code == "token_expired"
