"""Staged files in a cluster, through WebHDFS: a request about a staging directory (``/out/_temporary/...``, or a
RENAME into or out of one) goes to the first live worker of the directory's home (``StagingHomes``), whichever
worker it reached. That worker applies it and copies the change to the rest of the home before it answers, so an
acknowledged staged file is on ``staging_replicas`` workers' disks: losing any one of them loses no staged byte, and
the next worker of the home, which holds the same files, takes the directory's requests from then on.

Workers mark the requests they send each other with the cluster's secret: ``X-Lakecache-Forwarded`` (act as the
home's first worker) and ``X-Lakecache-Replica`` (apply the change to this worker's own copy, nothing more). A
publishing RENAME is copied as the deletion of its source: its files are in S3 once it answers. CREATE, APPEND and
TRUNCATE are copied as the whole file they leave, CONCAT as its target and the deletion of its sources.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from cache_service.cluster.member import Member
from cache_service.cluster.peers import PeerError
from cache_service.cluster.staging import REPLICA, Home, StagingCopies, StagingHomes, webhdfs_url
from cache_service.config import WriteConfig

log = logging.getLogger(__name__)

FORWARDED = "X-Lakecache-Forwarded"
_CHANGING = frozenset({"PUT", "POST", "DELETE"})
_NOT_COPIED = frozenset({"SETPERMISSION", "SETOWNER", "SETTIMES", "SETREPLICATION"})  # staged files keep none
_WHOLE_FILE_COPIED = frozenset({"CREATE", "APPEND", "TRUNCATE"})
_ADDS_BYTES = _WHOLE_FILE_COPIED | {"CONCAT"}
"""Changes not passed on to a draining worker of the home: it takes no new bytes, only moves and deletions."""
_PASSED_ON = ("Content-Type", "Content-Length")

Local = Callable[[], Awaitable[web.StreamResponse]]


@dataclass
class StagingRelay:
    """Sends staging requests to their home and copies their changes; see the module docstring."""

    homes: StagingHomes
    copies: StagingCopies
    write: WriteConfig
    worker: str
    suspect: Callable[[str], None]
    """Called with a worker that failed to answer: requests route around it for a while."""

    async def handle(self, request: web.Request, path: str, op: str, local: Local) -> web.StreamResponse:
        """Answer ``request`` (``op`` on ``path``): here through ``local``, or at the home of its staging directory.

        Raises ``PermissionError`` for a worker's mark without the cluster's secret and ``ConnectionError`` when no
        worker of the home answers.
        """
        role = self._role(request)
        if role == REPLICA:
            return await local()
        root = self._root(request, path, op)
        if root is None:
            return await local()
        if not self.homes.in_ring():
            raise ConnectionError("this worker is still joining the cluster; retry")
        home = await self.homes.home(root)
        if home.primary is None:  # its workers are down, and hold its files: serving here would hide them
            raise ConnectionError(f"no worker holding {root} is up; retry")
        if role == FORWARDED or home.primary.id == self.worker:
            return await self._serve(request, op, path, root, home, local)
        for member in home.members:
            if member.id == self.worker:
                return await self._serve(request, op, path, root, home, local)
            try:
                return await self._forward(request, member)
            except PeerError as exc:
                self.suspect(member.id)
                log.warning(
                    "a staging home worker failed; trying the next", extra={"worker": member.id, "error": str(exc)}
                )
        raise ConnectionError(f"no worker holding {root} answers; retry")

    def from_worker(self, request: web.Request) -> bool:
        """True when another worker sent ``request`` (marked with the cluster's secret): its caller's rights were
        checked where it entered the cluster. Raises ``PermissionError`` for a mark without the secret."""
        return self._role(request) is not None

    def _role(self, request: web.Request) -> str | None:
        for mark in (REPLICA, FORWARDED):
            given = request.headers.get(mark)
            if given is not None:
                if not hmac.compare_digest(given.encode(), self.copies.secret.encode()):
                    raise PermissionError(f"{mark} must carry the cluster's secret")
                return mark
        return None

    def _root(self, request: web.Request, path: str, op: str) -> str | None:
        root = self.write.staging_root(path)
        if root is None and op == "RENAME":
            destination = request.query.get("destination", "")
            root = self.write.staging_root(destination) if destination.startswith("/") else None
        return root

    async def _serve(
        self, request: web.Request, op: str, path: str, root: str, home: Home, local: Local
    ) -> web.StreamResponse:
        home, _ = await self.homes.grow(root, home, self.copies)
        response = await local()
        if request.method not in _CHANGING or op in _NOT_COPIED or response.status not in (200, 201):
            return response
        others = [m for m in home.members if m.id != self.worker]
        leaving = [m for m in home.leaving if m.id != self.worker] if op not in _ADDS_BYTES else []
        copied = await asyncio.gather(*(self._copy_change(request, op, path, m) for m in [*others, *leaving]))
        copied = copied[: len(others)]  # a draining worker is told as a courtesy: its answer does not count
        failed = [m for m, ok in zip(others, copied, strict=True) if not ok]
        if failed:
            for member in failed:
                self.suspect(member.id)
            # The failed workers give way to the next live ones, which get a copy of the files.
            await self.homes.grow(root, await self.homes.home(root), self.copies)
        if op == "DELETE" and path == root:
            await self.homes.forget(root)
        return response

    # --- what workers send each other -------------------------------------------------------------------------

    async def _copy_change(self, request: web.Request, op: str, path: str, member: Member) -> bool:
        user = request.query.get("user.name", "")
        if op in _WHOLE_FILE_COPIED:  # the file's new bytes, whole: simpler than replaying the change
            return await self.copies.put_file(member, path, user)
        if op == "CONCAT":
            sources = [s for s in request.query.get("sources", "").split(",") if s]
            copied = await self.copies.put_file(member, path, user)
            for source in sources:
                copied = await self.copies.send(member, "DELETE", webhdfs_url(source, "DELETE", user)) and copied
            return copied
        if op == "RENAME" and self.write.staging_root(request.query.get("destination", "")) is None:
            # Published: its files are in S3 now, and the copies of its source go.
            return await self.copies.send(member, "DELETE", webhdfs_url(path, "DELETE", user, recursive="true"))
        return await self.copies.send(member, request.method, request.raw_path)

    async def _forward(self, request: web.Request, member: Member) -> web.StreamResponse:
        """Relay ``request`` to ``member`` and its answer back. Raises ``PeerError`` when ``member`` does not
        answer and nothing of the request's body was sent yet (it may be tried elsewhere)."""
        headers = {name: request.headers[name] for name in _PASSED_ON if name in request.headers}
        headers[FORWARDED] = self.copies.secret
        body = request.content if request.body_exists else None
        try:
            answer = await self.copies.client().request(
                request.method, member.webhdfs_url + request.raw_path, data=body, headers=headers, allow_redirects=False
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if body is not None and request.content.total_bytes:
                raise ConnectionError(f"{member.id} failed while taking the request's body: {exc}; retry") from None
            raise PeerError(f"{member.id} failed: {exc or type(exc).__name__}") from None
        async with answer:
            passed = {name: answer.headers[name] for name in ("Content-Type", "Location") if name in answer.headers}
            response = web.StreamResponse(status=answer.status, headers=passed)
            if answer.content_length is not None:
                response.content_length = answer.content_length
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        return response
