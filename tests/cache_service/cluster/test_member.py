"""Member records round-trip through JSON, and garbage from Redis is refused with a reason."""

from __future__ import annotations

import pytest

from cache_service.cluster.member import Member, MemberState, MemberStats


def test_a_record_round_trips() -> None:
    member = Member(
        "w-0123456789ab",
        "http://127.0.0.1:9870",
        "http://127.0.0.1:9878",
        MemberState.DRAINING,
        started_at=1.5,
        heartbeat_at=2.5,
        ring="abc",
        stats=MemberStats(pages=3, used_bytes=4, capacity_bytes=5, hits=6, misses=2),
    )
    assert Member.decode(member.encode()) == member
    assert member.stats.hit_ratio == 0.75


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"id": "w-0123456789ab", "webhdfs_url": "", "s3_url": "x"}', "webhdfs_url must be a non-empty string"),
        ('{"id": "me", "webhdfs_url": "h", "s3_url": "s"}', "not a worker id"),
        ('{"id": "w-0123456789ab", "webhdfs_url": "h", "s3_url": "s", "state": "asleep"}', "malformed"),
    ],
)
def test_garbage_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Member.decode(text)
