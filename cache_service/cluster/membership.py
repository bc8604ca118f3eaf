"""Membership in Redis: this worker's registration, heartbeats, and the view of the cluster it routes by.

Redis holds, under ``lakecache:cluster:``:

- ``members``: a hash of worker id → ``Member`` JSON (URLs, state, last heartbeat, stats, ring digest);
- ``claim:<id>``: who holds an identity now (a random token per process, expiring after ``member_timeout``), so two
  processes never serve as one worker;
- ``events``: a pub/sub channel on which membership changes and invalidations are announced.

Each worker heartbeats every ``heartbeat_interval`` (one Lua script: renew the claim, stamp the record with Redis's
own clock) and re-reads the members; a member whose heartbeat is older than ``member_timeout`` is out of the ring.
Announcements make the others re-read at once; the periodic re-read covers announcements lost while disconnected.
If Redis stops answering, the worker keeps the last view it had (same ring, so it keeps agreeing with the others that
did the same) and reports itself degraded until Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cache_service.cluster.invalidation import Invalidation
from cache_service.cluster.member import Member, MemberState, MemberStats
from cache_service.cluster.view import ClusterView, mark_liveness, timed_out
from cache_service.logs import redacted_url

log = logging.getLogger(__name__)

PREFIX = "lakecache:cluster:"
MEMBERS = PREFIX + "members"
EVENTS = PREFIX + "events"
# How long one Redis call may take. Not tied to ``member_timeout``: a loaded host can take longer than a short member
# timeout to accept a connection, and a refused connection (Redis down) fails at once whatever this is.
REDIS_TIMEOUT = 2.0
_FORGET_AFTER = 600.0  # seconds after its last heartbeat that a gone member's record is dropped
# A lost member (timed out without leaving) is remembered longer: while its record stays, every worker reports it
# lost (lakecache_cluster_worker_lost), so its alert stands until it is back or an hour has passed.
_FORGET_LOST_AFTER = 3600.0

# KEYS[1] claim key, KEYS[2] members hash; ARGV: token, ttl ms, member id, record JSON (heartbeat_at filled in here).
# Returns Redis's time in seconds, or the holder's token when another process holds the identity.
_HEARTBEAT = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {0, holder} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local record = cjson.decode(ARGV[4])
record['heartbeat_at'] = now
redis.call('HSET', KEYS[2], ARGV[3], cjson.encode(record))
return {1, tostring(now)}
"""


class ClusterError(RuntimeError):
    """The cluster cannot be joined: Redis does not answer, or another process holds this worker's identity."""


class IdentityConflictError(ClusterError):
    """Another live process serves under this worker's id (a copied disk tier, or a second process on one disk)."""


InvalidationSink = Callable[[Invalidation | None], None]
"""Told of every invalidation announced by another worker; None means "forget everything" (announcements may have
been lost while Redis was unreachable)."""


