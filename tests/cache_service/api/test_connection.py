"""The one place the cache relies on aiohttp's insides (``api.connection``) still fits the installed aiohttp.

If an aiohttp release renames or repurposes what ``ApiConnection`` reads, these tests fail here, by name, instead of
warm reads quietly going back to the slow path (or, worse, being answered while aiohttp is mid-request). The private
attributes are checked for their shape, and then a real port opened by ``serve`` shows the behaviour built on them:
an idle connection is answered early, a busy one or a split request is left to aiohttp, and broken requests get the
API's own error. ``webhdfs/test_warm_reads.py`` proves the same on a real worker, counted by
``lakecache_warm_requests_total``.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_writer import StreamWriter
from aiohttp.web_protocol import RequestHandler

from cache_service.api.connection import PRIVATE_STATE, ApiConnection, ApiPort, serve
from tests.cache_service.async_tests import run_async


class CountedAnswers:
    """Answers ``GET /early`` from its head, and counts how often it did."""

    def __init__(self) -> None:
        self.answered = 0

    def answer(self, head: bytes) -> Sequence[bytes | memoryview] | None:
        if not head.startswith(b"GET /early HTTP/1.1\r\n"):
            return None
        self.answered += 1
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"early"]


class PlainConnection(ApiConnection):
    __slots__ = ()

    def protocol_error(self, status: int, exc: BaseException | None, message: str | None) -> web.StreamResponse:
        return web.Response(status=status, text="ours")


def app() -> web.Application:
    async def late(_: web.Request) -> web.Response:
        return web.Response(text="late!")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response(text="slow!")

    application = web.Application()
    application.router.add_get("/early", late)
    application.router.add_get("/slow", slow)
    return application


@asynccontextmanager
async def port(answers: CountedAnswers) -> AsyncIterator[int]:
    served: ApiPort = await serve(app(), "127.0.0.1", 0, PlainConnection, early=answers)
    try:
        yield served.listener.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    finally:
        await served.cleanup()


async def bodies(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    """The bodies of the next ``count`` responses (each with a Content-Length)."""
    found = []
    for _ in range(count):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        fields = dict(line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
        found.append(await reader.readexactly(int(fields[b"content-length"])))
    return found


def get(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def test_aiohttp_request_handler_has_the_private_state_the_connection_reads() -> None:
    slots = set(RequestHandler.__slots__) | set(BaseProtocol.__slots__)
    missing = set(PRIVATE_STATE) - slots
    assert not missing, f"aiohttp no longer has {missing}: see cache_service/api/connection.py"
    assert "data_received" in RequestHandler.__dict__ and "handle_error" in RequestHandler.__dict__
    assert list(inspect.signature(RequestHandler.handle_error).parameters) == [
        "self",
        "request",
        "status",
        "exc",
        "message",
    ]
    assert isinstance(StreamWriter.output_size, int)  # handle_error asks whether a response has begun


@run_async
async def test_a_new_connection_starts_in_the_state_the_connection_expects() -> None:
    loop = asyncio.get_running_loop()
    server = web.Server(lambda request: web.Response())  # type: ignore[arg-type, return-value]
    connection = PlainConnection(server, loop=loop, keepalive_timeout=75.0)
    assert connection._waiter is None
    assert isinstance(connection._messages, collections.deque) and not connection._messages
    assert connection._close is False and connection._force_close is False
    assert connection._keepalive_timeout == 75.0
    assert isinstance(connection._next_keepalive_close_time, float)
    assert connection._loop is loop


@run_async
async def test_an_idle_connection_is_answered_early_and_stays_in_step() -> None:
    answers = CountedAnswers()
    async with port(answers) as number:
        reader, writer = await asyncio.open_connection("127.0.0.1", number)
        writer.write(get("/early"))
        assert await bodies(reader, 1) == [b"early"]
        assert answers.answered == 1, "an idle connection's request went to aiohttp: the fast path is off"
        # After a request aiohttp answered, the connection is idle again, and early answers resume.
        writer.write(get("/slow"))
        assert await bodies(reader, 1) == [b"slow!"]
        writer.write(get("/early"))
        assert await bodies(reader, 1) == [b"early"]
        assert answers.answered == 2
        writer.close()


@pytest.mark.parametrize(
    ("first", "then", "expected"),
    [
        # aiohttp is handling /slow when /early arrives: /early waits its turn, answered by aiohttp.
        (get("/slow"), get("/early"), [b"slow!", b"late!"]),
        # The head of /early arrives in two packets: only aiohttp sees it whole.
        (get("/early")[:9], get("/early")[9:], [b"late!"]),
    ],
    ids=["busy connection", "request split across packets"],
)
@run_async
async def test_a_busy_connection_or_a_split_request_is_left_to_aiohttp_and_answers_in_order(
    first: bytes, then: bytes, expected: list[bytes]
) -> None:
    answers = CountedAnswers()
    async with port(answers) as number:
        reader, writer = await asyncio.open_connection("127.0.0.1", number)
        writer.write(first)
        await writer.drain()
        await asyncio.sleep(0.1)  # aiohttp has what came first before the rest arrives
        writer.write(then)
        assert await bodies(reader, len(expected)) == expected
        assert answers.answered == 0
        writer.close()


@run_async
async def test_a_request_too_broken_to_route_gets_the_apis_own_error() -> None:
    async with port(CountedAnswers()) as number:
        reader, writer = await asyncio.open_connection("127.0.0.1", number)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.split(b" ", 2)[1] == b"400"
        assert await reader.read() == b"ours"  # and the connection is closed after it
        writer.close()
