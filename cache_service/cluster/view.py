"""What one worker knows of the cluster at one moment: its members, the ring over the active ones, and whether that
knowledge is current (``degraded`` says why not). Reads are routed by a view; a new view replaces it whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import xxhash

from cache_service.cluster.member import Member, MemberState
from cache_service.cluster.ring import BlockId, Ring


@dataclass(frozen=True)
class Segment:
    """Bytes ``[start, end)`` of an object that lie in one block, and the workers for that block in order (its owner
    first). ``local`` is True when this worker is the owner."""

    start: int
    end: int
    owners: tuple[Member, ...]
    local: bool


@dataclass(frozen=True)
class ClusterView:
    """The cluster as worker ``self_id`` sees it. A single worker's view has one member and no Redis behind it."""

    self_id: str
    members: Mapping[str, Member]
    block_size: int
    degraded: str | None = None
    """Why this view may be out of date (Redis unreachable), or None while it is current."""
    lost: frozenset[str] = frozenset()
    """The members whose heartbeat timed out without their having left (killed, crashed, cut off from Redis): gone
    from the ring like a drained worker, but not by choice."""
    ring: Ring = field(init=False)
    leaving: Ring = field(init=False, repr=False)
    """The ring over the active and the draining workers: where blocks were before the draining ones left."""

    def __post_init__(self) -> None:
        active = [m.id for m in self.members.values() if m.state is MemberState.ACTIVE]
        draining = [m.id for m in self.members.values() if m.state is MemberState.DRAINING]
        object.__setattr__(self, "ring", Ring.of(active))
        object.__setattr__(self, "leaving", Ring.of(active + draining))

    @property
    def alone(self) -> bool:
        """True when this worker owns every block and no other holds any: the only worker, none draining."""
        return self.leaving.workers == (self.self_id,)

    @property
    def digest(self) -> str:
        """A short digest of the ring's workers: two workers with the same digest route every block alike."""
        return xxhash.xxh3_64_hexdigest("\0".join(self.ring.workers).encode())[:12]

    def active(self) -> list[Member]:
        """The workers that own blocks, by id."""
        return [self.members[w] for w in self.ring.workers]

    def owners(self, bucket: str, key: str, index: int) -> tuple[Member, ...]:
        """The workers for block ``index`` of ``bucket``/``key``, owner first. Empty when no worker is active."""
        return tuple(self.members[w] for w in self.ring.owners(BlockId(bucket, key, index)))

    def handoff_sources(self, bucket: str, key: str, index: int) -> list[Member]:
        """The workers that may still hold block ``index`` cached though it has a new owner, most likely first: the
        draining workers that outrank its owner (they owned it before they began to leave), then its first successor
        (its owner before the owner joined). This worker is never among them."""
        block = BlockId(bucket, key, index)
        owner = self.ring.owner(block)
        sources = []
        for worker in self.leaving.owners(block):
            if worker == owner:
                break
            sources.append(worker)
        sources += self.ring.owners(block, most=2)[1:]
        return [self.members[w] for w in sources if w != self.self_id]

    def segments(self, bucket: str, key: str, start: int, end: int) -> list[Segment]:
        """Bytes ``[start, end)`` of ``bucket``/``key`` cut at block boundaries, each with its workers. Adjacent
        blocks of the same owner are one segment, so a read that stays on one worker is one piece."""
        pieces: list[Segment] = []
        offset = start
        while offset < end:
            index = offset // self.block_size
            stop = min(end, (index + 1) * self.block_size)
            owners = self.owners(bucket, key, index)
            local = not owners or owners[0].id == self.self_id
            last = pieces[-1] if pieces else None
            if last is not None and last.local == local and last.owners[:1] == owners[:1]:
                pieces[-1] = Segment(last.start, stop, last.owners, local)
            else:
                pieces.append(Segment(offset, stop, owners, local))
            offset = stop
        return pieces

    def with_members(
        self, members: Mapping[str, Member], degraded: str | None = None, lost: frozenset[str] = frozenset()
    ) -> ClusterView:
        """The same worker's view with a new member list, ``lost`` those of them that timed out without leaving."""
        return ClusterView(self.self_id, dict(members), self.block_size, degraded, lost)

    def marked_degraded(self, why: str) -> ClusterView:
        """This view, kept as it is (same ring), marked out of date for ``why``."""
        return ClusterView(self.self_id, self.members, self.block_size, why, self.lost)


def timed_out(members: Mapping[str, Member], now: float, timeout: float) -> frozenset[str]:
    """The ids of ``members`` whose last heartbeat is older than ``timeout`` seconds at ``now`` though their own record
    does not say gone: lost, where a drained worker left."""
    return frozenset(
        member_id
        for member_id, member in members.items()
        if member.state is not MemberState.GONE and now - member.heartbeat_at > timeout
    )


def mark_liveness(members: Mapping[str, Member], now: float, timeout: float) -> dict[str, Member]:
    """``members`` with every one whose last heartbeat is older than ``timeout`` seconds at ``now`` marked gone."""
    out: dict[str, Member] = {}
    for member_id, member in members.items():
        stale = now - member.heartbeat_at > timeout
        if stale and member.state is not MemberState.GONE:
            member = replace(member, state=MemberState.GONE)
        out[member_id] = member
    return out
