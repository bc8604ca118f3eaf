"""bench.lean_http against a real HTTP/1.1 server on loopback (the standard library's, one thread a connection)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.lean_http import LeanHttpConnection
from infra.ports import LOOPBACK

BODY = bytes(range(256)) * 1024  # 256 KiB: more than one receive


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append((self.command, self.path, self.headers.get("Range"), self.client_address))
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"3\r\nabc\r\n0\r\n\r\n")
            return
        if self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(BODY[:1000])
            self.close_connection = True
            return
        body = BODY if self.command == "GET" else b""
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("X-Path", self.path)
        if self.path == "/close":
            self.send_header("Connection", "close")
        self.close_connection = self.path in ("/close", "/silent-close")
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, *_: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[tuple[str, str, str | None, tuple[str, int]]]


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server((LOOPBACK, 0), _Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _connection(server: _Server) -> LeanHttpConnection:
    return LeanHttpConnection(LOOPBACK, server.server_address[1], timeout=10)


def test_gets_and_heads_share_one_kept_alive_connection(server):
    with _connection(server) as connection:
        assert connection.get("/a?x=1") == (200, bytearray(BODY))
        status, headers, body = connection.request("HEAD", "/b", {"Range": "bytes=0-9"})
        assert (status, headers["content-length"], headers["x-path"], body) == (200, str(len(BODY)), "/b", b"")
        assert connection.get("/c")[1] == BODY

    assert [(method, path, rng) for method, path, rng, _ in server.requests] == [
        ("GET", "/a?x=1", None),
        ("HEAD", "/b", "bytes=0-9"),
        ("GET", "/c", None),
    ]
    assert len({client for *_, client in server.requests}) == 1


def test_a_connection_the_server_closed_is_opened_again(server):
    with _connection(server) as connection:
        assert connection.get("/close")[1] == BODY  # the server says it closes: the client drops the socket
        assert connection.get("/silent-close")[1] == BODY  # it closes without saying so, as at a keep-alive timeout
        assert connection.get("/after")[1] == BODY  # the request is sent again on a new socket
    assert len({client for *_, client in server.requests}) == 3


def test_bodies_it_cannot_frame_and_short_bodies_raise_oserror(server):
    with _connection(server) as connection:
        with pytest.raises(OSError, match="Content-Length bodies only"):
            connection.get("/chunked")
        with pytest.raises(OSError, match="bytes before the body's end"):
            connection.get("/truncated")
        assert connection.get("/fine") == (200, bytearray(BODY))  # and the next request works on a new socket


def test_only_get_and_head_are_sent(server):
    with _connection(server) as connection, pytest.raises(ValueError, match="GET and HEAD"):
        connection.request("POST", "/")
    assert server.requests == []
