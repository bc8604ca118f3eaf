"""Requests the cache does not serve itself, passed to the under store unchanged but for their signature.

Listings, bucket operations, subresources (ACLs, tags, versions), copies and deletes go to S3 as the client sent
them, re-signed with the under store's credentials, and S3's answer comes back byte for byte: the cache adds
nothing S3 would not say. Bodies stream through; a body that fails its checks is cut off before its last block,
so S3 never stores it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.payload import Payload
from cache_service.api.s3.request import QueryParams, Target
from cache_service.api.s3.sigv4 import (
    EMPTY_SHA256,
    PRESIGN_PARAMS,
    UNSIGNED_PAYLOAD,
    Credentials,
    is_sha256_hex,
    sign_headers,
)
from cache_service.api.s3.verifier import Authorization
from cache_service.config import UnderStoreConfig

log = logging.getLogger(__name__)

# Headers about one hop, or about the client's signature: never passed on.
_REQUEST_DROP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "expect",
        "content-length",
        "authorization",
        "x-amz-date",
        "x-amz-content-sha256",
        "x-amz-security-token",
        "x-amz-decoded-content-length",
        "x-amz-trailer",
    }
)
# Digests of a request body: a body the cache rewrote gets a new Content-MD5 and none of these.
_BODY_CHECKSUMS = ("content-md5", "x-amz-checksum-", "x-amz-sdk-checksum-algorithm")
_RESPONSE_DROP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length"}
)


class UnderStoreProxy:
    """Forwards S3 requests to the under store's endpoint, signed with its credentials."""

    def __init__(
        self, config: UnderStoreConfig, credentials: Callable[[], Credentials | None], executor: Executor
    ) -> None:
        self._endpoint = URL((config.endpoint_url or f"https://s3.{config.region}.amazonaws.com").rstrip("/"))
        port = self._endpoint.explicit_port
        self._host = f"{self._endpoint.raw_host}:{port}" if port else str(self._endpoint.raw_host)
        self._region = config.region
        self._credentials = credentials
        self._executor = executor
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.connect_timeout, sock_read=config.read_timeout
        )
        self._limit = config.max_connections
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                timeout=self._timeout,
                auto_decompress=False,
                trust_env=False,
                # Only what the client sent: no Content-Type, Accept or User-Agent of aiohttp's own.
                skip_auto_headers=("Content-Type", "Accept", "Accept-Encoding", "User-Agent"),
            )
        return self._session

    async def forward(
        self,
        request: web.Request,
        target: Target,
        params: QueryParams,
        auth: Authorization,
        *,
        payload: Payload | None = None,
        body: bytes | None = None,
        before_reply: Callable[[], Awaitable[None]] | None = None,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> web.StreamResponse:
        """Send the request to S3 and stream S3's answer back. ``body`` is a body already read and checked here (it
        may differ from the one sent: its Content-MD5 is recomputed, other checksums dropped); ``before_reply`` runs
        once S3 has answered, before the answer goes out (what S3 changed is forgotten by then); ``rewrite`` turns a
        successful answer's body (read whole: keep it for small answers) into the one sent.

        Raises ``S3Error``: ``ServiceUnavailable`` when S3 cannot be reached, or the body's own check failure.
        """
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _REQUEST_DROP}
        for name, value in headers.items():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise S3Error(
                    "InvalidArgument", f"The value of header {name} is not UTF-8", ArgumentName=name
                ) from None
        data: bytes | AsyncIterator[bytes] | None = None
        payload_hash = EMPTY_SHA256
        failure: list[S3Error] = []
        if body is not None:
            data, payload_hash = body, hashlib.sha256(body).hexdigest()
            headers = {k: v for k, v in headers.items() if not k.startswith(_BODY_CHECKSUMS)}
            headers["content-md5"] = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
            headers["content-length"] = str(len(body))
        elif payload is not None:
            length = payload.length
            if length is None:
                raise S3Error("MissingContentLength")
            headers["content-length"] = str(length)
            data = _capture(payload.chunks(), failure)
            # S3 checks a declared hex digest itself; a streaming body is decoded here, so S3 gets it unsigned.
            payload_hash = auth.payload_hash if is_sha256_hex(auth.payload_hash) else UNSIGNED_PAYLOAD
            if payload.streaming:
                encodings = [e for e in headers.pop("content-encoding", "").split(",") if e.strip() != "aws-chunked"]
                if any(e.strip() for e in encodings):
                    headers["content-encoding"] = ",".join(e.strip() for e in encodings if e.strip())
        url = await self._sign(request.method, target, params.without(PRESIGN_PARAMS), headers, payload_hash)
        try:
            async with self._client().request(
                request.method, url, headers=CIMultiDict(headers), data=data, allow_redirects=False
            ) as upstream:
                if before_reply is not None:
                    await before_reply()
                if rewrite is not None and upstream.status == 200:
                    return await _rewritten(upstream, rewrite)
                return await _relay(request, upstream)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if failure:
                raise failure[0] from None
            log.warning("s3 api: forwarding %s %s failed: %s", request.method, target.resource, exc)
            raise S3Error("ServiceUnavailable", f"The under store could not be reached: {exc}") from None

    async def _sign(
        self, method: str, target: Target, query: QueryParams, headers: dict[str, str], payload_hash: str
    ) -> URL:
        """Sign ``headers`` (lower-case names) for the request; returns its URL on the under store."""
        credentials = await asyncio.get_running_loop().run_in_executor(self._executor, self._credentials)
        if credentials is None:
            raise S3Error("AccessDenied", "The cache has no credentials for the under store")
        path = self._endpoint.raw_path.rstrip("/") + target.path
        headers["host"] = self._host
        sign_headers(
            method=method,
            raw_path=path,
            query=query.pairs,
            headers=headers,
            payload_hash=payload_hash,
            credentials=credentials,
            region=self._region,
            now=time.time(),
        )
        del headers["host"]  # aiohttp writes it from the URL, identically
        return URL(f"{self._endpoint.origin()}{path}" + (f"?{query.encode()}" if query.names() else ""), encoded=True)

    async def upload_exists(self, target: Target, upload_id: str) -> bool:
        """Whether S3 knows multipart upload ``upload_id`` of ``target`` (True when it cannot tell)."""
        query = QueryParams([("uploadId", upload_id, False), ("max-parts", "1", False)])
        headers: dict[str, str] = {}
        url = await self._sign("GET", target, query, headers, EMPTY_SHA256)
        try:
            async with self._client().get(url, headers=headers, allow_redirects=False) as upstream:
                return upstream.status != 404
        except (aiohttp.ClientError, TimeoutError, OSError):
            return True


