"""Multipart uploads to keys inside mounts: parts wait on the disk tier, completion writes the object through.

Parts are kept by ``uploads.MultipartUploads`` under ``<disk tier>/multipart/<upload id>/``. Completing an upload
checks the part list as S3 does, joins the parts, and uploads the result like any other write (the under store
splits large files into its own multipart upload), caching its pages on the way; only then does the client hear
that the object exists.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import re
import time
import xml.etree.ElementTree as ET

from aiohttp import web
from multidict import CIMultiDict

from cache_service.api.s3.errors import S3Error, as_s3_error
from cache_service.api.s3.object_metadata import request_metadata, write_through
from cache_service.api.s3.objects import check_conditions
from cache_service.api.s3.payload import MAX_OBJECT_SIZE, Payload
from cache_service.api.s3.request import QueryParams, Target, copy_source
from cache_service.api.s3.uploads import MultipartUploads, Part, Upload
from cache_service.api.s3.xml import CompletedPart, document, element, parse_complete, timestamp
from cache_service.service import CacheService
from cache_service.under_store import ObjectStatus

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024**2  # every part but the last; S3 answers EntityTooSmall below
MAX_PART_NUMBER = 10_000
MAX_COMPLETE_BODY = 4 * 1024**2  # 10,000 parts fit in well under this
_KEEPALIVE_SECONDS = 10.0  # S3 too sends whitespace while a completion runs, so clients do not time out


def _copy_range(header: str | None, size: int) -> tuple[int, int]:
    if header is None:
        if size > MAX_OBJECT_SIZE:
            raise S3Error(
                "InvalidRequest",
                "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120",
            )
        return 0, size
    match = re.fullmatch(r"bytes=(\d+)-(\d+)", header.strip())
    if match is None:
        raise S3Error(
            "InvalidArgument",
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the "
            "zero-based offsets of the first and last bytes to copy",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=header,
        )
    first, last = int(match[1]), int(match[2])
    if first > last or last >= size or last - first + 1 > MAX_OBJECT_SIZE:
        raise S3Error(
            "InvalidArgument",
            f"Range specified is not valid for source object of size: {size}",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=header,
        )
    return first, last + 1


def _int_param(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise S3Error(
            "InvalidArgument",
            f"Argument {name} must be an integer between {low} and {high}",
            ArgumentName=name,
            ArgumentValue=text,
        )
    return value


class MultipartHandlers:
    """CreateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload and AbortMultipartUpload."""

    def __init__(self, service: CacheService, uploads: MultipartUploads) -> None:
        self._service = service
        self._reads = service.reads
        self._uploads = uploads

    async def _blocking(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._service.executor, fn, *args)

    def _open(self, target: Target, params: QueryParams) -> Upload:
        assert target.key is not None
        return self._uploads.open(params.get("uploadId") or "", target.bucket, target.key)

    async def create(self, request: web.Request, target: Target, request_id: str) -> web.Response:
        """Start an upload; its parts will wait on local disk."""
        assert target.key is not None
        algorithm = request.headers.get("x-amz-checksum-algorithm")
        metadata = request_metadata(request.headers)
        upload = self._uploads.create(target.bucket, target.key, algorithm.upper() if algorithm else None, metadata)
        body = _upload_document("InitiateMultipartUploadResult", upload)
        headers = {"x-amz-request-id": request_id}
        if algorithm:
            headers["x-amz-checksum-algorithm"] = algorithm.upper()
        return web.Response(body=body, content_type="application/xml", headers=headers)

    async def upload_part(self, target: Target, params: QueryParams, payload: Payload, request_id: str) -> web.Response:
        """Receive one part, check it, and keep it with its MD5 as ETag."""
        number = _int_param(params, "partNumber", 0, 1, MAX_PART_NUMBER)
        upload = self._open(target, params)
        payload.require_length(MAX_OBJECT_SIZE)
        spooled = self._uploads.spool(upload)
        try:
            digests = await payload.spool(spooled)
            assert digests.md5_hex is not None
            part = Part(number, digests.md5_hex, digests.size, time.time(), digests.checksums)
            self._uploads.commit_part(upload, number, spooled, part)
        finally:
            spooled.unlink(missing_ok=True)
        headers = {"ETag": f'"{part.etag}"', "x-amz-request-id": request_id}
        headers.update({f"x-amz-checksum-{alg}": value for alg, value in part.checksums.items()})
        return web.Response(status=200, headers=headers)

    async def upload_part_copy(
        self, request: web.Request, target: Target, params: QueryParams, request_id: str
    ) -> web.Response:
        """UploadPartCopy: a part made of (a range of) another object, read through the cache where it can be."""
        number = _int_param(params, "partNumber", 0, 1, MAX_PART_NUMBER)
        upload = self._open(target, params)
        obj = await self._copy_source(request)
        start, end = _copy_range(request.headers.get("x-amz-copy-source-range"), obj.size)
        spooled = self._uploads.spool(upload)
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with open(spooled, "wb") as f:
                async for chunk in self._reads.read_range(obj, start, end):
                    digest.update(chunk)
                    f.write(chunk)
            part = Part(number, digest.hexdigest(), end - start, time.time())
            self._uploads.commit_part(upload, number, spooled, part)
        except FileNotFoundError:
            raise S3Error("NoSuchKey", Key=obj.key) from None
        finally:
            spooled.unlink(missing_ok=True)
        body = document(
            element(
                "CopyPartResult", element("LastModified", timestamp(part.modified)), element("ETag", f'"{part.etag}"')
            )
        )
        return web.Response(body=body, content_type="application/xml", headers={"x-amz-request-id": request_id})

    async def _copy_source(self, request: web.Request) -> ObjectStatus:
        source, version = copy_source(request.headers["x-amz-copy-source"])
        if version:
            raise S3Error(
                "NotImplemented", "A versioned copy source into an upload held by the cache", Header="x-amz-copy-source"
            )
        assert source.key is not None
        obj = await self._reads.head(source.bucket, source.key)
        if obj is None:
            raise S3Error("NoSuchKey", Key=source.key)
        conditions = CIMultiDict(
            (name, value)
            for name in ("If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since")
            if (value := request.headers.get(f"x-amz-copy-source-{name.lower()}")) is not None
        )
        if check_conditions(conditions, obj.etag, obj.mtime) is not None:
            raise S3Error("PreconditionFailed", Condition="x-amz-copy-source-if-*")
        return obj

    async def list_parts(self, target: Target, params: QueryParams, request_id: str) -> web.Response:
        """The upload's parts after ``part-number-marker``, at most ``max-parts`` (1000) of them."""
        upload = self._open(target, params)
        limit = _int_param(params, "max-parts", 1000, 0, 2**31 - 1)
        marker = _int_param(params, "part-number-marker", 0, 0, 2**31 - 1)
        after = [p for p in await self._blocking(self._uploads.parts, upload) if p.number > marker]
        page, truncated = after[: min(limit, 1000)], len(after) > min(limit, 1000)
        owner = element("Owner", element("ID", "lakecache"), element("DisplayName", "lakecache"))
        initiator = element("Initiator", element("ID", "lakecache"), element("DisplayName", "lakecache"))
        body = _upload_document(
            "ListPartsResult",
            upload,
            initiator,
            owner,
            element("StorageClass", "STANDARD"),
            element("PartNumberMarker", marker),
            element("NextPartNumberMarker", page[-1].number if page else marker),
            element("MaxParts", limit),
            element("IsTruncated", truncated),
            element("ChecksumAlgorithm", upload.checksum_algorithm) if upload.checksum_algorithm else None,
            *(
                element(
                    "Part",
                    element("PartNumber", p.number),
                    element("LastModified", timestamp(p.modified)),
                    element("ETag", f'"{p.etag}"'),
                    element("Size", p.size),
                    *(element(f"Checksum{alg.upper()}", value) for alg, value in p.checksums.items()),
                )
                for p in page
            ),
        )
        return web.Response(body=body, content_type="application/xml", headers={"x-amz-request-id": request_id})

    async def abort(self, target: Target, params: QueryParams, request_id: str) -> web.Response:
        """Drop the upload and its parts."""
        upload = self._open(target, params)
        self._uploads.claim(upload)
        self._uploads.remove(upload)
        return web.Response(status=204, headers={"x-amz-request-id": request_id})

    async def complete(
        self, request: web.Request, target: Target, params: QueryParams, payload: Payload, request_id: str
    ) -> web.StreamResponse:
        """Check the part list, join the parts and write the object through to S3.

        Answers at once when that is quick; otherwise S3's way: 200 and whitespace while it runs, then the result
        or an ``<Error>`` document (which SDKs recognise in a 200 answer to this request).
        """
        upload = self._open(target, params)
        listed = parse_complete(await payload.read(MAX_COMPLETE_BODY))
        numbers = self._check_parts(upload, listed, await self._blocking(self._uploads.parts, upload))
        self._uploads.claim(upload)
        work = asyncio.ensure_future(self._finish(upload, numbers, request))
        headers = {"x-amz-request-id": request_id}
        done, _ = await asyncio.wait({work}, timeout=_KEEPALIVE_SECONDS)
        if done:
            return web.Response(body=work.result(), content_type="application/xml", headers=headers)
        response = web.StreamResponse(status=200, headers=headers)
        response.content_type = "application/xml"
        await response.prepare(request)
        try:
            await response.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
            while not work.done():
                done, _ = await asyncio.wait({work}, timeout=_KEEPALIVE_SECONDS)
                if not done:
                    await response.write(b" ")
        except ConnectionError:
            # The client left; the completion still runs to its end (as in S3), and its outcome is only logged.
            work.add_done_callback(_log_outcome)
            return response
        try:
            body = work.result()
        except Exception as exc:
            error = as_s3_error(exc)
            body = document(
                element(
                    "Error",
                    element("Code", error.code),
                    element("Message", error.message),
                    element("Resource", target.resource),
                    element("RequestId", request_id),
                ),
                namespaced=False,
            )
        await response.write(body.split(b"\n", 1)[1])
        await response.write_eof()
        return response

    @staticmethod
    def _check_parts(upload: Upload, listed: list[CompletedPart], parts: list[Part]) -> list[int]:
        """The part numbers to join; S3's checks in S3's order: the list's order, then each part, then sizes."""
        numbers = [item.number for item in listed]
        if any(b <= a for a, b in itertools.pairwise(numbers)):
            raise S3Error("InvalidPartOrder", UploadId=upload.id)
        stored = {p.number: p for p in parts}
        for item in listed:
            part = stored.get(item.number)
            if part is None or part.etag != item.etag:
                raise S3Error("InvalidPart", UploadId=upload.id, PartNumber=str(item.number), ETag=item.etag)
            for alg, value in item.checksums.items():
                if alg in part.checksums and part.checksums[alg] != value:
                    raise S3Error("InvalidPart", f"The {alg.upper()} of part {item.number} does not match")
        for number in numbers[:-1]:
            part = stored[number]
            if part.size < MIN_PART_SIZE:
                raise S3Error(
                    "EntityTooSmall",
                    ProposedSize=str(part.size),
                    MinSizeAllowed=str(MIN_PART_SIZE),
                    PartNumber=str(number),
                    ETag=f'"{part.etag}"',
                )
        return numbers

    async def _finish(self, upload: Upload, numbers: list[int], request: web.Request) -> bytes:
        try:
            joined = await self._blocking(self._uploads.join, upload, numbers)
            try:
                obj = await write_through(self._service.uploader, upload.bucket, upload.key, joined, upload.metadata)
            except FileNotFoundError:
                raise S3Error("NoSuchBucket", BucketName=upload.bucket) from None
        except BaseException:
            (upload.directory / "joined.tmp").unlink(missing_ok=True)
            self._uploads.release(upload)
            raise
        self._uploads.remove(upload)
        host = request.host or "localhost"
        return document(
            element(
                "CompleteMultipartUploadResult",
                element("Location", f"http://{host}/{upload.bucket}/{upload.key}"),
                element("Bucket", upload.bucket),
                element("Key", upload.key),
                element("ETag", f'"{obj.etag}"'),
            )
        )


def _upload_document(name: str, upload: Upload, *more: ET.Element | None) -> bytes:
    """S3's ``name`` result about ``upload``: its bucket, key and id, then ``more``."""
    about = element("Bucket", upload.bucket), element("Key", upload.key), element("UploadId", upload.id)
    return document(element(name, *about, *more))


def _log_outcome(work: asyncio.Future[bytes]) -> None:
    if not work.cancelled() and work.exception() is not None:
        log.warning("s3 api: a multipart completion whose client left failed: %s", work.exception())
