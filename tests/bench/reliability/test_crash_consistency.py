"""Crash consistency (``bench.reliability.crash_consistency``) at the quick budget, on one worker and on three: at
least 1,000 acknowledged writes, SIGKILLs of random workers and of all at once, and nothing acknowledged lost, nothing
torn. The judge itself is checked first on a history whose answer is known."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.reliability.campaign import QUICK
from bench.reliability.crash_consistency import plans, run
from bench.reliability.history import History, StagedFile, digest, judge


def test_the_judge_counts_lost_torn_and_unacknowledged_visible_writes() -> None:
    history = History()
    history.record("lake/kept", "CREATE", digest(b"v1"), 2, True)
    history.record("lake/kept", "APPEND", digest(b"v1+"), 3, True)
    history.record("lake/rolled-back", "PutObject", digest(b"a"), 1, True)
    history.record("lake/rolled-back", "PutObject", digest(b"b"), 1, True)
    history.record("lake/gone", "CompleteMultipartUpload", digest(b"m"), 1, True)
    history.record("lake/torn", "CREATE", digest(b"whole"), 5, False)
    history.record("lake/late", "CREATE", digest(b"x"), 1, True)
    history.record("lake/late", "CREATE overwrite", digest(b"y"), 1, False)
    history.record("lake/never", "PutObject", digest(b"n"), 1, False)
    staged = StagedFile("lake/out/part-0", "/lake/out/part-0", ["/lake/out/_temporary/part-0"], digest(b"s"), 1, True)
    history.record_staged(staged)
    history.publish(staged, acknowledged=False)
    objects = {
        "lake/kept": digest(b"v1+"),
        "lake/rolled-back": digest(b"a"),
        "lake/torn": digest(b"who"),
        "lake/late": digest(b"y"),
        "lake/stray": digest(b"?"),
        "lake/dir/": digest(b""),
    }

    verdict = judge(history, objects)

    assert sorted(line.split(":")[0] for line in verdict.lost) == ["lake/gone", "lake/rolled-back"]
    assert sorted(line.split(":")[0] for line in verdict.torn) == ["lake/stray", "lake/torn"]
    assert verdict.unacknowledged_visible == 1  # lake/late's overwrite, sent whole; lake/out/part-0 is judged apart
    assert history.acknowledged == 7
    assert history.counts["unacknowledged"] == 4


@pytest.mark.parametrize("plan", plans(QUICK), ids=lambda plan: plan.label.replace(" ", "_"))
def test_acknowledged_writes_survive_sigkills_byte_for_byte(plan, tmp_path: Path) -> None:
    result = run(plan, tmp_path)

    assert result.held, result.violations
    assert result.counts["acknowledged"] >= 1000
    assert result.counts["lost"] == 0 and result.counts["torn"] == 0 and result.counts["wrong_reads"] == 0
    assert result.counts["whole_cluster_kills"] == 1 and result.counts["kills"] == plan.kills
    assert (
        result.counts["acknowledged_RENAME_publish"] > 0 and result.counts["acknowledged_CompleteMultipartUpload"] > 0
    )
