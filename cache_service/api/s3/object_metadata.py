"""Object metadata on the S3 API: the content headers and ``x-amz-meta-*`` a write carries, checked as S3 checks
them, written through with the object, and answered on HEAD and GET from the cached status.

As in S3: user metadata is limited to 2 KB (the UTF-8 bytes of every name and value; ``MetadataTooLarge`` beyond),
names are kept in lower case, values that are not US-ASCII are stored RFC 2047-encoded (``=?UTF-8?B?...?=``) and
returned so, ``Expires`` is kept as sent (S3 does not parse it), and ``aws-chunked`` is not a content encoding of
the object.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from multidict import CIMultiDict, MultiMapping

from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.request import Target
from cache_service.errors import UnderStoreUnavailableError
from cache_service.page_store import ObjectIdentity
from cache_service.service import CacheService
from cache_service.under_store import ObjectMetadata, ObjectStatus
from cache_service.under_store.metadata import CONTENT_HEADERS, USER_PREFIX
from cache_service.write.uploads import Uploader

MAX_USER_METADATA = 2 * 1024
DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 answers for an object stored without a type
_CONTENT_LOWER = {name.lower(): name for name in CONTENT_HEADERS}


def _mail_safe(value: str) -> str:
    """``value`` as S3 returns it: unchanged if US-ASCII, else RFC 2047-encoded UTF-8."""
    raw = value.encode("utf-8", "surrogateescape")  # undecodable header bytes are kept as they came
    if raw.isascii():
        return value
    return f"=?UTF-8?B?{base64.b64encode(raw).decode()}?="


def user_metadata_size(headers: MultiMapping[str]) -> int:
    """Bytes of user metadata S3 counts against its 2 KB limit (names without the prefix, and values)."""
    return sum(
        len(name[len(USER_PREFIX) :].encode("utf-8", "surrogateescape")) + len(value.encode("utf-8", "surrogateescape"))
        for name, value in headers.items()
        if name.lower().startswith(USER_PREFIX)
    )


def check_user_metadata(headers: MultiMapping[str]) -> None:
    """Raise ``MetadataTooLarge`` when a write's user metadata is over S3's limit."""
    size = user_metadata_size(headers)
    if size > MAX_USER_METADATA:
        raise S3Error("MetadataTooLarge", Size=str(size), MaxSizeAllowed=str(MAX_USER_METADATA))


def request_metadata(headers: MultiMapping[str]) -> ObjectMetadata:
    """The metadata a PutObject, CreateMultipartUpload or CopyObject (REPLACE) asks to store. Raises ``S3Error``."""
    check_user_metadata(headers)
    content: dict[str, str] = {}
    user: dict[str, list[str]] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in _CONTENT_LOWER:
            content[_CONTENT_LOWER[lower]] = _mail_safe(value.strip())
        elif lower.startswith(USER_PREFIX) and len(lower) > len(USER_PREFIX):
            user.setdefault(lower[len(USER_PREFIX) :], []).append(_mail_safe(value.strip()))
    encodings = [e.strip() for e in content.pop("Content-Encoding", "").split(",")]
    kept = [e for e in encodings if e and e.lower() != "aws-chunked"]
    if kept:
        content["Content-Encoding"] = ",".join(kept)
    return ObjectMetadata.build(content, ((name, ",".join(values)) for name, values in user.items()))


def response_headers(metadata: ObjectMetadata) -> CIMultiDict[str]:
    """HEAD and GET headers for an object with ``metadata`` (S3's default type when it has none)."""
    headers = CIMultiDict(metadata.headers())
    headers.setdefault("Content-Type", DEFAULT_CONTENT_TYPE)
    return headers


async def write_through(
    uploader: Uploader, bucket: str, key: str, local: Path, metadata: ObjectMetadata
) -> ObjectStatus:
    """``Uploader.upload`` with metadata: upload ``local`` with it, then record the status and cache the pages.

    Raises ``FileNotFoundError`` when the bucket is gone.
    """
    if not metadata.content and not metadata.user:
        return await uploader.upload(bucket, key, local)
    loop = asyncio.get_running_loop()
    obj: ObjectStatus = await loop.run_in_executor(
        uploader.executor, lambda: uploader.under.put_file(bucket, key, local, metadata)
    )
    uploader.metrics.s3_bytes_written.inc(obj.size)
    uploader.metrics.publishes.inc()
    uploader.status.record(obj)
    identity = ObjectIdentity(obj.bucket, obj.key, obj.etag, obj.size)
    uploader.pages.drop_object(bucket, key, keep=identity.file_id, reason="overwritten")
    await uploader.pages.ingest(identity, local, place=uploader.place)
    return obj


def refreshing(
    service: CacheService, target: Target, forget: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """``forget``, then learn the copy's new status (metadata included) with one HEAD, so that HEAD and GET of a
    copied object answer from the cache. A copy S3 refused leaves the old status, which is learned just the same."""

    async def refresh() -> None:
        await forget()
        assert target.key is not None
        with contextlib.suppress(UnderStoreUnavailableError):  # the next read asks again
            await service.status.head(target.bucket, target.key)

    return refresh
