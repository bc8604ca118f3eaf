"""S3 faults during the ETL (``bench.reliability.s3_faults``) at the quick budget: the telemetry ingest job succeeds
through a worker whose S3 fails now and then, its tables are a clean run's, the cache never serves bytes S3 does not
hold, and its metrics show the retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.reliability.campaign import QUICK
from bench.reliability.s3_faults import plans, run
from infra.s3_faults import FAULTS

pytestmark = pytest.mark.spark


@pytest.mark.parametrize("plan", plans(QUICK), ids=lambda plan: plan.label.replace(" ", "_"))
def test_the_etl_outlives_s3_faults_with_a_clean_runs_output_and_no_wrong_byte_served(plan, tmp_path: Path) -> None:
    result = run(plan, tmp_path)

    assert result.held, result.violations
    counts = result.counts
    assert sum(counts[f"injected_{kind}"] for kind in FAULTS) >= 5
    assert counts["retries"] >= 5
    assert counts["rows_compared"] > plan.events // 2  # the clean events and the quarantine, each matching
    assert counts.get("reads_same", 0) > 0
    assert counts.get("reads_different", 0) == counts.get("reads_short", 0) == 0
    assert counts["objects_swept"] >= 6  # the raw files and the tables' files, read whole through the cache
