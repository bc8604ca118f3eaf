"""A RENAME sent again after it succeeded (its answer lost with a dying worker or a broken connection) answers true,
as HDFS's NameNode answers a retried call from its retry cache; a RENAME of a path that never existed stays false."""

from __future__ import annotations

import json
import urllib.request

from infra.cache_process import CacheProcess
from tests.support.caches import CacheFactory

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(cache: CacheProcess, method: str, path: str, op: str, body: bytes | None = None, **params: str) -> dict:
    query = "&".join(f"{k}={v}" for k, v in {"op": op, "user.name": "etl", **params}.items())
    request = urllib.request.Request(f"{cache.webhdfs_url}/webhdfs/v1{path}?{query}", data=body, method=method)
    with NO_PROXY.open(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def test_a_rename_sent_twice_answers_true_twice_and_one_of_nothing_answers_false(
    cache_factory: CacheFactory, bucket: str
) -> None:
    cache = cache_factory({"/lake": f"s3://{bucket}/lake"})
    call(cache, "PUT", "/lake/out/_temporary/0/part-0", "CREATE", b"abc", data="true")

    first = call(cache, "PUT", "/lake/out/_temporary/0/part-0", "RENAME", destination="/lake/out/part-0")
    again = call(cache, "PUT", "/lake/out/_temporary/0/part-0", "RENAME", destination="/lake/out/part-0")
    elsewhere = call(cache, "PUT", "/lake/out/_temporary/0/part-0", "RENAME", destination="/lake/out/other")
    never = call(cache, "PUT", "/lake/out/_temporary/0/none", "RENAME", destination="/lake/out/none")

    assert (first["boolean"], again["boolean"], elsewhere["boolean"], never["boolean"]) == (True, True, False, False)
