"""Generated requests to both ports of a live worker and of a live three-worker cluster (the quick budget): no 5xx of
a worker's own, every worker lives, and the peer API refuses calls without the cluster's secret."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.reliability.bad_input import LivePlan, live_http_run, live_plans
from bench.reliability.campaign import QUICK
from bench.reliability.live_http import RawRequest, send
from bench.reliability.worker import throwaway_worker
from cache_service.api.s3.sigv4 import UNSIGNED_PAYLOAD, Credentials, sign_headers
from infra.s3_emulator import S3Emulator


@pytest.mark.parametrize("plan", live_plans(QUICK), ids=["1_worker", "3_workers"])
def test_quick_live_campaign_finds_no_server_error_and_the_workers_live(
    plan: LivePlan, s3_emulator: S3Emulator
) -> None:
    results = live_http_run(plan, s3=s3_emulator)
    assert [r.name for r in results] == ["live_webhdfs" + plan.label, "live_s3" + plan.label]
    for result in results:
        failures = "\n".join(f"{f.kind}: {f.message}\n  {f.example}" for f in result.failures)
        assert (result.crashes, result.server_errors) == (0, 0), failures
        assert result.server_alive, result
        assert result.cases >= 50, result  # a time budget: how many fit in it depends on the host's load
        # The requests reach the handlers: some succeed, most are refused by the API itself, not by HTTP parsing.
        assert sum(n for status, n in result.statuses.items() if status.startswith("2")) > 0, result.statuses
    if plan.workers > 1:  # OPENs went to blocks' owners; the peer API refused calls without the secret
        assert results[0].statuses.get("307", 0) > 0, results[0].statuses
        assert results[0].statuses.get("401", 0) > 0 and results[0].nonconforming == 0, results[0]


def test_an_undecodable_byte_in_a_signed_s3_path_is_refused_not_a_500(tmp_path: Path, s3_emulator: S3Emulator) -> None:
    # aiohttp decodes a raw 0x80 of the request line as U+DC80; the signature check once failed to encode it (500).
    with throwaway_worker(tmp_path, s3_emulator) as worker:
        host = worker.cache.s3_url.removeprefix("http://")
        for path in (f"/{worker.bucket}/warehouse/k\udc80", f"/{worker.bucket}/warehouse/k?a\udc80=1"):
            raw_path, _, raw_query = path.partition("?")
            headers = {"host": host}
            sign_headers(
                method="GET",
                raw_path=raw_path,
                query=[("a\udc80", "1")] if raw_query else [],
                headers=headers,
                payload_hash=UNSIGNED_PAYLOAD,
                credentials=Credentials("test", "test"),
                region="us-east-1",
                now=time.time(),
            )
            headers.pop("host")
            status = send(worker.cache.s3_url, RawRequest("GET", path, tuple(headers.items()), b""))
            assert status is not None and 400 <= status < 500, (path, status)
