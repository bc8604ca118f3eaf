"""A real under store on the S3 emulator, with a count of the requests made through it.

Not a mock: every call goes to S3 and returns S3's answer. The counts let a test prove that a warm read or a
cached lookup made no S3 request at all.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from cache_service.config import UnderStoreConfig
from cache_service.under_store.s3 import S3UnderStore
from infra.s3_emulator import EMULATOR_CREDENTIALS


def emulator_under_store(endpoint_url: str) -> S3UnderStore:
    """The production ``S3UnderStore`` pointed at the emulator with its fixed credentials."""
    return S3UnderStore(
        UnderStoreConfig(
            endpoint_url=endpoint_url,
            region=EMULATOR_CREDENTIALS["AWS_DEFAULT_REGION"],
            access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            max_attempts=2,
        )
    )


class CountingUnderStore:
    """Forwards every call to ``inner`` and counts it: ``calls[method]``, and ``gets[(key, start)]`` per range."""

    def __init__(self, inner: S3UnderStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.gets: Counter[tuple[str, int]] = Counter()
        self.after_call: Callable[[str], None] = lambda method: None
        """Runs in the calling thread once S3 has answered, before the answer is returned (a test may hold it)."""
        self._lock = threading.Lock()

    def get_range(self, bucket: str, key: str, start: int, end: int, etag: str) -> bytes:
        with self._lock:
            self.gets[(key, start)] += 1
        return self._forward("get_range")(bucket, key, start, end, etag)

    def __getattr__(self, method: str) -> Any:
        return self._forward(method)

    def _forward(self, method: str) -> Callable[..., Any]:
        target = getattr(self.inner, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[method] += 1
            try:
                return target(*args, **kwargs)
            finally:
                self.after_call(method)

        return call
