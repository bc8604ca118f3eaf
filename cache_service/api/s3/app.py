"""The S3 REST API on ``s3_port``: transparent over the under store, with the cache's page store behind reads.

Every request is authenticated (SigV4), then either served by the cache or forwarded to S3:

- keys with a cache path (inside a mount, addressable as a path) are read from the status cache and page store,
  and written through to S3 with their pages cached, exactly as WebHDFS does: one cache, two protocols;
- everything else (listings, bucket operations, subresources, copies, deletes, keys no mount covers or no path can
  name) goes to S3 as sent, and the cache forgets whatever the request may have changed.

Any failure is answered with S3's XML error and S3's code; nothing a client sends produces a 500 or a stack trace.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from multidict import MultiMapping

from cache_service.api.connection import ApiConnection, ApiPort, serve
from cache_service.api.s3.buckets import check_listing, delete_objects, forgetting
from cache_service.api.s3.credentials import api_users, under_store_credentials
from cache_service.api.s3.errors import S3Error, as_s3_error, error_response
from cache_service.api.s3.forward import UnderStoreProxy
from cache_service.api.s3.grants import S3Access, S3User, S3Users
from cache_service.api.s3.multipart import MultipartHandlers
from cache_service.api.s3.object_metadata import check_user_metadata, refreshing
from cache_service.api.s3.objects import ObjectHandlers
from cache_service.api.s3.payload import Payload
from cache_service.api.s3.request import QueryParams, Target, parse_target, virtual_host_bucket
from cache_service.api.s3.uploads import MultipartUploads, is_local_upload_id
from cache_service.api.s3.verifier import Authorization, SignedRequest, SigV4Verifier
from cache_service.api.s3.warm_reads import WarmObjectReads
from cache_service.api.s3.xml import visible_buckets
from cache_service.config import CacheConfig
from cache_service.service import CacheService

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 16 * 1024  # a 1024-byte key percent-encoded, plus a presigned query, with room to spare
MAX_HEADER_FIELD = 8190
MAX_HEADER_SECTION = 8 * 1024  # S3 refuses larger header sections with RequestHeaderSectionTooLarge
# Options of the port's connections: S3 bodies must reach the handlers byte for byte.
HANDLER_ARGS: dict[str, Any] = {
    "max_line_size": MAX_REQUEST_LINE,
    "max_field_size": MAX_HEADER_FIELD,
    "auto_decompress": False,
}


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"})
# Object subresources the cache does not model: S3 answers them, for every key.
_OBJECT_SUBRESOURCES = _names(
    "acl tagging retention legal-hold attributes restore select select-type torrent versionId partNumber"
)
_BUCKET_SUBRESOURCES = _names(
    "accelerate acl analytics cors encryption intelligent-tiering inventory lifecycle location logging "
    "metrics notification object-lock ownershipControls policy policyStatus publicAccessBlock replication "
    "requestPayment tagging uploads versioning versions website"
)
# Request headers whose meaning the write-through path cannot keep (encryption, ACLs, tags, conditions): writes
# carrying them go to S3 unchanged, and the cache forgets the key. Metadata (content headers, x-amz-meta-*) is kept.
_S3_ONLY_HEADERS = _names(
    "x-amz-tagging x-amz-storage-class x-amz-acl x-amz-website-redirect-location "
    "if-match if-none-match x-amz-copy-source "
    "x-amz-write-offset-bytes x-amz-expected-bucket-owner x-amz-request-payer "
    "x-amz-bucket-object-lock-enabled"
)
_S3_ONLY_PREFIXES = ("x-amz-server-side-encryption", "x-amz-grant-", "x-amz-object-lock-")
_METADATA_WRITES = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})
_POST_OPERATIONS = frozenset({"DeleteObjects", "CreateMultipartUpload", "CompleteMultipartUpload"})
_BUCKET_OPERATIONS = {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}


def needs_s3(headers: MultiMapping[str]) -> bool:
    """True when a write carries something only S3 can keep (tags, encryption, ACLs, conditions)."""
    return any(n.lower() in _S3_ONLY_HEADERS or n.lower().startswith(_S3_ONLY_PREFIXES) for n in headers)


def operation(method: str, target: Target, params: QueryParams, headers: MultiMapping[str]) -> str:
    """S3's name for the operation a request asks for (for metrics, logs and dispatch)."""
    if not target.bucket:
        return "ListBuckets" if method == "GET" else "ServiceRequest"
    if target.key is None:
        if method == "POST" and "delete" in params:
            return "DeleteObjects"
        if method != "HEAD" and params.names() & (_BUCKET_SUBRESOURCES - {"location", "uploads"}):
            return "BucketSubresource"
        if method == "GET":
            if "location" in params:
                return "GetBucketLocation"
            if "uploads" in params:
                return "ListMultipartUploads"
            return "ListObjectsV2" if params.get("list-type") is not None else "ListObjects"
        return _BUCKET_OPERATIONS.get(method, "BucketRequest")
    multipart = "uploadId" in params
    copy = "x-amz-copy-source" in headers
    if method == "PUT" and multipart and "partNumber" in params:
        return "UploadPartCopy" if copy else "UploadPart"
    if params.names() & (_OBJECT_SUBRESOURCES - {"versionId", "partNumber"}):
        return "ObjectSubresource"
    if method == "POST":
        if "uploads" in params:
            return "CreateMultipartUpload"
        return "CompleteMultipartUpload" if multipart else "ObjectRequest"
    if method == "PUT":
        return "CopyObject" if copy else "PutObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if multipart else "DeleteObject"
    if method == "GET":
        return "ListParts" if multipart else "GetObject"
    return "HeadObject" if method == "HEAD" else "ObjectRequest"


