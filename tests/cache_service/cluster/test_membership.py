"""Membership against a real redis-server: join, heartbeats, timeouts, announcements, and Redis going away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import redis

from cache_service.cluster.invalidation import Invalidation
from cache_service.cluster.member import Member, MemberState, MemberStats
from cache_service.cluster.membership import (
    MEMBERS,
    REDIS_TIMEOUT,
    ClusterError,
    IdentityConflictError,
    Membership,
)
from infra.ports import free_port
from infra.redis_server import RedisServer
from tests.cache_service.async_tests import run_async

INTERVAL = 0.1
TIMEOUT = 0.6


def membership(redis_url: str, worker: str) -> Membership:
    return Membership(
        redis_url=redis_url,
        me=Member(worker, f"http://127.0.0.1:1/{worker}", f"http://127.0.0.1:2/{worker}"),
        block_size=64 << 20,
        heartbeat_interval=INTERVAL,
        member_timeout=TIMEOUT,
        stats=lambda: MemberStats(pages=7),
    )


async def join(member: Membership, seen: list[Invalidation | None] | None = None) -> None:
    await member.join(seen.append if seen is not None else lambda _: None)


@asynccontextmanager
async def two_workers(
    redis_url: str, seen_a: list[Invalidation | None] | None = None, seen_b: list[Invalidation | None] | None = None
) -> AsyncIterator[tuple[Membership, Membership]]:
    """Workers a and b, joined (their announcements going to ``seen_a`` and ``seen_b``), and left at the end."""
    a, b = membership(redis_url, "w-00000000000a"), membership(redis_url, "w-00000000000b")
    await join(a, seen_a)
    await join(b, seen_b)
    try:
        yield a, b
    finally:
        await a.leave()
        await b.leave()


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)


@run_async
async def test_workers_that_join_see_each_other_and_route_alike(redis_url: str) -> None:
    async with two_workers(redis_url) as (a, b):
        await eventually(lambda: len(a.view.ring) == 2)
        assert b.view.ring.workers == a.view.ring.workers == ("w-00000000000a", "w-00000000000b")
        assert a.view.digest == b.view.digest
        assert a.view.members["w-00000000000b"].stats.pages == 7
        assert a.view.degraded is None


@run_async
async def test_a_worker_that_leaves_is_out_of_the_others_ring_at_once(redis_url: str) -> None:
    a, b = membership(redis_url, "w-00000000000a"), membership(redis_url, "w-00000000000b")
    await join(a)
    await join(b)
    await eventually(lambda: len(a.view.ring) == 2)
    await b.leave()
    await eventually(lambda: a.view.ring.workers == ("w-00000000000a",), within=INTERVAL * 3)
    assert a.view.members["w-00000000000b"].state is MemberState.GONE
    await asyncio.sleep(TIMEOUT * 2)  # past the timeout, the record of one that left still says it left
    assert a.view.lost == frozenset()
    await a.leave()


@run_async
async def test_a_worker_without_heartbeats_is_out_of_the_ring_after_the_timeout(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    seconds, micros = client.time()
    silent = Member("w-00000000000d", "http://d", "http://d", MemberState.ACTIVE, heartbeat_at=seconds + micros / 1e6)
    client.hset(MEMBERS, silent.id, silent.encode())
    a = membership(redis_url, "w-00000000000a")
    await join(a)
    try:
        assert a.view.ring.workers == ("w-00000000000a", "w-00000000000d")
        await eventually(lambda: len(a.view.ring) == 1, within=TIMEOUT * 4)
        assert a.view.members["w-00000000000d"].state is MemberState.GONE
        assert a.view.lost == {"w-00000000000d"}  # gone without having left
    finally:
        await a.leave()


@run_async
async def test_an_invalidation_reaches_the_other_workers_not_its_origin(redis_url: str) -> None:
    seen_a: list[Invalidation | None] = []
    seen_b: list[Invalidation | None] = []
    async with two_workers(redis_url, seen_a, seen_b) as (a, _):
        change = Invalidation("events", "date=2026-12-04/", exact=False, origin="w-00000000000a")
        await a.announce(change)  # at once: a worker that has joined is subscribed
        await eventually(lambda: change in seen_b)
        assert change not in seen_a
        assert seen_b[0] is None  # joining forgets what was cached before anything could be heard


@run_async
async def test_a_quiet_subscription_still_hears_the_next_announcement(redis_url: str) -> None:
    seen_b: list[Invalidation | None] = []
    async with two_workers(redis_url, seen_b=seen_b) as (a, _):
        await asyncio.sleep(REDIS_TIMEOUT + 1)  # longer than any Redis call may take: listening is not a call
        change = Invalidation("events", "date=2026-12-05/", exact=True, origin="w-00000000000a")
        await a.announce(change)
        await eventually(lambda: change in seen_b)
        assert seen_b == [None, change]  # the subscription never broke, so nothing else was forgotten


@run_async
async def test_a_broken_subscription_is_renewed_and_everything_cached_forgotten(redis_url: str) -> None:
    seen_b: list[Invalidation | None] = []
    async with two_workers(redis_url, seen_b=seen_b) as (a, _):
        killed = redis.Redis.from_url(redis_url).client_kill_filter(_type="pubsub")
        assert killed >= 2  # both workers' subscriptions
        await eventually(lambda: seen_b.count(None) == 2)  # announcements may have been missed meanwhile
        change = Invalidation("events", "date=2026-12-06/", exact=True, origin="w-00000000000a")
        await a.announce(change)
        await eventually(lambda: change in seen_b)


@run_async
async def test_a_second_process_with_the_same_identity_is_refused(redis_url: str) -> None:
    a, twin = membership(redis_url, "w-00000000000a"), membership(redis_url, "w-00000000000a")
    await join(a)
    try:
        with pytest.raises(IdentityConflictError, match="held by another live process"):
            await join(twin)
    finally:
        await a.leave()


@run_async
async def test_a_restart_takes_its_identity_back_once_the_dead_claim_expires(redis_url: str) -> None:
    crashed = membership(redis_url, "w-00000000000a")
    await join(crashed)
    for task in crashed._tasks:  # a SIGKILL: no leave, the claim stays until it expires
        task.cancel()
    restarted = membership(redis_url, "w-00000000000a")
    await join(restarted)
    assert restarted.view.ring.workers == ("w-00000000000a",)
    await restarted.leave()


@run_async
async def test_a_redis_that_does_not_answer_at_start_is_one_clear_error() -> None:
    url = f"redis://127.0.0.1:{free_port('127.0.0.1')}/0"
    with pytest.raises(ClusterError, match=f"Redis at {url} does not answer"):
        await join(membership(url, "w-00000000000a"))


def test_when_redis_hangs_workers_keep_their_ring_say_degraded_and_recover(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    async def scenario(server: RedisServer) -> None:
        seen: list[Invalidation | None] = []
        a, b = membership(server.url, "w-00000000000a"), membership(server.url, "w-00000000000b")
        await join(a, seen)
        await join(b)
        await eventually(lambda: len(a.view.ring) == 2)
        ring = a.view.ring
        server.pause()
        try:
            await eventually(lambda: a.view.degraded is not None, within=10)
            assert "does not answer" in (a.view.degraded or "")
            assert a.view.ring == ring
        finally:
            server.resume()
        await eventually(lambda: a.view.degraded is None, within=10)
        assert a.view.ring == ring
        assert None in seen  # told to forget what it could not hear about
        await a.leave()
        await b.leave()

    with RedisServer(tmp_path_factory.mktemp("redis-hang")) as server:
        asyncio.run(scenario(server))
