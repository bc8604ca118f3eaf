"""Warm reads answered as they arrive give the bytes, headers and errors the OPEN handler gives, on any connection.

Each test talks raw HTTP/1.1 over one keep-alive socket to a real worker, so requests can be split, pipelined and
interleaved the way clients do it; ``lakecache_warm_requests_total`` says which path answered.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from infra.cache_process import CacheProcess
from tests.cache_service.api.webhdfs.test_bad_input import TRAVERSALS
from tests.support.caches import warehouse_cache
from tests.support.metrics import scrape
from tests.support.webhdfs import WebHdfsClient

PAGE = 64 * 1024
DATA = os.urandom(3 * PAGE + 1234)  # pages of 64 KiB: ranges cross page boundaries
WARM_READS = 'lakecache_warm_requests_total{op="OPEN"}'
WARM_STATUS = 'lakecache_warm_requests_total{op="GETFILESTATUS"}'
OPEN_200 = 'lakecache_requests_total{api="webhdfs",op="OPEN",status="200"}'


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class RawConnection:
    """One keep-alive connection: bytes go out exactly as given, answers are read one by one."""

    def __init__(self, cache: CacheProcess) -> None:
        self.sock = socket.create_connection(("127.0.0.1", cache.webhdfs_port), timeout=30)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 20)
        self.buffer += chunk
        return bool(chunk)

    def answer(self, *, bodyless: bool = False) -> Answer:
        """The next answer; ``bodyless`` for one that has no body whatever its headers say (HEAD, 304)."""
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"connection closed mid-head: {self.buffer!r}"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        if bodyless:
            return Answer(int(lines[0].split()[1]), headers, b"")
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            assert self._fill(), "connection closed mid-body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Answer(int(lines[0].split()[1]), headers, body)

    def closed_by_server(self) -> bool:
        return not self._fill()

    def close(self) -> None:
        self.sock.close()


def get(target: str, *extra: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def open_target(path: str, offset: int | None = None, length: int | None = None, **params: str) -> str:
    query = "op=OPEN&user.name=tester"
    if offset is not None:
        query += f"&offset={offset}"
    if length is not None:
        query += f"&length={length}"
    for name, value in params.items():
        query += f"&{name}={value}"
    return f"/webhdfs/v1{path}?{query}"


@pytest.fixture(scope="module")
def cache(s3_emulator, tmp_path_factory) -> Iterator[CacheProcess]:
    objects = {
        "warehouse/data.bin": DATA,
        "warehouse/with space.bin": DATA[:100],
        "warehouse/cold.bin": DATA,
        "outside/secret": b"classified-bytes",
    }
    root = tmp_path_factory.mktemp("warm-reads")
    with warehouse_cache(s3_emulator, root, objects, {"store": {"page_size": PAGE}}) as cache:
        hdfs = WebHdfsClient(cache.webhdfs_url)
        for path in ("/warehouse/data.bin", "/warehouse/with%20space.bin"):
            assert hdfs.read(path).status == 200  # the first read fetches every page into memory
        yield cache


@pytest.fixture
def conn(cache: CacheProcess) -> Iterator[RawConnection]:
    connection = RawConnection(cache)
    yield connection
    connection.close()


def counts(cache: CacheProcess) -> tuple[float, float]:
    samples = scrape(cache.webhdfs_url)
    return samples.get(WARM_READS, 0.0), samples.get(OPEN_200, 0.0)


RANGES = [(0, PAGE), (PAGE - 10, 20), (PAGE // 2, 2 * PAGE), (3 * PAGE, 5000), (100, None), (len(DATA), 10)]


@pytest.mark.parametrize(("offset", "length"), RANGES)
def test_warm_ranges_are_answered_at_once_with_the_right_bytes(cache, conn, offset, length) -> None:
    before = counts(cache)
    conn.send(get(open_target("/warehouse/data.bin", offset, length)))
    answer = conn.answer()
    end = len(DATA) if length is None else offset + length
    assert answer.status == 200
    assert answer.body == DATA[offset:end]
    assert answer.headers["content-type"] == "application/octet-stream"
    assert "date" in answer.headers and "server" in answer.headers
    warm, served = counts(cache)
    assert (warm - before[0], served - before[1]) == (1, 1)


def test_warm_file_status_is_the_handlers_answer(cache, conn) -> None:
    before = scrape(cache.webhdfs_url).get(WARM_STATUS, 0.0)
    target = "/webhdfs/v1/warehouse/data.bin?op=GETFILESTATUS&user.name=alice"
    conn.send(get(target))
    warm = conn.answer()
    conn.send(get(target + "&unused=%41"))  # percent-encoding in the query: the handler answers
    handled = conn.answer()
    assert scrape(cache.webhdfs_url).get(WARM_STATUS, 0.0) - before == 1
    assert warm.status == handled.status == 200
    assert json.loads(warm.body) == json.loads(handled.body)
    assert json.loads(warm.body)["FileStatus"]["length"] == len(DATA)
    assert json.loads(warm.body)["FileStatus"]["owner"] == "alice"
    assert "content-type" not in warm.headers and "content-type" not in handled.headers


def test_many_reads_on_one_connection_stay_in_step(cache, conn) -> None:
    before = counts(cache)
    for i in range(50):
        offset = (i * 7919) % len(DATA)
        conn.send(get(open_target("/warehouse/data.bin", offset, 4096), "Connection: keep-alive"))
        assert conn.answer().body == DATA[offset : offset + 4096]
    assert counts(cache)[0] - before[0] == 50


def test_encoded_path_is_decoded_like_the_handler_does(cache, conn) -> None:
    conn.send(get(open_target("/warehouse/with%20space.bin", 10, 5)))
    assert conn.answer().body == DATA[10:15]


def test_a_cold_read_goes_to_the_handler_and_is_served(cache, conn) -> None:
    before = counts(cache)
    conn.send(get(open_target("/warehouse/cold.bin", PAGE, 100)))
    answer = conn.answer()
    assert (answer.status, answer.body) == (200, DATA[PAGE : PAGE + 100])
    assert counts(cache)[0] == before[0]


def test_a_request_split_across_packets_is_answered_once(cache, conn) -> None:
    request = get(open_target("/warehouse/data.bin", 5, 10))
    conn.send(request[:17])
    conn.send(request[17:])
    assert conn.answer().body == DATA[5:15]
    conn.send(get(open_target("/warehouse/data.bin", 20, 10)))
    assert conn.answer().body == DATA[20:30]


def test_pipelined_requests_are_answered_in_order(cache, conn) -> None:
    conn.send(get(open_target("/warehouse/data.bin", 0, 3)) + get(open_target("/warehouse/data.bin", 3, 3)))
    assert [conn.answer().body, conn.answer().body] == [DATA[0:3], DATA[3:6]]


def test_connection_close_is_honoured(cache, conn) -> None:
    conn.send(get(open_target("/warehouse/data.bin", 0, 10), "Connection: close"))
    answer = conn.answer()
    assert answer.body == DATA[:10]
    assert answer.headers.get("connection", "").lower() == "close"
    assert conn.closed_by_server()


def test_errors_on_warm_files_are_remote_exceptions(cache, conn) -> None:
    cases = [
        (open_target("/warehouse/data.bin", len(DATA) + 1), 400, "IllegalArgumentException"),
        (open_target("/warehouse/data.bin", length=-5), 400, "IllegalArgumentException"),
        (open_target("/warehouse/data.bin", offset="1e3"), 400, "IllegalArgumentException"),  # type: ignore[arg-type]
        ("/webhdfs/v1/warehouse/data.bin?op=OPEN&buffersize=big", 400, "IllegalArgumentException"),
        ("/webhdfs/v1/warehouse/data.bin/?op=OPEN", 200, None),
        ("/webhdfs/v1/warehouse/data.binx?op=OPEN", 404, "FileNotFoundException"),
    ]
    for target, status, exception in cases:
        conn.send(get(target))
        answer = conn.answer()
        assert answer.status == status, (target, answer.body)
        if exception is not None:
            assert json.loads(answer.body)["RemoteException"]["exception"] == exception, target


@pytest.mark.parametrize("raw_path", TRAVERSALS)
def test_traversal_to_a_warm_file_is_refused(cache, conn, raw_path) -> None:
    conn.send(get(f"/webhdfs/v1{raw_path}?op=OPEN&user.name=x"))
    answer = conn.answer()
    assert answer.status == 400, answer.body
    assert b"classified" not in answer.body


def test_a_write_on_the_connection_then_warm_reads_see_the_new_bytes(cache, conn) -> None:
    new = os.urandom(2 * PAGE)
    hdfs = WebHdfsClient(cache.webhdfs_url)
    assert hdfs.create("/warehouse/rewritten.bin", DATA[:50]).status == 201
    conn.send(get(open_target("/warehouse/rewritten.bin", 0, 50)))
    assert conn.answer().body == DATA[:50]
    put = f"PUT {open_target('/warehouse/rewritten.bin').replace('OPEN', 'CREATE')}&overwrite=true&data=true HTTP/1.1"
    conn.send(f"{put}\r\nHost: x\r\nContent-Length: {len(new)}\r\n\r\n".encode() + new)
    assert conn.answer().status == 201
    conn.send(get(open_target("/warehouse/rewritten.bin", PAGE, 100)))
    assert conn.answer().body == new[PAGE : PAGE + 100]
    conn.send(get(open_target("/warehouse/rewritten.bin", 0, None)))
    assert conn.answer().body == new


def test_http_1_0_goes_to_the_handler(cache, conn) -> None:
    before = counts(cache)
    conn.send(get(open_target("/warehouse/data.bin", 0, 4)).replace(b"HTTP/1.1", b"HTTP/1.0", 1))
    answer = conn.answer()
    assert (answer.status, answer.body) == (200, DATA[:4])
    assert counts(cache)[0] == before[0]
