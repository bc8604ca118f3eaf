"""schemathesis against a live worker's admin API (the quick budget): no 5xx, every answer as described, alive."""

from __future__ import annotations

from bench.reliability.bad_input import admin_schema_campaign
from bench.reliability.campaign import QUICK
from infra.s3_emulator import S3Emulator


def test_quick_schema_campaign_finds_no_server_error_nor_undescribed_answer(s3_emulator: S3Emulator) -> None:
    [result] = admin_schema_campaign(QUICK, s3=s3_emulator)
    failures = "\n".join(f"{f.kind}: {f.message}\n  {f.example}" for f in result.failures)
    assert (result.crashes, result.server_errors, result.nonconforming) == (0, 0, 0), failures
    assert result.server_alive
    assert result.cases >= 200, result  # every operation, both modes, even on a loaded machine