class Membership:
    """This worker's membership: register, heartbeat, listen, and keep ``view`` current. See the module docstring."""

    def __init__(
        self,
        *,
        redis_url: str,
        me: Member,
        block_size: int,
        heartbeat_interval: float,
        member_timeout: float,
        stats: Callable[[], MemberStats],
    ) -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            redis_url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
        )
        # Announcements are read on a connection of their own that waits for them as long as it takes (the calls'
        # timeout would break it at each quiet moment) and is not reconnected behind this worker's back: a broken
        # subscription is noticed, renewed, and everything cached is forgotten (announcements were missed meanwhile).
        self._events: aioredis.Redis = aioredis.Redis.from_url(
            redis_url,
            socket_connect_timeout=REDIS_TIMEOUT,
            socket_timeout=None,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
        )
        self._url = redacted_url(redis_url)  # for logs and errors: a password in the URL stays out of both
        self._me = me
        self._token = secrets.token_hex(8)
        self._interval = heartbeat_interval
        self._timeout = member_timeout
        self._stats = stats
        self._on_invalidation: InvalidationSink = lambda _: None
        self.view = ClusterView(me.id, {me.id: me}, block_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self._leaving = False
        self._deaf = False  # no longer listening to other workers' announcements (see ``leave``)
        self._listeners: dict[str, Callable[[], None]] = {}

    @property
    def worker_id(self) -> str:
        """This worker's id."""
        return self._me.id

    @property
    def redis(self) -> aioredis.Redis:
        """The connection to the cluster's Redis, for the other records the cluster keeps there."""
        return self._redis

    # --- life cycle ------------------------------------------------------------------------------------------------

    async def join(self, on_invalidation: InvalidationSink) -> None:
        """Register this worker (active) and start heartbeating and listening; changes other workers announce go to
        ``on_invalidation``.

        Raises ``ClusterError`` if Redis does not answer, ``IdentityConflictError`` if another process still holds
        this identity after ``member_timeout`` (time for a killed predecessor's claim to expire).
        """
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise ClusterError(f"Redis at {self._url} does not answer: {exc}") from None
        self._on_invalidation = on_invalidation
        # Listening starts before this worker is registered: no worker can see it (and skip telling it directly of a
        # change) before it hears the announcements on Redis.
        try:
            events = await self._subscribe()
        except (RedisError, OSError) as exc:
            raise ClusterError(f"Redis at {self._url} does not answer: {exc}") from None
        on_invalidation(None)  # what was cached before (the ports serve while the worker starts) heard nothing
        try:
            await self._register()
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await events.aclose()
            raise
        self._tasks = [
            asyncio.create_task(self._beat_forever(), name="cluster-heartbeat"),
            asyncio.create_task(self._listen_forever(events), name="cluster-events"),
        ]
        log.info("joined the cluster", extra={"worker": self._me.id, "redis": self._url, "ring": self.view.digest})

    async def _register(self) -> None:
        """Claim this worker's identity (waiting out a killed predecessor's claim) and say it is active."""
        self._me = replace(self._me, state=MemberState.ACTIVE)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout + self._interval
        while True:
            holder = await self._heartbeat()
            if holder is None:
                break
            if loop.time() > deadline:
                raise IdentityConflictError(
                    f"worker id {self._me.id} is held by another live process (claim {holder}); two workers cannot "
                    "share a disk tier's identity: give this one its own disk tier"
                )
            await asyncio.sleep(self._interval / 4)
        await self._refresh()
        await self._announce_members()

    async def set_state(self, state: MemberState) -> None:
        """Say that this worker is now ``state`` (draining, or active again) and route by the ring that follows.

        Raises ``ClusterError`` when Redis does not answer: the others would not learn of it.
        """
        self._me = replace(self._me, state=state)
        try:
            await self._heartbeat()
            await self._refresh()
            await self._heartbeat()  # with the digest of the ring this worker routes by now
            await self._announce_members()
        except (RedisError, OSError) as exc:
            raise ClusterError(f"Redis at {self._url} does not answer: {exc}") from None
        log.info("cluster state changed", extra={"worker": self._me.id, "state": state.value, "ring": self.view.digest})

    async def leave(self, *, keep_listening: bool = False) -> None:
        """Mark this worker gone (its blocks move to their successors at once) and stop heartbeating. Leaving twice is
        leaving.

        ``keep_listening``: go on hearing the changes other workers announce, for a drained worker that still serves
        reads until it is stopped (nobody tells a worker out of the ring of a change directly, and without them it
        would serve its cached statuses until ``sync_interval``). A later ``leave()`` stops that too.
        """
        if self._me.state is not MemberState.GONE:
            self._leaving = True  # redis-py may turn a cancellation into a connection error: the loop checks this too
            await self._stop(self._tasks[:1])  # the heartbeat
            self._me = replace(self._me, state=MemberState.GONE)
            self.view = self.view.with_members(
                {**self.view.members, self._me.id: self._me}, self.view.degraded, self.view.lost
            )
            with contextlib.suppress(RedisError, OSError):
                await self._heartbeat()
                await self._redis.delete(PREFIX + "claim:" + self._me.id)
                await self._announce_members()
        if keep_listening or self._deaf:
            return
        self._deaf = True
        await self._stop(self._tasks[1:])
        await self._redis.aclose()
        await self._events.aclose()

    async def _stop(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self._timeout)

    # --- announcements -----------------------------------------------------------------------------------------------

    async def announce(self, invalidation: Invalidation) -> None:
        """Tell every other worker of a change. A failure is logged, not raised: the change is in S3 already, and the
        others' statuses expire after ``sync_interval`` anyway."""
        try:
            await self._redis.publish(EVENTS, invalidation.encode())
        except (RedisError, OSError) as exc:
            log.warning("could not announce a change", extra={"bucket": invalidation.bucket, "error": str(exc)})

    def listen(self, kind: str, heard: Callable[[], None]) -> None:
        """Call ``heard`` whenever another worker announces an event of ``kind`` (see ``publish``)."""
        self._listeners[kind] = heard

    async def publish(self, kind: str) -> None:
        """Tell every other worker that something of ``kind`` changed in Redis.

        Raises ``ClusterError`` when Redis does not answer.
        """
        try:
            await self._redis.publish(EVENTS, json.dumps({"kind": kind, "origin": self._me.id}))
        except (RedisError, OSError) as exc:
            raise ClusterError(f"Redis at {self._url} does not answer: {exc}") from None

    async def _announce_members(self) -> None:
        await self._redis.publish(EVENTS, json.dumps({"kind": "members", "origin": self._me.id}))

    # --- heartbeat and refresh ---------------------------------------------------------------------------------------

    async def _heartbeat(self) -> str | None:
        """Stamp this worker's record; returns the holder's token if another process holds the identity."""
        record = replace(self._me, stats=self._stats(), ring=self.view.digest)
        ttl_ms = str(int(self._timeout * 1000))
        ok, value = await self._redis.eval(  # type: ignore[misc]  # redis-py's stubs type eval as sync-or-async
            _HEARTBEAT, 2, PREFIX + "claim:" + self._me.id, MEMBERS, self._token, ttl_ms, self._me.id, record.encode()
        )
        if not ok:
            return _text(value)
        return None

    async def _refresh(self) -> None:
        raw: dict[Any, Any] = await self._redis.hgetall(MEMBERS)  # type: ignore[misc]
        seconds, micros = await self._redis.time()
        now = seconds + micros / 1e6
        members: dict[str, Member] = {}
        stale: list[str] = []
        for member_id, text in raw.items():
            try:
                member = Member.decode(text)
            except ValueError as exc:
                log.warning("ignoring a malformed member record", extra={"id": _text(member_id), "error": str(exc)})
                continue
            forget_after = _FORGET_AFTER if member.state is MemberState.GONE else _FORGET_LOST_AFTER
            if now - member.heartbeat_at > forget_after:
                stale.append(member.id)
                continue
            members[member.id] = member
        if stale:
            await self._redis.hdel(MEMBERS, *stale)  # type: ignore[misc]
        before = self.view
        self.view = before.with_members(
            mark_liveness(members, now, self._timeout), lost=timed_out(members, now, self._timeout)
        )
        if before.degraded:
            log.warning("Redis answers again: the cluster view is current", extra={"ring": self.view.digest})
            self._on_invalidation(None)  # announcements may have been missed while away
        if before.digest != self.view.digest:
            log.info("the ring changed", extra={"ring": self.view.digest, "active": list(self.view.ring.workers)})

    async def _beat_forever(self) -> None:
        while not self._leaving:
            try:
                holder = await self._heartbeat()
                if holder is not None:
                    self.view = self.view.marked_degraded(f"another process claims worker id {self._me.id}")
                    log.error("another process claims this worker's id", extra={"worker": self._me.id})
                else:
                    ring = self.view.digest
                    await self._refresh()
                    if self.view.digest != ring:
                        await self._heartbeat()  # say at once which ring this worker routes by now
            except (RedisError, OSError) as exc:
                if not self.view.degraded:
                    log.warning("Redis does not answer: serving on the last ring known", extra={"error": str(exc)})
                self.view = self.view.marked_degraded(f"Redis at {self._url} does not answer: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._interval)
            self._changed.clear()

    async def _subscribe(self) -> PubSub:
        """A subscription to the cluster's events that Redis has confirmed: no event published later is missed.

        Raises ``RedisError`` or ``OSError`` when Redis does not answer.
        """
        pubsub = self._events.pubsub()
        try:
            await pubsub.subscribe(EVENTS)
            confirmed = await pubsub.get_message(timeout=REDIS_TIMEOUT)
            if confirmed is None or confirmed.get("type") != "subscribe":
                raise RedisTimeoutError(f"Redis at {self._url} did not confirm the subscription to {EVENTS}")
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            raise
        return pubsub

    async def _listen_forever(self, events: PubSub) -> None:
        pubsub: PubSub | None = events
        try:
            while not self._deaf:
                try:
                    if pubsub is None:
                        pubsub = await self._subscribe()
                        self._on_invalidation(None)  # announcements were missed while not subscribed
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._on_event(message.get("data", b""))
                except (RedisError, OSError):
                    if pubsub is not None:
                        with contextlib.suppress(RedisError, OSError):
                            await pubsub.aclose()
                    pubsub = None
                    await asyncio.sleep(self._interval)
        finally:
            if pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _on_event(self, data: str | bytes) -> None:
        try:
            event = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("ignoring a malformed cluster event", extra={"event": repr(data)[:200]})
            return
        if not isinstance(event, dict) or event.get("origin") == self._me.id:
            return
        listener = self._listeners.get(str(event.get("kind")))
        if listener is not None:
            listener()
        elif event.get("kind") == "members":
            self._changed.set()
        elif event.get("kind") == "invalidate":
            try:
                change = Invalidation.decode({k: v for k, v in event.items() if k != "kind"})
            except ValueError as exc:
                log.warning("ignoring a malformed invalidation", extra={"event": repr(data)[:200], "error": str(exc)})
                return
            self._on_invalidation(change)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
