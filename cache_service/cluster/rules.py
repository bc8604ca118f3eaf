"""Pins and TTLs are the cluster's, not a worker's: Redis holds them (``lakecache:cluster:rules``), and a change made
through any worker is written there and announced, and every worker takes it at once. Each worker still keeps its own
copy on its disk tier, so it applies them while Redis is away and after a restart. A worker that joins adds the pins
and TTLs only it had (set while alone, or while Redis was away) to the cluster's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from cache_service.cluster.membership import PREFIX, ClusterError, Membership
from cache_service.management.rules import PathRules

log = logging.getLogger(__name__)

RULES = PREFIX + "rules"


@dataclass
class SharedRules:
    """This worker's ``rules`` kept equal to the cluster's; see the module docstring."""

    membership: Membership
    rules: PathRules
    _reloads: set[asyncio.Task[None]] = field(default_factory=set)

    async def join(self) -> None:
        """Merge this worker's pins and TTLs with the cluster's, and follow the cluster's from now on."""
        self.membership.listen("rules", self._heard)
        try:
            raw = await self.membership.redis.get(RULES)
        except (RedisError, OSError) as exc:
            log.warning("could not read the cluster's pins and TTLs", extra={"error": str(exc)})
            return
        if raw is not None:
            mine, theirs = self.rules.snapshot(), json.loads(raw)
            self.rules.replace(
                {
                    "pins": sorted({*mine["pins"], *theirs.get("pins", [])}),
                    "ttls": mine["ttls"] | dict(theirs.get("ttls", {})),
                }
            )
        await self.share()

    async def share(self) -> None:
        """Make this worker's pins and TTLs the cluster's (after a change made here). A failure is logged: the
        change holds on this worker, and reaches the others with the next change shared."""
        try:
            await self.membership.redis.set(RULES, json.dumps(self.rules.snapshot()))
            await self.membership.publish("rules")
        except (RedisError, OSError, ClusterError) as exc:
            log.warning("could not share pins and TTLs with the cluster", extra={"error": str(exc)})

    def _heard(self) -> None:
        task = asyncio.create_task(self._reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload(self) -> None:
        try:
            raw = await self.membership.redis.get(RULES)
            if raw is not None:
                self.rules.replace(json.loads(raw))
        except (RedisError, OSError, ValueError) as exc:
            log.warning("could not take the cluster's pins and TTLs", extra={"error": str(exc)})
