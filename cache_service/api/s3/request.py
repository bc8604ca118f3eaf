"""What an S3 request addresses: its bucket and key (path-style or virtual-host-style) and its query parameters.

Keys are decoded exactly once and never normalised: ``a/../b`` and ``a//b`` are keys of their own, as in S3, so a
request can only ever name an object of the bucket it addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, unquote_to_bytes

from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.sigv4 import uri_encode
from cache_service.namespace.mounts import is_bucket_name

MAX_KEY_BYTES = 1024


class QueryParams:
    """Decoded query parameters in the order sent. A bare ``?uploads`` reads as "" and is forwarded bare."""

    def __init__(self, items: Iterable[tuple[str, str, bool]]) -> None:
        self._items = list(items)

    @classmethod
    def parse(cls, raw: str) -> QueryParams:
        """Parse a raw query string; each name and value is percent-decoded once (``+`` stays a plus, as in S3)."""
        items = []
        for part in raw.split("&"):
            if not part:
                continue
            name, sep, value = part.partition("=")
            items.append((_unquote(name), _unquote(value), not sep))
        return cls(items)

    def get(self, name: str) -> str | None:
        """The first value of ``name`` ("" for a bare name), or None."""
        return next((value for n, value, _ in self._items if n == name), None)

    def __contains__(self, name: object) -> bool:
        return any(n == name for n, _, _ in self._items)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(name, value) pairs, as signatures see them."""
        return [(name, value) for name, value, _ in self._items]

    def names(self) -> set[str]:
        """Every parameter name present."""
        return {name for name, _, _ in self._items}

    def without(self, names: Iterable[str]) -> QueryParams:
        """These parameters minus ``names``."""
        drop = set(names)
        return QueryParams(item for item in self._items if item[0] not in drop)

    def encode(self) -> str:
        """The query string, every name and value encoded AWS's way."""
        return "&".join(
            uri_encode(name) if bare else f"{uri_encode(name)}={uri_encode(value)}" for name, value, bare in self._items
        )


def _unquote(text: str) -> str:
    return unquote(text, encoding="utf-8", errors="surrogateescape")


@dataclass(frozen=True)
class Target:
    """The bucket ("" for the service itself) and key (None for the bucket itself) a request addresses."""

    bucket: str
    key: str | None

    @property
    def resource(self) -> str:
        """``/bucket/key`` as S3 names it in errors."""
        if not self.bucket:
            return "/"
        return f"/{self.bucket}" + ("" if self.key is None else f"/{self.key}")

    @property
    def path(self) -> str:
        """The path-style URL path of this target, encoded AWS's way (for forwarding)."""
        if not self.bucket:
            return "/"
        return f"/{uri_encode(self.bucket)}" + ("" if self.key is None else "/" + uri_encode(self.key, keep_slash=True))


@lru_cache(maxsize=1024)
def virtual_host_bucket(host: str | None, domains: frozenset[str]) -> str | None:
    """The bucket named by a virtual-host-style ``Host`` (``bucket.localhost:9878``), or None for path-style
    (memoised: a client sends the same few hosts, and ``ipaddress`` is slow)."""
    if not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    for domain in domains:
        if name.endswith("." + domain):
            return name[: -len(domain) - 1]
    return None


def parse_target(raw_path: str, virtual_bucket: str | None) -> Target:
    """The target of the still-encoded URL path ``raw_path``. Raises ``InvalidBucketName``, ``InvalidURI`` or
    ``KeyTooLongError``."""
    if not raw_path.startswith("/"):
        raise S3Error("InvalidURI")
    if virtual_bucket is not None:
        bucket, rest = virtual_bucket, raw_path[1:]
    else:
        encoded_bucket, _, rest = raw_path[1:].partition("/")
        if not encoded_bucket:
            if rest:
                raise S3Error("InvalidBucketName", BucketName="")
            return Target("", None)
        bucket = _decode(encoded_bucket)
    if not is_bucket_name(bucket):
        raise S3Error("InvalidBucketName", BucketName=bucket)
    if not rest:
        return Target(bucket, None)
    key = _decode(rest)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", Size=str(len(key.encode("utf-8"))), MaxSizeAllowed=str(MAX_KEY_BYTES))
    return Target(bucket, key)


def _decode(encoded: str) -> str:
    try:
        return unquote_to_bytes(encoded.encode("utf-8", "surrogateescape")).decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI: it is not UTF-8 once percent-decoded.") from None


def copy_source(text: str) -> tuple[Target, str]:
    """The object an ``x-amz-copy-source`` header names (``bucket/key``, percent-encoded, with an optional
    ``?versionId=...``) and the query after its ``?`` ("" for none).

    Raises ``S3Error``: ``InvalidArgument`` when it names no key, or what ``parse_target`` raises.
    """
    path, _, version = text.partition("?")
    source = parse_target("/" + path.lstrip("/"), None)
    if source.key is None:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=text,
        )
    return source, version
