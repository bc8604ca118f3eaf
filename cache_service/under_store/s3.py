"""The under store on S3 through boto3: one thread-safe client, botocore's retries, errors in the cache's terms."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from cache_service.config import UnderStoreConfig
from cache_service.errors import StaleObjectError, UnderStoreUnavailableError
from cache_service.under_store.base import Listing, ObjectStatus
from cache_service.under_store.metadata import ObjectMetadata

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectTypeDef

log = logging.getLogger(__name__)

_DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys per request
_MAX_PARTS = 10_000  # S3 refuses multipart uploads with more parts
_MAX_SINGLE_COPY = 5 * 1024**3  # CopyObject refuses larger sources
_LIST_PAGE = 1000  # ListObjectsV2 never returns more per page
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})
_FORBIDDEN_CODES = frozenset({"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"})
_THROTTLING_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestThrottled"})
_UNAVAILABLE_CODES = _THROTTLING_CODES | {"RequestTimeout", "ServiceUnavailable"}
# Failures of the network or of the HTTP exchange, as opposed to an answer from S3.
_TRANSPORT_ERRORS = (BotoConnectionError, HTTPClientError, IncompleteReadError)

RETRY_REASONS = ("throttled", "server_error", "timeout", "connection", "body_broke_off", "other")
"""Why an S3 request was sent again: a throttling answer (503 SlowDown and kin), another 5xx, a connect or read
timeout, another failure of the connection, a GET's body that broke off mid-stream (resumed where it stopped), or
another answer botocore retries."""
_FAILURE = "lakecache_failure"  # key of botocore's per-call context: why the last attempt failed

RetryListener = Callable[[str], None]
"""Told the reason (one of ``RETRY_REASONS``) each time a request is sent again."""

ATTEMPT_OUTCOMES = ("ok", "client_error", "throttled", "server_error", "timeout", "connection")
"""How one attempt at an S3 request ended: an answer below 400, another 4xx (a missing key, a failed precondition:
S3 answered), a throttling answer, another 5xx, a timeout, another failure of the connection."""
AttemptListener = Callable[[str], None]
"""Told the outcome (one of ``ATTEMPT_OUTCOMES``) of every attempt, the first and each retry."""


def _uri(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


def _etag(raw: str) -> str:
    return raw.strip('"')


def _quoted(etag: str) -> str:
    return f'"{_etag(etag)}"'


def _part_size(size: int, chunksize: int) -> int:
    """The configured chunk size, grown when the object would otherwise need more parts than S3 allows."""
    return max(chunksize, math.ceil(size / _MAX_PARTS))


class S3UnderStore:
    """``UnderStore`` on S3 (or any S3-compatible endpoint) through one boto3 client.

    The client is thread-safe and shared by every caller. Transient failures (5xx, SlowDown, throttling, connection
    errors and timeouts) are retried with backoff by botocore up to ``config.max_attempts`` attempts in total; what is
    still failing then surfaces as ``UnderStoreUnavailableError``. A missing object or bucket is a
    ``FileNotFoundError``, a 403 a ``PermissionError``, an object whose ETag changed a ``StaleObjectError``.
    ``on_retry`` is told why each time a request is sent again (``RETRY_REASONS``); ``on_attempt`` how every attempt
    ended (``ATTEMPT_OUTCOMES``).
    """

    def __init__(
        self,
        config: UnderStoreConfig,
        *,
        on_retry: RetryListener | None = None,
        on_attempt: AttemptListener | None = None,
    ) -> None:
        self._config = config
        self._on_retry = on_retry
        self._on_attempt = on_attempt
        self._endpoint = config.endpoint_url or f"AWS ({config.region})"
        botocore_config = Config(
            region_name=config.region,
            # botocore's "max_attempts" counts retries only; ours counts every attempt, the first included.
            retries={"total_max_attempts": config.max_attempts, "mode": "standard"},
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            max_pool_connections=config.max_connections,
            s3={"addressing_style": "path"},
        )
        # A session of its own: creating clients from boto3's shared default session is not thread-safe.
        session = boto3.session.Session(
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            region_name=config.region,
        )
        self._client: S3Client = session.client("s3", endpoint_url=config.endpoint_url, config=botocore_config)
        # Metadata goes out as raw headers, byte for byte as the client sent them (an Expires S3 keeps unparsed
        # would fail botocore's parameter checks): the calling thread's headers are added before signing.
        self._headers = threading.local()
        self._client.meta.events.register("before-sign.s3", self._add_headers)
        if on_retry is not None or on_attempt is not None:
            self._client.meta.events.register("needs-retry.s3", self._note_failure)
        if on_retry is not None:
            self._client.meta.events.register("request-created.s3", self._count_retry)

    def _note_failure(
        self, request_dict: dict[str, Any], response: Any = None, caught_exception: Any = None, **_: Any
    ) -> None:
        # Called after every attempt, before botocore's retry handler decides; the next attempt's request-created
        # event (if botocore retries) reads what failed from the call's context.
        reason = _failure_reason(response, caught_exception)
        request_dict["context"][_FAILURE] = reason
        if self._on_attempt is not None:
            self._on_attempt("ok" if reason is None else "client_error" if reason == "other" else reason)

    def _count_retry(self, request: Any, **_: Any) -> None:
        context = request.context
        if context.get("retries", {}).get("attempt", 1) > 1 and self._on_retry is not None:
            self._on_retry(context.get(_FAILURE) or "other")

    def _add_headers(self, request: Any, **_: Any) -> None:
        for name, value in getattr(self._headers, "value", {}).items():
            request.headers[name] = value

    @contextmanager
    def _sending(self, headers: dict[str, str]) -> Iterator[None]:
        self._headers.value = headers
        try:
            yield
        finally:
            self._headers.value = {}

    def close(self) -> None:
        """Release the client's pooled connections."""
        self._client.close()

    # --- reads ---------------------------------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> ObjectStatus:
        """Status of ``bucket``/``key``. Raises ``FileNotFoundError`` if there is no such object or bucket."""
        with self._errors(_uri(bucket, key)):
            response = self._client.head_object(Bucket=bucket, Key=key)
        return ObjectStatus(
            bucket=bucket,
            key=key,
            size=response["ContentLength"],
            etag=_etag(response["ETag"]),
            mtime=response["LastModified"].timestamp(),
            metadata=ObjectMetadata.from_headers(response["ResponseMetadata"].get("HTTPHeaders", {})),
        )

    def list_level(self, bucket: str, prefix: str, limit: int | None = None) -> Listing:
        """Objects and common prefixes directly below ``prefix``, at most ``limit`` of them together.

        An object whose key is ``prefix`` itself (a "directory marker") is not a child of the level and is left out.
        Raises ``FileNotFoundError`` if the bucket does not exist.
        """
        listing = Listing()
        marker = False
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
        with self._errors(_uri(bucket, prefix)):
            while limit is None or len(listing.objects) + len(listing.prefixes) < limit:
                if limit is not None:
                    request["MaxKeys"] = min(_LIST_PAGE, limit - len(listing.objects) - len(listing.prefixes))
                page = self._client.list_objects_v2(**request)
                contents = page.get("Contents", [])
                marker = marker or any(o["Key"] == prefix for o in contents)
                listing.objects.extend(_status(bucket, o) for o in contents if o["Key"] != prefix)
                listing.prefixes.extend(p["Prefix"].removesuffix("/") for p in page.get("CommonPrefixes", []))
                if not page.get("IsTruncated"):
                    break
                request["ContinuationToken"] = page["NextContinuationToken"]
        return Listing(objects=listing.objects, prefixes=listing.prefixes, has_marker=marker)

    def list_recursive(self, bucket: str, prefix: str) -> Iterator[ObjectStatus]:
        """Every object whose key starts with ``prefix``, in key order, one page requested at a time.

        Raises ``FileNotFoundError`` (while iterating) if the bucket does not exist.
        """
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            with self._errors(_uri(bucket, prefix)):
                page = self._client.list_objects_v2(**request)
            # Yield outside the error translation: exceptions thrown into the generator are the caller's, not S3's.
            for item in page.get("Contents", []):
                yield _status(bucket, item)
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    def get_range(self, bucket: str, key: str, start: int, end: int, etag: str) -> bytes:
        """Bytes ``[start, end)`` of the object (fewer if it ends first), only if its ETag is still ``etag``.

        Raises ``FileNotFoundError`` if the object is gone, ``StaleObjectError`` if it changed, and ``ValueError``
        for a negative or reversed range or one that starts past the end of the object.
        """
        return b"".join(self.stream_range(bucket, key, start, end, etag, piece=max(1, end - start)))

    def stream_range(self, bucket: str, key: str, start: int, end: int, etag: str, *, piece: int) -> Generator[bytes]:
        """``get_range`` as it arrives, in pieces of at most ``piece`` bytes, from one ranged GET.

        A body that breaks off mid-stream (botocore retries a request until its headers arrive, not after) is
        resumed where it stopped, still conditioned on ``etag``, up to ``max_attempts`` times. Closing the iterator
        closes the connection's body.
        """
        if start < 0 or end < start:
            raise ValueError(f"invalid byte range [{start}, {end}) of {_uri(bucket, key)}")
        uri = _uri(bucket, key)
        attempt = 1
        while start < end:
            with self._errors(uri):
                response = self._client.get_object(
                    Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", IfMatch=_quoted(etag)
                )
            body = response["Body"]
            try:
                while start < end:
                    try:
                        data = body.read(min(piece, end - start))
                    except _TRANSPORT_ERRORS as exc:
                        if attempt == self._config.max_attempts:
                            raise UnderStoreUnavailableError(f"reading {uri} broke off at byte {start}: {exc}") from exc
                        attempt += 1
                        log.warning("reading %s broke off at byte %d (%s); resuming", uri, start, exc)
                        if self._on_retry is not None:
                            self._on_retry("body_broke_off")
                        break
                    if not data:
                        return  # the object ends before ``end``
                    start += len(data)
                    yield data
            finally:
                body.close()

    def bucket_exists(self, bucket: str) -> bool:
        """True if ``bucket`` exists and is reachable with the configured credentials."""
        try:
            with self._errors(_uri(bucket)):
                self._client.head_bucket(Bucket=bucket)
        except (FileNotFoundError, PermissionError):
            return False
        return True

    # --- writes --------------------------------------------------------------------------------------------

    def put_file(self, bucket: str, key: str, path: Path, metadata: ObjectMetadata | None = None) -> ObjectStatus:
        """Upload the local file ``path`` as ``bucket``/``key``; multipart from ``multipart_threshold`` bytes on.

        Returns the status S3 reports for the new object once the upload is complete. A failed multipart upload is
        aborted so that no orphaned parts are left behind.
        """
        size = path.stat().st_size
        with self._errors(_uri(bucket, key)), self._sending(metadata.headers() if metadata else {}):
            if size == 0 or size < self._config.multipart_threshold:
                with path.open("rb") as body:
                    self._client.put_object(Bucket=bucket, Key=key, Body=body)
            else:
                self._multipart_upload(bucket, key, path, _part_size(size, self._config.multipart_chunksize))
        return self.head(bucket, key)

    def put_bytes(self, bucket: str, key: str, data: bytes) -> ObjectStatus:
        """Write ``data`` as ``bucket``/``key`` in one request and return the new object's status."""
        with self._errors(_uri(bucket, key)):
            self._client.put_object(Bucket=bucket, Key=key, Body=data)
        return self.head(bucket, key)

    def copy(self, bucket: str, src_key: str, dst_key: str, metadata: ObjectMetadata | None = None) -> ObjectStatus:
        """Server-side copy of ``src_key`` to ``dst_key``; multipart copy from ``multipart_threshold`` bytes on.

        Raises ``FileNotFoundError`` if the source is gone and ``StaleObjectError`` if it changes during the copy
        (every request is conditional on the source's ETag, so a copy never mixes two versions). The copy keeps
        the source's metadata, or takes ``metadata`` (a multipart copy always sets it: it starts a new upload).
        """
        source = self.head(bucket, src_key)
        replace = metadata if metadata is not None else source.metadata
        headers = replace.headers() if replace else {}
        with self._errors(_uri(bucket, src_key)):
            if source.size == 0 or source.size < min(self._config.multipart_threshold, _MAX_SINGLE_COPY + 1):
                directive = {"x-amz-metadata-directive": "REPLACE"} if metadata is not None else {}
                with self._sending(headers | directive if metadata is not None else {}):
                    self._client.copy_object(
                        Bucket=bucket,
                        Key=dst_key,
                        CopySource={"Bucket": bucket, "Key": src_key},
                        CopySourceIfMatch=_quoted(source.etag),
                    )
            else:
                self._multipart_copy(source, dst_key, headers)
        return self.head(bucket, dst_key)

    def delete(self, bucket: str, keys: Iterable[str]) -> None:
        """Delete ``keys`` in batches of 1000; keys that do not exist are not an error.

        Raises ``FileNotFoundError`` if the bucket does not exist and ``PermissionError`` (or ``OSError``) naming
        the first key S3 refused to delete.
        """
        pending = iter(keys)
        while batch := list(islice(pending, _DELETE_BATCH)):
            with self._errors(_uri(bucket)):
                response = self._client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            failures = response.get("Errors", [])
            if failures:
                first = failures[0]
                message = (
                    f"S3 refused to delete {len(failures)} of {len(batch)} objects, first "
                    f"{_uri(bucket, first.get('Key', ''))}: {first.get('Code')}: {first.get('Message')}"
                )
                raise PermissionError(message) if first.get("Code") in _FORBIDDEN_CODES else OSError(message)

    # --- multipart -----------------------------------------------------------------------------------------

    def _multipart_upload(self, bucket: str, key: str, path: Path, part_size: int) -> None:
        # CRC32 on every part, as boto3's own transfer manager does: S3 verifies each part and the whole.
        upload_id = self._client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32")["UploadId"]
        self._headers.value = {}  # the metadata belongs to the upload's creation only
        try:
            parts: list[CompletedPartTypeDef] = []
            with path.open("rb") as file:
                while chunk := file.read(part_size):
                    number = len(parts) + 1
                    response = self._client.upload_part(
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                        ChecksumAlgorithm="CRC32",
                    )
                    parts.append(
                        {"PartNumber": number, "ETag": response["ETag"], "ChecksumCRC32": response["ChecksumCRC32"]}
                    )
            self._client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self._abort(bucket, key, upload_id)
            raise

    def _multipart_copy(self, source: ObjectStatus, dst_key: str, headers: dict[str, str]) -> None:
        bucket = source.bucket
        part_size = _part_size(source.size, self._config.multipart_chunksize)
        with self._sending(headers):
            upload_id = self._client.create_multipart_upload(Bucket=bucket, Key=dst_key)["UploadId"]
        try:
            parts: list[CompletedPartTypeDef] = []
            for number, first in enumerate(range(0, source.size, part_size), start=1):
                last = min(first + part_size, source.size) - 1
                response = self._client.upload_part_copy(
                    Bucket=bucket,
                    Key=dst_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": bucket, "Key": source.key},
                    CopySourceRange=f"bytes={first}-{last}",
                    CopySourceIfMatch=_quoted(source.etag),
                )
                parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
            self._client.complete_multipart_upload(
                Bucket=bucket, Key=dst_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self._abort(bucket, dst_key, upload_id)
            raise

    def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            # The original failure matters more; a bucket lifecycle rule removes what is left.
            log.warning("could not abort multipart upload %s of %s: %s", upload_id, _uri(bucket, key), exc)

    # --- errors --------------------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, uri: str) -> Iterator[None]:
        """Turn botocore's exceptions raised inside the block into the cache's errors, naming ``uri``."""
        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, uri) from exc
        except NoCredentialsError as exc:
            raise PermissionError(f"no S3 credentials found to access {uri} at {self._endpoint}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise UnderStoreUnavailableError(f"S3 at {self._endpoint} is unreachable ({uri}): {exc}") from exc

    def _client_error(self, exc: ClientError, uri: str) -> Exception:
        error = exc.response.get("Error", {})
        metadata = exc.response.get("ResponseMetadata", {})
        code = str(error.get("Code", ""))
        status = int(metadata.get("HTTPStatusCode", 0))
        detail = f"{code or status}: {error.get('Message') or 'no message'}"
        if code in _NOT_FOUND_CODES or status == 404:
            return FileNotFoundError(f"no such {'bucket' if code == 'NoSuchBucket' else 'object'}: {uri}")
        if code == "PreconditionFailed" or status == 412:
            return StaleObjectError(f"{uri} changed in S3 (its ETag no longer matches)")
        if code in _FORBIDDEN_CODES or status == 403:
            return PermissionError(f"S3 denied access to {uri}: {detail}")
        if code in _UNAVAILABLE_CODES or status >= 500:
            attempts = int(metadata.get("RetryAttempts", 0)) + 1
            return UnderStoreUnavailableError(
                f"S3 at {self._endpoint} is unreachable: {uri} still failing after {attempts} attempts ({detail})"
            )
        if code == "InvalidRange" or status == 416:
            return ValueError(f"byte range not satisfiable for {uri}: {detail}")
        return OSError(f"S3 refused the request on {uri}: {detail}")


def _failure_reason(response: Any, caught_exception: Any) -> str | None:
    """Why an attempt failed, in ``RETRY_REASONS``' terms; None for an answer below 400."""
    if caught_exception is not None:
        return "timeout" if isinstance(caught_exception, ReadTimeoutError | ConnectTimeoutError) else "connection"
    if response is None:
        return None
    http, parsed = response
    if http.status_code < 400:
        return None
    if parsed.get("Error", {}).get("Code") in _THROTTLING_CODES:
        return "throttled"
    return "server_error" if http.status_code >= 500 else "other"


def _status(bucket: str, item: ObjectTypeDef) -> ObjectStatus:
    return ObjectStatus(
        bucket=bucket,
        key=item["Key"],
        size=item["Size"],
        etag=_etag(item["ETag"]),
        mtime=item["LastModified"].timestamp(),
    )