def virtual_host_domains(config: CacheConfig) -> frozenset[str]:
    """Host names under which ``<bucket>.<name>`` addresses a bucket: ``localhost`` and the names the cache
    listens and advertises under (IP addresses cannot carry a bucket)."""
    names = {"localhost"}
    for host in (config.server.host, config.cluster.advertise_host):
        if host:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                names.add(host.lower())
    return frozenset(names)


@dataclass
class _Seen:
    """What ``handle`` learned of a request before it failed, for its error, its metrics and its log line."""

    resource: str
    op: str = "Unknown"
    access_key: str = ""
    refused: bool = False
    """True when the user's grants refused the request."""


@dataclass(frozen=True)
class _Admitted:
    """A request that passed ``S3Api._admit``: its query, signature, target, operation and user."""

    params: QueryParams
    auth: Authorization
    target: Target
    op: str
    user: S3User


class S3Api:
    """Authenticates, routes and answers requests on the S3 port."""

    def __init__(
        self,
        service: CacheService,
        users: S3Users,
        proxy: UnderStoreProxy,
        uploads: MultipartUploads,
    ) -> None:
        self._service = service
        self._verifier = SigV4Verifier(users.credentials(), service.config.under_store.region)
        self._access = S3Access(users, service.mounts)
        self.by_user = service.metrics.user_requests("s3", users.names())
        """Requests counted by user (``WarmObjectReads`` counts those it answers)."""
        self._domains = virtual_host_domains(service.config)
        self._proxy = proxy
        self._reads = service.reads
        self._objects = ObjectHandlers(self._reads, service.uploader, service.status)
        self._multipart = MultipartHandlers(service, uploads)
        # A worker alone holds the multipart uploads to its mounts (``MultipartHandlers``). In a cluster, S3 does:
        # its uploads take any part through any worker, and no worker's loss or drain loses an acknowledged part.
        self._holds_uploads = service.cluster is None

    async def handle(self, http: web.Request) -> web.StreamResponse:
        """Answer one request; every failure becomes S3's XML error."""
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16].upper()
        seen = _Seen(resource=http.path)
        try:
            header_bytes = sum(len(k) + len(v) + 4 for k, v in http.raw_headers)
            a = self._admit(http.method, http.raw_path, http.headers, header_bytes, seen)
            self.by_user.count(a.user.name, allowed=True)
            response = await self._dispatch(http, a.op, a.target, a.params, a.auth, a.user, request_id)
        except Exception as exc:  # every failure is S3's XML error; none escapes as a stack trace
            if seen.refused:
                self.by_user.count(seen.access_key, allowed=False)
            response = error_response(
                as_s3_error(exc), resource=seen.resource, request_id=request_id, head=http.method == "HEAD"
            )
        op, resource, access_key = seen.op, seen.resource, seen.access_key
        if http.method in ("PUT", "POST", "DELETE"):
            await self._service.status.settled()  # the other workers hear of a change before its caller does
        metrics = self._service.metrics
        metrics.requests.labels(api="s3", op=op, status=str(response.status)).inc()
        metrics.request_seconds.labels(api="s3", op=op).observe(time.perf_counter() - started)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "request",
                extra={
                    "api": "s3",
                    "method": http.method,
                    "op": op,
                    "path": resource,
                    "status": response.status,
                    "user": access_key,
                },
            )
        return response

    def _admit(
        self, method: str, raw_target: str, headers: MultiMapping[str], header_bytes: int, seen: _Seen
    ) -> _Admitted:
        """What every request passes before its operation runs, in S3's order: the query, the size of the headers
        (``header_bytes``), the method, the signature, the target, the operation and the user's grants. Raises the
        ``S3Error`` S3 would answer; ``seen`` keeps what was learned before, for the error, the metrics and the log."""
        raw_path, _, raw_query = raw_target.partition("?")
        params = QueryParams.parse(raw_query)
        if header_bytes > MAX_HEADER_SECTION:
            raise S3Error("RequestHeaderSectionTooLarge", MaxSizeAllowed=str(MAX_HEADER_SECTION))
        if method not in _METHODS:
            raise S3Error("MethodNotAllowed", Method=method, ResourceType="OBJECT")
        auth = self._verifier.verify(SignedRequest(method, raw_path, params.pairs, headers, raw_query))
        seen.access_key = auth.access_key
        target = parse_target(raw_path, virtual_host_bucket(headers.get("Host"), self._domains))
        seen.resource = target.resource
        seen.op = op = operation(method, target, params, headers)
        user = self._access.user(auth.access_key)
        try:
            self._access.check(user, op, method, target, params, headers)
        except S3Error:
            seen.refused = True
            raise
        return _Admitted(params, auth, target, op, user)

    def admit_read(
        self, method: str, raw_target: str, headers: MultiMapping[str], header_bytes: int
    ) -> tuple[str, Target, str] | None:
        """The operation, target and user (access key) of a GetObject or HeadObject admitted exactly as ``handle``
        admits it (signature, target, grants), for the S3 port's warm fast path (``WarmObjectReads``); None for any
        other request and for anything ``handle`` would refuse, which ``handle`` then answers with S3's error."""
        try:
            admitted = self._admit(method, raw_target, headers, header_bytes, _Seen(resource=""))
        except Exception:
            return None
        if admitted.op not in ("GetObject", "HeadObject") or admitted.params.names() & _OBJECT_SUBRESOURCES:
            return None
        return admitted.op, admitted.target, admitted.user.name

    async def _dispatch(
        self,
        http: web.Request,
        op: str,
        target: Target,
        params: QueryParams,
        auth: Authorization,
        user: S3User,
        request_id: str,
    ) -> web.StreamResponse:
        payload = None
        if http.method in ("PUT", "POST") or http.body_exists:
            payload = Payload(http.content, http.headers, auth, md5=op == "UploadPart")
        upload_id = params.get("uploadId")
        if upload_id is not None and is_local_upload_id(upload_id):
            return await self._local_multipart(http, op, target, params, payload, request_id)
        # Versions, parts of multipart objects, ACLs, tags and the like are S3's to answer, whatever the key.
        path = None
        if target.key is not None and not params.names() & _OBJECT_SUBRESOURCES:
            path = self._reads.cache_path(target.bucket, target.key)
        cached = path is not None
        if path is not None and op in ("GetObject", "HeadObject"):
            return await self._objects.get(http, path, target, params, request_id)
        if op in _METADATA_WRITES:
            check_user_metadata(http.headers)  # S3's limit, whoever stores the object
        if cached and op == "PutObject" and not needs_s3(http.headers):
            assert payload is not None
            return await self._objects.put(target, http.headers, payload, request_id)
        if cached and op == "CreateMultipartUpload" and self._holds_uploads and not needs_s3(http.headers):
            return await self._multipart.create(http, target, request_id)
        if op == "DeleteObjects":
            assert payload is not None
            return await delete_objects(
                self._service, self._proxy, http, target, params, auth, payload, user, self._access
            )
        if op == "ListBuckets" and not user.admin:
            only_seen = functools.partial(visible_buckets, sees=user.sees)
            return await self._proxy.forward(http, target, params, auth, rewrite=only_seen)
        if op in ("ListObjects", "ListObjectsV2"):
            check_listing(params)
        if http.method == "POST" and op not in _POST_OPERATIONS and not params.names() & {"restore", "select"}:
            if target.key is None:
                raise S3Error("NotImplemented", "POST Object (browser-based uploads) is not implemented by the cache")
            raise S3Error("MethodNotAllowed", Method="POST", ResourceType="OBJECT")
        changed = [target.key] if target.key is not None and http.method in ("PUT", "POST", "DELETE") else []
        forget = forgetting(self._service, target.bucket, changed)
        if cached and op == "CopyObject":
            forget = refreshing(self._service, target, forget)
        try:
            return await self._proxy.forward(http, target, params, auth, payload=payload, before_reply=forget)
        except S3Error as error:
            await forget()  # S3 may have changed the object before the request failed
            # Some S3 emulators crash on an unknown upload id where S3 answers NoSuchUpload: tell the two apart.
            if error.status >= 500 and upload_id and not await self._proxy.upload_exists(target, upload_id):
                raise S3Error("NoSuchUpload", UploadId=upload_id) from None
            raise

    async def _local_multipart(
        self,
        http: web.Request,
        op: str,
        target: Target,
        params: QueryParams,
        payload: Payload | None,
        request_id: str,
    ) -> web.StreamResponse:
        if op == "UploadPart":
            assert payload is not None
            return await self._multipart.upload_part(target, params, payload, request_id)
        if op == "ListParts":
            return await self._multipart.list_parts(target, params, request_id)
        if op == "CompleteMultipartUpload":
            assert payload is not None
            return await self._multipart.complete(http, target, params, payload, request_id)
        if op == "AbortMultipartUpload":
            return await self._multipart.abort(target, params, request_id)
        if op == "UploadPartCopy":
            return await self._multipart.upload_part_copy(http, target, params, request_id)
        raise S3Error("InvalidRequest", f"{op} does not take an uploadId")


