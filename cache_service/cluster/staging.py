"""Where a cluster keeps staged files: every staging directory (a job's ``/out/_temporary``, see
``WriteConfig.staging_root``) has a home of ``staging_replicas`` workers, pinned in Redis when it is first used so
that a ring change does not move it. The first live worker of the home takes the directory's requests, whichever
worker they arrive at, and copies every change to the others before it answers; if it dies, the next one, which
holds the same files, takes over. A home that lost a worker gains the next live one in ring order, which is given a
copy of the directory's files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cache_service.cluster.member import Member, MemberState
from cache_service.cluster.membership import PREFIX
from cache_service.cluster.ring import BlockId
from cache_service.cluster.view import ClusterView

log = logging.getLogger(__name__)

HOMES = PREFIX + "staging:"
_KEEP = 7 * 24 * 3600  # seconds a home is remembered after its last change: abandoned jobs leave no key for ever
_SERVING = (MemberState.ACTIVE, MemberState.DRAINING)


@dataclass(frozen=True)
class Home:
    """The live workers of a staging directory's home, the one that takes its requests first; ``joined`` are the
    ones added just now, which need a copy of its files."""

    members: tuple[Member, ...]
    joined: tuple[Member, ...] = ()

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

    async def home(self, root: str) -> Home:
        """The home of staging directory ``root``, assigned on first use, grown back to ``replicas`` live workers
        when some are gone. Works on the last known homes, or on the ring, while Redis does not answer."""
        view = self.view()
        try:
            ids = _ids(await self.redis.get(HOMES + root))
        except (RedisError, OSError):
            ids = self._known.get(root)
        if ids is None:
            ids = view.ring.owners(BlockId("", root, 0), most=self.replicas)
            ids = await self._claim(root, ids)
        live = self.usable([view.members[i] for i in ids if i in view.members and view.members[i].state in _SERVING])
        joined: list[Member] = []
        if len(live) < min(self.replicas, len(view.ring)):
            taken = {m.id for m in live}
            for worker in view.ring.owners(BlockId("", root, 0)):
                if len(live) + len(joined) >= self.replicas:
                    break
                member = view.members[worker]
                if worker not in taken and self.usable([member]):
                    joined.append(member)
            ids = [m.id for m in (*live, *joined)]
            await self._write(root, ids)
        self._known[root] = ids
        return Home(tuple(live) + tuple(joined), tuple(joined))

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
