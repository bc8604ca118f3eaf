"""``make chaos`` (``python -m bench.reliability``): every campaign of the suite run, its results in
``reliability.json`` and ``docs/reliability.md``, and exit status 1 when a guarantee broke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.reliability.__main__ import main
from bench.reliability.campaign import QUICK, Budget, CampaignResult, Failure, GuaranteeResult
from bench.reliability.suite import CAMPAIGNS, Result
from bench.report import machine


def held(budget: Budget) -> list[Result]:
    assert budget == QUICK
    return [
        GuaranteeResult(
            "writes, one worker", "nothing lost", {"acknowledged": 1200, "lost": 0}, True, [], 1.5, "cmd held"
        )
    ]


def broken(budget: Budget) -> list[Result]:
    return [
        GuaranteeResult(
            "writes, three workers",
            "nothing lost",
            {"acknowledged": 900, "lost": 2},
            False,
            ["lost: lake/a | gone"],
            2.0,
            "cmd broken",
        )
    ]


def fuzzed(budget: Budget) -> list[Result]:
    result = CampaignResult("fuzz_sigv4", "sigv4", "atheris", cases=3000, seconds=30.0, command="cmd fuzz")
    return [result]


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAOS_FULL", raising=False)


def test_the_page_has_a_summary_and_a_table_per_campaign_and_a_broken_guarantee_fails(tmp_path: Path) -> None:
    campaigns = (("held_one", held), ("broken_one", broken), ("fuzzing", fuzzed))
    results, doc = tmp_path / "reliability.json", tmp_path / "reliability.md"

    status = main([], campaigns=campaigns, results=results, doc=doc)

    assert status == 1
    page = doc.read_text()
    for command in ("cmd held", "cmd broken", "cmd fuzz"):
        assert f"Reproduce: `{command}`" in page
    assert page.index("## Held one") < page.index("## Broken one") < page.index("## Fuzzing")
    summary = page.split("## Summary")[1].split("\n## ")[0]
    commit = machine()["commit"]
    assert "| writes, one worker | nothing lost | acknowledged 1,200, lost 0 | held | " in summary
    assert "| writes, three workers | nothing lost | acknowledged 900, lost 2 | **broken** | " in summary
    assert summary.count(f", {commit}, quick |") == 3  # each result says when, on which commit, with which budget
    assert "fuzz_sigv4" in summary
    assert "- `lost: lake/a \\| gone`" in page
    stored = json.loads(results.read_text())
    assert list(stored["campaigns"]) == ["held_one", "broken_one", "fuzzing"]
    assert stored["campaigns"]["broken_one"][0]["ok"] is False
    assert stored["campaigns"]["fuzzing"][0]["kind"] == "inputs"


def test_only_runs_the_campaign_named_and_keeps_the_others_last_results(tmp_path: Path) -> None:
    campaigns = (("held_one", held), ("broken_one", broken))
    results, doc = tmp_path / "reliability.json", tmp_path / "reliability.md"
    assert main([], campaigns=campaigns, results=results, doc=doc) == 1

    stored = json.loads(results.read_text())["campaigns"]
    stored["broken_one"][0]["ran"] = {"at": "2026-01-02 03:04 UTC", "commit": "0ld0ne", "full": True}
    results.write_text(json.dumps({"campaigns": stored}))

    status = main(["--only", "held_one"], campaigns=campaigns, results=results, doc=doc)

    assert status == 0  # what broke earlier is still on the page, but this run broke nothing
    page = doc.read_text()
    assert "**broken**" in page
    assert "| **broken** | 2026-01-02 03:04 UTC, 0ld0ne, full |" in page  # a kept result still says when it ran


def test_a_fuzzing_failure_is_listed_with_its_kind(tmp_path: Path) -> None:
    def crashing(budget: Budget) -> list[Result]:
        result = CampaignResult("fuzz_s3_xml", "s3_xml", "atheris", cases=10, crashes=1, command="cmd")
        result.failures.append(Failure("KeyError at xml.py:3", "KeyError: 'Part'", "3c"))
        return [result]

    status = main([], campaigns=(("fuzzing", crashing),), results=tmp_path / "r.json", doc=tmp_path / "r.md")

    assert status == 1
    assert "- `KeyError at xml.py:3: KeyError: 'Part'`" in (tmp_path / "r.md").read_text()


def test_every_campaign_of_the_suite_has_a_name_of_its_own() -> None:
    names = [name for name, _ in CAMPAIGNS]
    assert len(names) == len(set(names)) and "crash_consistency" in names


def test_a_campaign_that_raises_is_broken_on_the_page_and_the_others_still_run(tmp_path: Path) -> None:
    def raising(budget: Budget) -> list[Result]:
        raise FileNotFoundError("no such log")

    campaigns = (("raising", raising), ("held_one", held))
    results, doc = tmp_path / "reliability.json", tmp_path / "reliability.md"

    status = main([], campaigns=campaigns, results=results, doc=doc)

    assert status == 1
    stored = json.loads(results.read_text())["campaigns"]
    assert stored["held_one"][0]["ok"] is True
    assert stored["raising"][0]["ok"] is False
    assert "FileNotFoundError at test_chaos.py" in stored["raising"][0]["violations"][0]
    assert "| raising | the campaign runs to its end |  | **broken** |" in doc.read_text()


def test_a_run_keeps_what_another_run_wrote_while_it_ran(tmp_path: Path) -> None:
    results, doc = tmp_path / "reliability.json", tmp_path / "reliability.md"
    assert main([], campaigns=(("held_one", held), ("fuzzing", fuzzed)), results=results, doc=doc) == 0

    def slow(budget: Budget) -> list[Result]:
        # Meanwhile, a run of fuzzing alone ends and writes its results.
        main(["--only", "fuzzing"], campaigns=(("held_one", held), ("fuzzing", fuzzed2)), results=results, doc=doc)
        return held(budget)

    def fuzzed2(budget: Budget) -> list[Result]:
        return [CampaignResult("fuzz_sigv4", "sigv4", "atheris", cases=4321, seconds=30.0, command="cmd fuzz")]

    main(["--only", "held_one"], campaigns=(("held_one", slow), ("fuzzing", fuzzed)), results=results, doc=doc)

    assert json.loads(results.read_text())["campaigns"]["fuzzing"][0]["cases"] == 4321
