"""The narrow interface the cache needs from S3. Implementations are blocking; the service calls them in threads."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cache_service.under_store.metadata import ObjectMetadata


@dataclass(frozen=True)
class ObjectStatus:
    """What S3 says of one object. ``etag`` is the identity of the object's bytes (quotes stripped).

    ``metadata`` is None when unknown (a listing does not carry it); it takes no part in comparisons.
    """

    bucket: str
    key: str
    size: int
    etag: str
    mtime: float
    metadata: ObjectMetadata | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Listing:
    """One level of a prefix: the objects directly in it and the common prefixes ("subdirectories") below it.

    ``prefixes`` hold the full key prefix without the trailing delimiter (``warehouse/t/dt=1``). An object whose
    key is the prefix itself (a directory marker) is not listed; ``has_marker`` says whether there was one.
    """

    objects: list[ObjectStatus] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    has_marker: bool = False

    @property
    def exists(self) -> bool:
        """True when the prefix is a directory: it has children or a marker."""
        return self.has_marker or bool(self.objects or self.prefixes)


class UnderStore(Protocol):
    """Blocking access to S3 objects.

    Every method raises ``cache_service.errors.UnderStoreUnavailableError`` when S3 cannot be reached or keeps
    failing after the configured retries (with backoff on 5xx, SlowDown, throttling and connection errors).
    """

    def head(self, bucket: str, key: str) -> ObjectStatus:
        """Status of ``bucket``/``key``. Raises ``FileNotFoundError`` if there is no such object or bucket."""
        ...

    def list_level(self, bucket: str, prefix: str, limit: int | None = None) -> Listing:
        """Objects and common prefixes directly below ``prefix`` (a key prefix ending in "/" or "" for the bucket).

        ``limit`` caps the total of objects and prefixes returned (None: all, following continuation tokens).
        Raises ``FileNotFoundError`` if the bucket does not exist.
        """
        ...

    def list_recursive(self, bucket: str, prefix: str) -> Iterable[ObjectStatus]:
        """Every object whose key starts with ``prefix``, in key order, paging lazily."""
        ...

    def get_range(self, bucket: str, key: str, start: int, end: int, etag: str) -> bytes:
        """Bytes ``[start, end)`` of the object, only if its ETag is still ``etag``.

        Raises ``FileNotFoundError`` if the object is gone and ``cache_service.errors.StaleObjectError`` if it
        changed (the ETag no longer matches).
        """
        ...

    def stream_range(self, bucket: str, key: str, start: int, end: int, etag: str, *, piece: int) -> Generator[bytes]:
        """``get_range`` as it arrives, in pieces of at most ``piece`` bytes; closing the iterator ends the read."""
        ...

    def put_file(self, bucket: str, key: str, path: Path, metadata: ObjectMetadata | None = None) -> ObjectStatus:
        """Upload the local file ``path`` as ``bucket``/``key`` (multipart above the configured threshold), with
        ``metadata`` (None: none).

        Returns the new object's status once S3 has acknowledged it.
        """
        ...

    def put_bytes(self, bucket: str, key: str, data: bytes) -> ObjectStatus:
        """Write ``data`` as ``bucket``/``key`` in one request and return the new object's status."""
        ...

    def copy(self, bucket: str, src_key: str, dst_key: str, metadata: ObjectMetadata | None = None) -> ObjectStatus:
        """Server-side copy within ``bucket`` (multipart copy for large objects); returns the copy's status.
        The copy keeps the source's metadata, or takes ``metadata`` instead when given.

        Raises ``FileNotFoundError`` if the source is gone.
        """
        ...

    def delete(self, bucket: str, keys: Iterable[str]) -> None:
        """Delete ``keys`` (batched; missing keys are not an error)."""
        ...

    def bucket_exists(self, bucket: str) -> bool:
        """True if ``bucket`` exists and is reachable with the configured credentials."""
        ...
