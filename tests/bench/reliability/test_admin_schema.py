"""schemathesis against the admin API of a live worker and of a live three-worker cluster (the quick budget): no 5xx,
every answer as described, every worker alive."""

from __future__ import annotations

import pytest

from bench.reliability.bad_input import LivePlan, admin_schema_run, live_plans
from bench.reliability.campaign import QUICK
from infra.s3_emulator import S3Emulator


@pytest.mark.parametrize("plan", live_plans(QUICK), ids=["1_worker", "3_workers"])
def test_quick_schema_campaign_finds_no_server_error_nor_undescribed_answer(
    plan: LivePlan, s3_emulator: S3Emulator
) -> None:
    result = admin_schema_run(plan, s3=s3_emulator)
    assert result.name == "admin_schema" + plan.label
    failures = "\n".join(f"{f.kind}: {f.message}\n  {f.example}" for f in result.failures)
    assert (result.crashes, result.server_errors, result.nonconforming) == (0, 0, 0), failures
    assert result.server_alive
    assert result.cases >= 200, result  # every operation, both modes, even on a loaded machine
