"""Where a cluster keeps staged files: every staging directory (a job's ``/out/_temporary``, see
``WriteConfig.staging_root``) has a home of ``staging_replicas`` workers, pinned in Redis when it is first used so
that a ring change does not move it. The first active worker of the home takes the directory's requests, whichever
worker they arrive at, and copies every change to the others before it answers; if it dies or drains, the next one,
which holds the same files, takes over. A home that lost a worker gains the next active one in ring order, which is
given a copy of the directory's files (``StagingCopies``, over each worker's WebHDFS port, marked with the cluster's
secret so the receiver applies it to its own copy only): at once when the ring changes (``HomeKeeper``), or on the
next request about the directory, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cache_service.cluster.member import Member, MemberState
from cache_service.cluster.membership import PREFIX
from cache_service.cluster.ring import BlockId
from cache_service.cluster.view import ClusterView
from cache_service.config import WriteConfig
from cache_service.write.staging import StagingArea

log = logging.getLogger(__name__)

HOMES = PREFIX + "staging:"
_KEEP = 7 * 24 * 3600  # seconds a home is remembered after its last change: abandoned jobs leave no key for ever
REPLICA = "X-Lakecache-Replica"
_SERVING = (MemberState.ACTIVE,)  # a draining worker hands its staging directories over (``hand_over``)


@dataclass(frozen=True)
class Home:
    """The live workers of a staging directory's home, the one that takes its requests first; ``joined`` are the
    ones added just now, which need a copy of its files; ``leaving`` the draining workers, any of which may hold a copy
    sent it by a worker that did not know yet it was draining (told of moves and deletions, so that such a copy goes
    when the directory's files do, rather than keep its drain waiting for it)."""

    members: tuple[Member, ...]
    joined: tuple[Member, ...] = ()
    leaving: tuple[Member, ...] = ()

    @property
    def primary(self) -> Member | None:
        """The worker that takes the directory's requests, if any is live."""
        return self.members[0] if self.members else None


@dataclass
class StagingHomes:
    """The homes of staging directories; see the module docstring."""

    redis: aioredis.Redis
    view: Callable[[], ClusterView]
    replicas: int
    usable: Callable[[list[Member]], list[Member]] = lambda members: members
    """Drops the workers known to be down (the router's suspects)."""
    _known: dict[str, list[str]] = field(default_factory=dict)

    def in_ring(self) -> bool:
        """True once this worker is an active (or draining) member of its own view: before it has joined the
        cluster it knows no live worker, so it can neither find a home nor make one."""
        view = self.view()
        return view.self_id in view.leaving.workers

    async def home(self, root: str, *, holder: bool = False) -> Home:
        """The home of staging directory ``root``, assigned on first use (never empty: with no active worker there is
        none). Works on the last known homes, or on the ring, while Redis does not answer.

        A home that lost workers is grown back to ``replicas`` live workers only by the worker that will give the
        new ones a copy of the files: its first live worker, or this one if ``holder`` (a draining worker handing it
        over). The workers added are in ``joined``, and recorded in Redis only once they took their copy (``grow``).
        A home none of whose workers is live stays as it is, and empty: its files are on the disks of workers that
        will be back, and a new home would hide them.
        """
        view = self.view()
        try:
            ids = _ids(await self.redis.get(HOMES + root))
        except (RedisError, OSError):
            ids = self._known.get(root)
        if ids is None:
            ids = view.ring.owners(BlockId("", root, 0), most=self.replicas)
            if not ids:
                return Home(())
            ids = await self._claim(root, ids)
        live = self.usable([view.members[i] for i in ids if i in view.members and view.members[i].state in _SERVING])
        joined: list[Member] = []
        gives_copies = holder or bool(live and live[0].id == view.self_id)
        if gives_copies and len(live) < min(self.replicas, len(view.ring)):
            taken = {m.id for m in live}
            for worker in view.ring.owners(BlockId("", root, 0)):
                if len(live) + len(joined) >= self.replicas:
                    break
                member = view.members[worker]
                if worker not in taken and self.usable([member]):
                    joined.append(member)
            if not joined and live:  # none to add: the record names the live ones, so one back later is not primary
                ids = [m.id for m in live]
                await self._write(root, ids)
        if not joined:
            self._known[root] = ids
        # Every draining worker, not only the record's: a home regrown without one no longer names it.
        leaving = tuple(m for m in view.members.values() if m.state is MemberState.DRAINING and m.id != view.self_id)
        return Home(tuple(live) + tuple(joined), tuple(joined), leaving)

    async def grow(self, root: str, home: Home, copies: StagingCopies) -> tuple[Home, bool]:
        """Give each worker that ``home`` (of staging directory ``root``, held here) ``joined`` a copy of the files,
        then record the home in Redis with those that took it. A worker whose copy failed is left out of the record
        and of the home returned, so that the next look at the home (the next request about the directory, or the
        next round of ``HomeKeeper``) adds and copies to it again: a home never names a worker that lacks its files.
        Returns the home and whether every worker added took its copy."""
        if not home.joined:
            return home, True
        me = self.view().self_id
        took = [m for m in home.joined if m.id == me or await copies.copy_tree(root, m)]
        members = tuple(m for m in home.members if m not in home.joined or m in took)
        ids = [m.id for m in members]
        if ids:  # else the record stays: an empty one would tell the other workers that nobody holds the files
            await self._write(root, ids)
            self._known[root] = ids
        return Home(members, tuple(took), home.leaving), len(took) == len(home.joined)

    async def hand_over(self, root: str, copies: StagingCopies) -> bool:
        """Give staging directory ``root``, held here, to the workers now in its home (this worker is draining: it is
        no longer among them); True once every one of them has a copy."""
        home, complete = await self.grow(root, await self.home(root, holder=True), copies)
        me = self.view().self_id
        given = [m for m in home.members if m.id != me]
        results = [await copies.copy_tree(root, m) for m in given if m not in home.joined]
        return bool(given) and complete and all(results)

    async def forget(self, root: str) -> None:
        """Staging directory ``root`` is gone: drop its home."""
        self._known.pop(root, None)
        try:
            await self.redis.delete(HOMES + root)
        except (RedisError, OSError) as exc:
            log.warning("could not drop a staging home", extra={"root": root, "error": str(exc)})

    async def _claim(self, root: str, ids: list[str]) -> list[str]:
        try:
            if await self.redis.set(HOMES + root, json.dumps(ids), nx=True, ex=_KEEP):
                return ids
            return _ids(await self.redis.get(HOMES + root)) or ids
        except (RedisError, OSError):
            return ids

    async def _write(self, root: str, ids: list[str]) -> None:
        try:
            await self.redis.set(HOMES + root, json.dumps(ids), ex=_KEEP)
        except (RedisError, OSError) as exc:
            log.warning("could not record a staging home", extra={"root": root, "error": str(exc)})


def _ids(raw: bytes | str | None) -> list[str] | None:
    if raw is None:
        return None
    try:
        ids = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return [str(i) for i in ids] if isinstance(ids, list) else None


@dataclass
class StagingCopies:
    """Copies of staged files and changes sent to other workers, from this worker's ``staging`` area."""

    staging: StagingArea
    secret: str
    timeout: float
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    def client(self) -> aiohttp.ClientSession:
        """The pooled HTTP session to other workers (made on first use)."""
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout * 6)
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=False, auto_decompress=False)
        return self._session

    async def close(self) -> None:
        """Close the connections to other workers."""
        if self._session is not None:
            await self._session.close()

    async def copy_tree(self, root: str, member: Member) -> bool:
        """Give ``member`` a copy of everything at or under ``root``; True when it took all of it."""
        ok = True
        for entry in self.staging.walk(root):
            if entry.is_dir:
                ok = await self.send(member, "PUT", webhdfs_url(entry.path, "MKDIRS", "")) and ok
            else:
                ok = await self.put_file(member, entry.path, "") and ok
        return ok

    async def put_file(self, member: Member, path: str, user: str) -> bool:
        """Give ``member`` staged file ``path`` as it is here (one that is gone meanwhile needs no copy)."""
        url = webhdfs_url(path, "CREATE", user, overwrite="true", data="true")
        try:
            with open(self.staging.local(path), "rb") as body:
                return await self.send(member, "PUT", url, body)
        except FileNotFoundError:
            return True

    async def send(self, member: Member, method: str, path_qs: str, body: object = None) -> bool:
        """``method path_qs`` on ``member``'s WebHDFS port as a copy; True when it applied it. A refusal (a 4xx, say
        a parent that is a file there) means its copy differs from this one's, so it counts as a failure too; only
        404 does not, a file already gone there (a deletion or move copied twice)."""
        try:
            async with self.client().request(
                method, member.webhdfs_url + path_qs, data=body, headers={REPLICA: self.secret}
            ) as answer:
                text = await answer.read()
                if answer.status >= 400 and answer.status != 404:
                    raise aiohttp.ClientError(f"{member.id} answered {answer.status}: {text[:200]!r}")
                return True
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("could not copy a staging change", extra={"worker": member.id, "error": str(exc)})
            return False