S3_API = web.AppKey("s3_api", S3Api)
"""The application's ``S3Api``, which the warm fast path asks to admit requests."""


def build_s3_app(service: CacheService, env: Mapping[str, str]) -> web.Application:
    """The aiohttp application serving the S3 port. ``env`` resolves ``[s3_api] secret_key_env``.

    Raises ``ValueError`` for a half-configured ``[s3_api]`` or a user's secret missing from ``env``.
    """
    config = service.config
    under = under_store_credentials(config.under_store)
    users = api_users(config.s3_api, under, env)
    if not users.credentials():
        log.error("s3 api: no credentials ([s3_api] or the under store's): every request will be refused")
    proxy = UnderStoreProxy(config.under_store, under, service.executor)
    disk = config.store.disk_tier
    assert disk is not None and disk.path is not None, "config validation requires a disk tier"
    uploads = MultipartUploads(Path(disk.path) / "multipart")
    # Parts waiting on the disk tier take room from pages, as staged files do.
    service.reservations.add(uploads)
    api = S3Api(service, users, proxy, uploads)
    app = web.Application()
    app[S3_API] = api
    # [\s\S]: any raw path reaches the handler, which alone decides what it addresses.
    app.router.add_route("*", r"/{tail:[\s\S]*}", api.handle)

    async def close(_: web.Application) -> None:
        await proxy.close()

    app.on_cleanup.append(close)
    return app


