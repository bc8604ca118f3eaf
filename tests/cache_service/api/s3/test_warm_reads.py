"""Warm S3 reads answered as they arrive give the bytes, headers and errors ``S3Api.handle`` gives, to the same users.

Requests are signed by botocore and sent raw over one keep-alive socket, so a test can also send one the early path
must leave to the handler (split across packets); ``lakecache_warm_requests_total`` says which path answered. A
request that arrives while the connection is not idle yet (just opened, or its last answer still being wrapped up by
aiohttp) is the handler's too, so warm requests come first on a connection that has been open a while. Two
users: ``reader`` may read ``warehouse/``, ``stranger`` only ``elsewhere/``.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from infra.cache_process import CacheProcess
from infra.s3_emulator import S3Emulator
from tests.cache_service.api.s3.support import s3_client, sign
from tests.cache_service.api.webhdfs.test_warm_reads import Answer, RawConnection
from tests.support.caches import CacheFactory
from tests.support.metrics import scrape

PAGE = 64 * 1024
DATA = os.urandom(3 * PAGE + 1234)  # ranges cross page boundaries
READER, STRANGER = ("reader", "reader-secret-31f"), ("stranger", "stranger-secret-9ac")
WARM_GETS = 'lakecache_warm_requests_total{op="GetObject"}'
WARM_HEADS = 'lakecache_warm_requests_total{op="HeadObject"}'
# Differ between any two answers, whoever sends them.
PER_REQUEST = ("date", "x-amz-request-id", "x-amz-id-2")


class S3Connection(RawConnection):
    """One keep-alive connection to the S3 port, for keys of ``bucket``."""

    def __init__(self, cache: CacheProcess, bucket: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", cache.s3_port), timeout=30)
        self.buffer = b""
        self.url = cache.s3_url
        self.bucket = bucket

    def request(
        self,
        method: str,
        key: str,
        headers: dict[str, str] | None = None,
        *,
        user: tuple[str, str] = READER,
        split: bool = False,
        query: str = "",
        bodyless: bool = False,
    ) -> Answer:
        """Send a request for ``key`` signed by ``user`` (``split``: in two packets, so the handler answers it) and
        read its answer (``bodyless``: one without a body, as a 304)."""
        target = f"/{self.bucket}/{key}" + (f"?{query}" if query else "")
        url, unsigned = self.url + target, "UNSIGNED-PAYLOAD"
        signed = sign(method, url, b"", headers, access_key=user[0], secret=user[1], content_sha256=unsigned)
        head = "\r\n".join([f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in signed.items())]) + "\r\n\r\n"
        data = head.encode()
        if split:
            self.send(data[:20])
        self.send(data[20:] if split else data)
        return self.answer(bodyless=method == "HEAD" or bodyless)


def _users(bucket: str) -> dict[str, Any]:
    return {
        "s3_api": {
            "users": [
                {
                    "access_key": READER[0],
                    "secret_key": READER[1],
                    "grants": [{"bucket": bucket, "prefix": "warehouse/", "access": "read"}],
                },
                {
                    "access_key": STRANGER[0],
                    "secret_key": STRANGER[1],
                    "grants": [{"bucket": bucket, "prefix": "elsewhere/", "access": "read"}],
                },
            ]
        },
        "store": {"page_size": "64KiB"},
    }


@pytest.fixture(scope="module")
def keys(s3_bucket: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {name: f"warehouse/{tag}/{name}" for name in ("data.bin", "typed.csv", "cold.bin", "table.parquet")}


@pytest.fixture(scope="module")
def worker(
    s3_emulator: S3Emulator, s3_bucket: str, keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CacheProcess]:
    """A worker whose data.bin, typed.csv and table.parquet are warm in memory (read twice); cold.bin is not."""
    client = s3_emulator.client()
    client.put_object(Bucket=s3_bucket, Key=keys["data.bin"], Body=DATA)
    client.put_object(Bucket=s3_bucket, Key=keys["cold.bin"], Body=DATA)
    client.put_object(
        Bucket=s3_bucket,
        Key=keys["typed.csv"],
        Body=b"a,b\n1,2\n",
        ContentType="text/csv",
        CacheControl="max-age=60",
        Metadata={"origin": "etl", "rows": "1"},
    )
    table = pa.table({"id": list(range(50_000)), "name": [f"n{i}" for i in range(50_000)]})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=10_000)
    client.put_object(Bucket=s3_bucket, Key=keys["table.parquet"], Body=sink.getvalue().to_pybytes())
    factory = CacheFactory(tmp_path_factory.mktemp("s3-warm"), s3_emulator.endpoint_url)
    cache = factory({"/warehouse": f"s3://{s3_bucket}/warehouse"}, _users(s3_bucket))
    reader = s3_client(cache.s3_url, access_key=READER[0], secret=READER[1])
    for name in ("data.bin", "typed.csv", "table.parquet"):
        for _ in range(2):
            reader.get_object(Bucket=s3_bucket, Key=keys[name])["Body"].read()
    yield cache
    factory.stop_all()


@pytest.fixture
def conn(worker: CacheProcess, s3_bucket: str) -> Iterator[S3Connection]:
    connection = S3Connection(worker, s3_bucket)
    yield connection
    connection.close()


def _warm(worker: CacheProcess) -> tuple[float, float]:
    samples = scrape(worker.webhdfs_url)
    return samples.get(WARM_GETS, 0.0), samples.get(WARM_HEADS, 0.0)


def _same_answer(warm: Answer, handled: Answer) -> None:
    assert warm.status == handled.status
    assert warm.body == handled.body
    drop = {k: v for k, v in warm.headers.items() if k not in PER_REQUEST}
    assert drop == {k: v for k, v in handled.headers.items() if k not in PER_REQUEST}
    assert len(warm.headers["x-amz-request-id"]) == 16


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        (None, 0, len(DATA)),
        ("bytes=0-65535", 0, PAGE),
        (f"bytes={PAGE - 10}-{PAGE + 9}", PAGE - 10, PAGE + 10),
        ("bytes=100-", 100, len(DATA)),
        ("bytes=-500", len(DATA) - 500, len(DATA)),
        (f"bytes=5-{10 * len(DATA)}", 5, len(DATA)),
    ],
)
def test_warm_gets_are_answered_at_once_as_the_handler_answers_them(
    worker, conn, keys, range_header, start, end
) -> None:
    headers = {} if range_header is None else {"Range": range_header}
    before = _warm(worker)
    warm = conn.request("GET", keys["data.bin"], headers)
    assert _warm(worker)[0] - before[0] == 1
    handled = conn.request("GET", keys["data.bin"], headers, split=True)
    assert warm.body == DATA[start:end]
    assert warm.status == (200 if range_header is None else 206)
    _same_answer(warm, handled)


def test_warm_heads_and_metadata_are_the_handlers(worker, conn, keys) -> None:
    before = _warm(worker)
    warm = conn.request("HEAD", keys["typed.csv"])
    warm_get = conn.request("GET", keys["typed.csv"])
    assert (_warm(worker)[0] - before[0], _warm(worker)[1] - before[1]) == (1, 1)
    handled = conn.request("HEAD", keys["typed.csv"], split=True)
    handled_get = conn.request("GET", keys["typed.csv"], split=True)
    _same_answer(warm, handled)
    _same_answer(warm_get, handled_get)
    assert warm.headers["content-type"] == "text/csv"
    assert warm.headers["x-amz-meta-origin"] == "etl" and warm.headers["cache-control"] == "max-age=60"
    assert warm.headers["content-length"] == "8" and warm_get.body == b"a,b\n1,2\n"


def test_a_user_without_a_grant_a_bad_signature_and_no_signature_are_refused_by_the_handler(worker, conn, keys) -> None:
    before = _warm(worker)
    assert conn.request("GET", keys["data.bin"], user=STRANGER).status == 403
    assert conn.request("GET", keys["data.bin"], user=(READER[0], "wrong")).status == 403
    assert conn.request("HEAD", keys["data.bin"], user=STRANGER).status == 403
    conn.send(f"GET /{conn.bucket}/{keys['data.bin']} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    unsigned = conn.answer()
    assert unsigned.status == 403 and b"AccessDenied" in unsigned.body
    assert _warm(worker) == before


def test_conditions_bad_ranges_queries_and_cold_pages_go_to_the_handler(worker, conn, keys) -> None:
    etag = conn.request("HEAD", keys["data.bin"]).headers["etag"]
    before = _warm(worker)
    assert conn.request("GET", keys["data.bin"], {"If-None-Match": etag}, bodyless=True).status == 304
    assert conn.request("GET", keys["data.bin"], {"If-Match": '"other"'}).status == 412
    assert conn.request("GET", keys["data.bin"], {"Range": f"bytes={len(DATA)}-"}).status == 416
    typed = conn.request("GET", keys["data.bin"], {"Range": "bytes=0-9"}, query="response-content-type=text%2Fplain")
    assert (typed.body, typed.headers["content-type"]) == (DATA[:10], "text/plain")
    cold = conn.request("GET", keys["cold.bin"], {"Range": "bytes=10-19"})
    assert (cold.status, cold.body) == (206, DATA[10:20])
    assert conn.request("GET", keys["data.bin"] + "-missing").status == 404
    assert _warm(worker) == before


def test_many_reads_on_one_connection_stay_in_step(worker, conn, keys) -> None:
    before = _warm(worker)
    for i in range(40):
        start = (i * 7919) % (len(DATA) - 4096)
        answer = conn.request("GET", keys["data.bin"], {"Range": f"bytes={start}-{start + 4095}"})
        assert answer.body == DATA[start : start + 4096]
    assert _warm(worker)[0] - before[0] == 40


def test_pyarrow_reads_parquet_footers_and_row_groups_from_memory(worker, s3_bucket, keys) -> None:
    s3 = pafs.S3FileSystem(
        endpoint_override=f"127.0.0.1:{worker.s3_port}",
        scheme="http",
        region="us-east-1",
        access_key=READER[0],
        secret_key=READER[1],
    )

    def lookup() -> dict[str, list[Any]]:
        with s3.open_input_file(f"{s3_bucket}/{keys['table.parquet']}") as source:
            return pq.ParquetFile(source, pre_buffer=True).read_row_group(3).to_pydict()

    lookup()  # opens the client's pooled connection: a request racing a connection's start goes to the handler
    time.sleep(0.2)
    before = _warm(worker)
    rows = lookup()
    assert rows["id"][:2] == [30_000, 30_001] and rows["name"][-1] == "n39999"
    gets, heads = (now - then for now, then in zip(_warm(worker), before, strict=True))
    assert heads == 1 and gets >= 2  # the size, the footer, the row group: none through the handler