def staged_roots(staging: StagingArea, write: WriteConfig) -> list[str]:
    """The staging directories that have files or directories here, sorted."""
    return sorted({root for entry in staging.walk("/") if (root := write.staging_root(entry.path)) is not None})


@dataclass(eq=False)
class HomeKeeper:
    """Grows back, as soon as the ring changes, the homes of the staging directories held here that lost a worker,
    and gives each worker added to one a copy of its files: a home is back at ``replicas`` copies without waiting for
    a request about its directory, so the loss of a second worker later still loses no staged byte. A round in
    which a copy failed is tried again every ``poll`` seconds until every copy is taken.

    Only the first live worker of a home grows it (``StagingHomes.home``); the others leave it to that one."""

    homes: StagingHomes
    copies: StagingCopies
    write: WriteConfig
    poll: float
    _seen: str | None = None
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Check the ring every ``poll`` seconds from now on."""
        self._seen = self.homes.view().digest
        self._task = asyncio.create_task(self._follow(), name="staging-homes")

    async def stop(self) -> None:
        """Stop checking."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def regrow(self) -> bool:
        """Grow back every home held here that lost a worker; True when every worker added took its copy."""
        complete = True
        for root in staged_roots(self.copies.staging, self.write):
            home, grown = await self.homes.grow(root, await self.homes.home(root), self.copies)
            complete = complete and grown
            for member in home.joined:
                log.info("a staging home grew back", extra={"root": root, "worker": member.id})
        return complete

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            digest = self.homes.view().digest
            if digest == self._seen or not self.homes.in_ring():
                continue
            self._seen = digest
            try:
                complete = await self.regrow()
            except Exception:  # the keeper must outlive any one bad round: the next ring change tries again
                log.exception("could not grow the staging homes back")
                complete = True
            if not complete:
                self._seen = None  # a copy failed: try again next round, not only at the next ring change


def webhdfs_url(path: str, op: str, user: str, **params: str) -> str:
    """The path and query of WebHDFS ``op`` on ``path`` as ``user`` (none: the default user)."""
    query = "&".join(f"{k}={v}" for k, v in {"op": op, **({"user.name": user} if user else {}), **params}.items())
    return f"/webhdfs/v1{quote(path)}?{query}"