class _S3Connection(ApiConnection):
    """Answers requests too broken to reach a handler (oversized lines or headers, garbage) with S3 XML."""

    __slots__ = ()

    def protocol_error(self, status: int, exc: BaseException | None, message: str | None) -> web.StreamResponse:
        if status >= 500:
            error = S3Error("InternalError")
        elif isinstance(exc, LineTooLong) and exc.args[1:2] == (MAX_REQUEST_LINE,):
            error = S3Error("InvalidURI", f"The request line is longer than {MAX_REQUEST_LINE} bytes.")
        elif isinstance(exc, LineTooLong) or "Too many headers" in str(exc):
            error = S3Error("RequestHeaderSectionTooLarge", MaxSizeAllowed=str(MAX_HEADER_SECTION))
        else:
            error = S3Error("InvalidRequest", f"Bad HTTP request: {message or HTTPStatus(status).phrase}")
        return error_response(error, resource="/", request_id=uuid.uuid4().hex[:16].upper(), head=False)


async def start_s3_api(service: CacheService, env: Mapping[str, str]) -> ApiPort:
    """Serve the S3 API on ``server.s3_port``, warm reads answered as they arrive (``WarmObjectReads``); returns the
    port to ``cleanup()`` at shutdown."""
    server = service.config.server
    app = build_s3_app(service, env)
    warm = WarmObjectReads(
        admit=app[S3_API].admit_read,
        by_user=app[S3_API].by_user,
        fs=service.fs,
        reads=service.reads,
        status=service.status,
        metrics=service.metrics,
    )
    return await serve(app, server.host, server.s3_port, _S3Connection, early=warm, **HANDLER_ARGS)
