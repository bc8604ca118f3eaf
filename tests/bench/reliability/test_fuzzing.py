"""The quick fuzz campaigns of the parsers (the budget ``make chaos`` runs by default): no input may crash one."""

from __future__ import annotations

import pytest

from bench.reliability.campaign import QUICK
from bench.reliability.fuzzing import TARGET_NAMES, fuzz_parser


@pytest.mark.parametrize("target", TARGET_NAMES)
def test_quick_fuzz_campaign_finds_no_crash(target: str) -> None:
    result = fuzz_parser(target, QUICK)
    assert result.crashes == 0, "\n".join(f"{f.kind}: {f.message} (input {f.example})" for f in result.failures)
    # The whole budget ran (or its time ran out first, on a loaded machine: then at least a good share of it).
    assert QUICK.cases is not None and result.cases >= min(QUICK.cases, 500), result


def test_fuzz_targets_are_the_parsers_module_targets() -> None:
    from bench.reliability.parsers import TARGETS

    assert set(TARGETS) == set(TARGET_NAMES)
