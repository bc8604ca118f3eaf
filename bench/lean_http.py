"""A keep-alive HTTP/1.1 connection for GETs that does as little work per request as Python allows.

The standard library's ``http.client`` parses every response's headers with the ``email`` package and reads a body
through a buffered file: about 60 µs a request on this project's 2-core host, more than the cache itself spends
answering a warm read (about 40 µs). Where a benchmark measures the cache rather than its client, that overhead hides
what it measures. ``LeanHttpConnection`` sends a short request head, finds the response head's end, splits its
lines and reads the body straight into one buffer with ``recv_into``.

It sends GET and HEAD and reads bodies framed by ``Content-Length``, which is how the cache's ports and nginx answer
them. Anything else (a chunked body, a head over 64 KiB) raises ``OSError`` rather than being guessed at.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

_HEAD_END = b"\r\n\r\n"
_MOST_HEAD_BYTES = 64 * 1024
_HEAD_RECEIVE_BYTES = 4096  # a head is a few hundred bytes: the body's rest goes straight into its buffer


class LeanHttpConnection:
    """One keep-alive connection to ``host``:``port`` for GET and HEAD; not thread-safe (one request at a time).

    A connection the server closed while idle (its keep-alive timeout) is opened again for the next request, once.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 60.0) -> None:
        self._address = (host, port)
        self._timeout = timeout
        self._socket: socket.socket | None = None
        self._pending = bytearray()  # bytes received past the last response (none, unless the server misbehaves)
        self._request_head = f"Host: {host}:{port}\r\n\r\n".encode()

    def request(
        self, method: str, target: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytearray]:
        """The status, headers (names in lower case) and body of ``method target`` (path and query, encoded).

        ``method`` is ``GET`` or ``HEAD`` (whose answer has no body). Raises ``OSError`` if the connection fails,
        the server closes it mid-answer or answers a GET without a ``Content-Length``.
        """
        if method not in ("GET", "HEAD"):
            raise ValueError(f"this client sends GET and HEAD, not {method}")
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        request = f"{method} {target} HTTP/1.1\r\n{extra}".encode("ascii") + self._request_head
        reused = self._socket is not None
        try:
            return self._exchange(request, method == "HEAD")
        except _ClosedWhileIdleError:
            self.close()
            if not reused:
                host, port = self._address
                raise OSError(f"{host}:{port} closed the connection without an answer") from None
            return self._exchange(request, method == "HEAD")

    def get(self, target: str) -> tuple[int, bytearray]:
        """The status and body of ``GET target``; see ``request``."""
        status, _, body = self.request("GET", target)
        return status, body

    def close(self) -> None:
        """Close the socket; the next ``get`` opens a new one."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._pending.clear()

    def __enter__(self) -> LeanHttpConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self._address, timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket = sock
        return sock

    def _exchange(self, request: bytes, head_only: bool) -> tuple[int, dict[str, str], bytearray]:
        sock = self._socket or self._connect()
        try:
            sock.sendall(request)
            status, headers = self._head(sock)
        except (BrokenPipeError, ConnectionResetError) as error:
            if self._pending:
                self.close()
                raise
            raise _ClosedWhileIdleError from error
        length = 0 if head_only or status in (204, 304) else _body_length(headers)
        if length is None:
            self.close()
            raise OSError("a response without Content-Length: this client reads Content-Length bodies only")
        body = bytearray(length)
        have = min(len(self._pending), length)
        body[:have] = self._pending[:have]
        del self._pending[:have]
        view = memoryview(body)
        while have < length:
            received = sock.recv_into(view[have:])
            if received == 0:
                self.close()
                raise OSError(f"the server closed the connection {length - have} bytes before the body's end")
            have += received
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _head(self, sock: socket.socket) -> tuple[int, dict[str, str]]:
        """Receive the response head: its status and headers (names in lower case)."""
        pending = self._pending
        searched = 0
        while (end := pending.find(_HEAD_END, searched)) < 0:
            if len(pending) > _MOST_HEAD_BYTES:
                self.close()
                raise OSError(f"a response head over {_MOST_HEAD_BYTES} bytes")
            searched = max(0, len(pending) - len(_HEAD_END) + 1)
            chunk = sock.recv(_HEAD_RECEIVE_BYTES)
            if not chunk:
                if not pending:
                    raise _ClosedWhileIdleError
                self.close()
                raise OSError("the server closed the connection in the middle of a response head")
            pending += chunk
        lines = bytes(pending[:end]).decode("latin-1").split("\r\n")
        del pending[: end + len(_HEAD_END)]
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            self.close()
            raise OSError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
            headers["connection"] = "close"
        return int(code), headers


def _body_length(headers: Mapping[str, str]) -> int | None:
    """The body's length by ``Content-Length``; None if the body is framed otherwise (chunked, or to the close)."""
    if "transfer-encoding" in headers:
        return None
    length = headers.get("content-length", "")
    return int(length) if length.isdigit() else None


class _ClosedWhileIdleError(OSError):
    """The server closed the connection before sending a byte of the answer (as at its keep-alive timeout)."""