async def _capture(chunks: AsyncIterator[bytes], failure: list[S3Error]) -> AsyncIterator[bytes]:
    # aiohttp reports an exception raised by a request body as a connection error; keep the real one.
    try:
        async for chunk in chunks:
            yield chunk
    except S3Error as exc:
        failure.append(exc)
        raise


async def _rewritten(upstream: aiohttp.ClientResponse, rewrite: Callable[[bytes], bytes]) -> web.Response:
    headers = CIMultiDict(
        (k, v) for k, v in upstream.headers.items() if k.lower() not in _RESPONSE_DROP | {"content-md5", "etag"}
    )
    return web.Response(status=upstream.status, headers=headers, body=rewrite(await upstream.read()))


async def _relay(request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    if upstream.status >= 500 and "xml" not in upstream.headers.get("Content-Type", ""):
        # A failure that is not S3's own XML error (an emulator's or a proxy's crash page): still answer in S3's terms.
        text = (await upstream.content.read(2048)).decode("utf-8", "replace")
        log.warning("s3 api: the under store failed a forwarded request with %d: %s", upstream.status, text[:200])
        raise S3Error("InternalError" if upstream.status == 500 else "ServiceUnavailable")
    headers = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in _RESPONSE_DROP)
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
    length = upstream.headers.get("Content-Length")
    if length is not None and length.isascii() and length.isdigit():
        response.content_length = int(length)
    await response.prepare(request)
    if request.method != "HEAD":
        try:
            async for chunk in upstream.content.iter_chunked(1 << 20):
                await response.write(chunk)
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            # Headers are gone: the client sees a short body, which every SDK treats as a failed read.
            log.warning("s3 api: the under store broke off a forwarded answer: %s", exc)
            response.force_close()
            return response
    await response.write_eof()
    return response
