"""Fixtures of the page store's tests: an executor for its blocking calls, and objects put straight into S3."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from cache_service.page_store.identity import ObjectIdentity


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="io") as pool:
        yield pool


@pytest.fixture
def put(s3_client, bucket, s3_under_store) -> Callable[[str, bytes], ObjectIdentity]:
    """Writes an object straight to S3 and returns its identity as S3 reports it."""

    def put(key: str, data: bytes) -> ObjectIdentity:
        s3_client.put_object(Bucket=bucket, Key=key, Body=data)
        status = s3_under_store.head(bucket, key)
        return ObjectIdentity(status.bucket, status.key, status.etag, status.size)

    return put
