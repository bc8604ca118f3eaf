"""``HandOver.give``, a drain's hand-over of its pages, on a real page store over the S3 emulator: pages purged or
evicted after the plan are skipped without failing the drain, a peer that fails once is tried again, and one that
keeps failing is named in the job's errors.

The new owner is a stand-in that records what it is given and fails as told: a peer slow past its timeout at one
given moment cannot be produced otherwise.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cache_service.cluster.drain import GIVE_ATTEMPTS, HandOver
from cache_service.cluster.member import Member, MemberState
from cache_service.cluster.peers import PageRange
from cache_service.cluster.view import ClusterView
from cache_service.jobs.model import Job
from cache_service.page_store.identity import ObjectIdentity
from cache_service.under_store.s3 import S3UnderStore
from tests.cache_service.async_tests import run_async
from tests.cache_service.page_store.test_store import PAGE, make_store, read


class NewOwner:
    """Takes pages; the first ``failures[(key, start)]`` tries of a range fail as a timeout would."""

    def __init__(self, failures: dict[tuple[str, int], int] | None = None) -> None:
        self.failures = dict(failures or {})
        self.taken: dict[tuple[str, int], bytes] = {}
        self.tries = 0

    async def give(self, base_url: str, wanted: PageRange, data: bytes, *, hot: bool) -> None:
        self.tries += 1
        place = (wanted.object.key, wanted.start)
        if self.failures.get(place, 0) > 0:
            self.failures[place] -= 1
            raise TimeoutError(f"{base_url} did not answer in time")
        self.taken[place] = data


def two_workers() -> ClusterView:
    members = {
        name: Member(name, f"http://{name}", f"http://{name}-s3", state=MemberState.ACTIVE)
        for name in ("w-leaving", "w-staying")
    }
    return ClusterView("w-leaving", members, PAGE)


def put(s3_client, s3_under_store: S3UnderStore, bucket: str, key: str, data: bytes) -> ObjectIdentity:
    s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    status = s3_under_store.head(bucket, key)
    return ObjectIdentity(status.bucket, status.key, status.etag, status.size)


@run_async
async def test_purged_pages_are_skipped_and_a_peer_that_failed_once_gets_the_page(
    s3_client, s3_under_store: S3UnderStore, bucket: str, tmp_path: Path
) -> None:
    kept, purged = os.urandom(3 * PAGE), os.urandom(2 * PAGE)
    with ThreadPoolExecutor(4) as executor:
        store, _ = make_store(s3_under_store, executor, tmp_path / "disk")
        a = put(s3_client, s3_under_store, bucket, "lake/a", kept)
        b = put(s3_client, s3_under_store, bucket, "lake/b", purged)
        assert await read(store, a) == kept and await read(store, b) == purged  # every page cached
        owner = NewOwner(failures={("lake/a", PAGE): 1})
        hand_over = HandOver(store, owner, two_workers)  # type: ignore[arg-type]
        plan = hand_over.plan(None)
        store.drop_version(b.file_id, reason="purge")  # a purge between the plan and the hand-over
        job = Job(id="drain", kind="drain", request={})

        given, evicted = await hand_over.give(job, plan)

    assert (given, evicted) == (3, 2), job.errors
    assert job.errors == []  # nothing failed: the drain succeeds
    assert owner.taken == {("lake/a", n * PAGE): kept[n * PAGE : (n + 1) * PAGE] for n in range(3)}
    assert owner.tries == 4  # page 1 of a twice
    assert job.progress.bytes_done == 3 * PAGE and job.progress.bytes_skipped == 2 * PAGE


@run_async
async def test_a_peer_that_keeps_failing_is_named_in_the_jobs_errors(
    s3_client, s3_under_store: S3UnderStore, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(2 * PAGE)
    with ThreadPoolExecutor(4) as executor:
        store, _ = make_store(s3_under_store, executor, tmp_path / "disk")
        a = put(s3_client, s3_under_store, bucket, "lake/a", data)
        assert await read(store, a) == data
        owner = NewOwner(failures={("lake/a", 0): GIVE_ATTEMPTS})
        hand_over = HandOver(store, owner, two_workers)  # type: ignore[arg-type]
        job = Job(id="drain", kind="drain", request={})

        given, evicted = await hand_over.give(job, hand_over.plan(None))

    assert (given, evicted) == (1, 0)
    assert [(e.path, e.error) for e in job.errors] == [
        (f"s3://{bucket}/lake/a#page=0", "http://w-staying did not answer in time")
    ]
    assert owner.tries == GIVE_ATTEMPTS + 1
