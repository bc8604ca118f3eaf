"""Reading the bytes of a block from the worker that owns it (``GET /cluster/v1/pages`` on its WebHDFS port).

A peer request names the object version (bucket, key, ETag, size) and a byte range; the owner answers from its page
store, fetching missing pages from S3 once however many ask, and caches them: a page lives on its block's owner.
Requests carry the cluster's secret (the admin token) as a bearer token: nobody else on the network can make a
worker read or cache anything. Answers are checked: a peer that sends the wrong number of bytes, or garbage instead
of an error, is a failed peer, and the read moves on to the next worker.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from cache_service.cluster.invalidation import Invalidation
from cache_service.errors import StaleObjectError
from cache_service.page_store import ObjectIdentity

PAGES_PATH = "/cluster/v1/pages"
INVALIDATIONS_PATH = "/cluster/v1/invalidations"
WATCH_PATH = "/cluster/v1/watch"
SECRET_HEADER = "Authorization"


class PeerError(ConnectionError):
    """A peer did not answer, answered late, or answered something that is not the bytes asked for."""


class NotCachedError(LookupError):
    """A peer asked for cached bytes only does not hold every page of the range."""


@dataclass(frozen=True)
class PageRange:
    """Bytes ``[start, end)`` of one object version: what a peer request asks for."""

    object: ObjectIdentity
    start: int
    end: int
    cached_only: bool = False
    """Ask only for bytes the peer holds: it answers ``NotCached`` rather than read S3."""

    def query(self) -> dict[str, str]:
        """The request's query parameters."""
        o = self.object
        fields = {
            "bucket": o.bucket,
            "key": o.key,
            "etag": o.etag,
            "size": str(o.size),
            "start": str(self.start),
            "end": str(self.end),
        }
        if self.cached_only:
            fields["cached"] = "only"
        return fields


class PeerReader:
    """Reads ranges from other workers over one pooled HTTP session (made on first use, closed by ``close``)."""

    def __init__(self, secret: str, timeout: float) -> None:
        self._headers = {SECRET_HEADER: f"Bearer {secret}"} if secret else {}
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=256, limit_per_host=64),
                trust_env=False,  # workers talk directly, never through a proxy from the environment
                auto_decompress=False,
            )
        return self._session

    async def read(self, base_url: str, wanted: PageRange) -> AsyncIterator[bytes]:
        """Bytes of ``wanted`` from the worker at ``base_url``, as they arrive.

        Raises ``StaleObjectError`` if the object changed in S3 (the owner found another ETag), ``FileNotFoundError``
        if it is gone, ``NotCachedError`` when ``wanted.cached_only`` and the peer lacks a page, and ``PeerError`` for
        anything else: no answer within the timeout, an error, a short body.
        """
        try:
            async with self._client().get(base_url.rstrip("/") + PAGES_PATH, params=wanted.query()) as response:
                if response.status != 200:
                    raise _refusal(response.status, await response.read())
                expected = wanted.end - wanted.start
                if response.content_length != expected:
                    raise PeerError(f"{base_url} announced {response.content_length} bytes, {expected} were asked")
                got = 0
                async for chunk in response.content.iter_any():
                    got += len(chunk)
                    yield chunk
                if got != expected:
                    raise PeerError(f"{base_url} sent {got} of {expected} bytes")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PeerError(f"{base_url} failed: {exc or type(exc).__name__}") from None

    async def give(self, base_url: str, wanted: PageRange, data: bytes, *, hot: bool) -> None:
        """Hand the worker at ``base_url`` the bytes of ``wanted`` (whole pages) to cache; ``hot`` puts them in its
        memory tier. Returns once it holds them.

        Raises ``PeerError`` when it does not answer within the timeout or refuses.
        """
        params = wanted.query() | ({"tier": "memory"} if hot else {})
        try:
            async with self._client().put(base_url.rstrip("/") + PAGES_PATH, params=params, data=data) as answer:
                if answer.status != 204:
                    raise _refusal(answer.status, await answer.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PeerError(f"{base_url} failed: {exc or type(exc).__name__}") from None

    async def admin_post(self, base_url: str, route: str, body: dict[str, Any]) -> tuple[int, Any]:
        """``POST /admin/v1/<route>`` on the worker at ``base_url`` with the cluster's secret; its status and JSON.

        Raises ``PeerError`` when it does not answer within the timeout or answers something that is not JSON.
        """
        try:
            async with self._client().post(f"{base_url.rstrip('/')}/admin/v1/{route}", json=body) as answer:
                return answer.status, json.loads(await answer.read())
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise PeerError(f"{base_url} failed: {exc or type(exc).__name__}") from None

    async def admin_get(self, url: str) -> Any:
        """The JSON at admin API ``url`` of another worker (a job it runs).

        Raises ``PeerError`` when it does not answer within the timeout, or not with JSON.
        """
        try:
            async with self._client().get(url) as answer:
                return json.loads(await answer.read())
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise PeerError(f"{url} failed: {exc or type(exc).__name__}") from None

    async def invalidate(self, base_url: str, change: Invalidation) -> None:
        """Tell the worker at ``base_url`` of ``change``; returns once it has applied it.

        Raises ``PeerError`` when it does not answer within the timeout or refuses.
        """
        try:
            async with self._client().post(base_url.rstrip("/") + INVALIDATIONS_PATH, json=change.fields()) as answer:
                if answer.status != 204:
                    raise _refusal(answer.status, await answer.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PeerError(f"{base_url} failed: {exc or type(exc).__name__}") from None

    async def watch(self, base_url: str, silence: float, alive: Callable[[], None]) -> None:
        """Hold a watch on the worker at ``base_url``, calling ``alive`` once it is established; returns when the
        worker ends it (it stopped or died).

        Raises ``PeerError`` when the worker cannot be reached, refuses, or says nothing for ``silence`` seconds.
        """
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=silence, sock_read=silence)
        try:
            async with self._client().get(base_url.rstrip("/") + WATCH_PATH, timeout=timeout) as response:
                if response.status != 200:
                    raise _refusal(response.status, await response.read())
                alive()
                async for _ in response.content.iter_any():
                    pass
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PeerError(f"{base_url} failed: {exc or type(exc).__name__}") from None

    async def close(self) -> None:
        """Close the session's connections."""
        if self._session is not None:
            await self._session.close()


def _refusal(status: int, body: bytes) -> Exception:
    try:
        error = json.loads(body)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return PeerError(f"a peer answered {status} with {body[:120]!r}")
    if code == "StaleObject":
        return StaleObjectError(message)
    if code == "NotFound":
        return FileNotFoundError(message)
    if code == "NotCached":
        return NotCachedError(message)
    return PeerError(f"a peer refused: {status} {code}: {message}")
