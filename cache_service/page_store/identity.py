"""What a cached page belongs to: an object's identity (bucket, key and ETag), never its path alone."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import xxhash

PageKey = tuple[str, int]
"""A page: (file id of its object version, page index)."""


@dataclass(frozen=True)
class ObjectIdentity:
    """One version of one S3 object. A change in S3 gives a new ETag, hence a new identity and new pages."""

    bucket: str
    key: str
    etag: str
    size: int

    @cached_property
    def file_id(self) -> str:
        """A stable 128-bit hex id of (bucket, key, etag); names the object's pages in every tier."""
        return xxhash.xxh3_128_hexdigest(f"{self.bucket}\0{self.key}\0{self.etag}".encode())

    def page_count(self, page_size: int) -> int:
        """How many pages the object has (0 for an empty object)."""
        return -(-self.size // page_size)

    def page_bounds(self, index: int, page_size: int) -> tuple[int, int]:
        """Byte range ``[start, end)`` of page ``index``."""
        start = index * page_size
        return start, min(start + page_size, self.size)


def checksum(data: bytes | memoryview) -> int:
    """The checksum stored with every page (xxh3-64: fast enough to verify a page on the read path)."""
    return xxhash.xxh3_64_intdigest(data)
