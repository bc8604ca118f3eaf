"""Coverage-guided fuzzing of the parsers (``parsers.TARGETS``) with atheris, one child process per target.

libFuzzer ends the process that runs it, so each campaign runs in a child (``python -m bench.reliability.fuzzing
--child TARGET ...``) whose harness catches every exception: a documented error is an answer, anything else is
written to a crash file (type, place, message, input) and fuzzing goes on. A child that dies anyway (a hang past
``-timeout``, memory past ``-rss_limit_mb``, a native crash) counts as one more crash.

    python -m bench.reliability.fuzzing [--cases N] [--seconds S] [--corpus DIR] [TARGET ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.reliability.campaign import QUICK, Budget, CampaignResult

ROOT = Path(__file__).resolve().parents[2]
TARGET_NAMES = ("webhdfs_path", "webhdfs_params", "s3_request", "sigv4", "s3_payload", "s3_xml", "config_loader")
"""The names of ``parsers.TARGETS``, known without importing the parsers (the child imports them instrumented)."""
_DONE = re.compile(r"Done (\d+) runs in")


def fuzz_parser(name: str, budget: Budget = QUICK, *, corpus: Path | None = None) -> CampaignResult:
    """Fuzz target ``name`` for ``budget``; ``corpus`` (a folder, created if needed) keeps the inputs that found new
    coverage, for the next campaign to start from."""
    if name not in TARGET_NAMES:
        raise ValueError(f"no fuzz target {name!r}; expected one of {', '.join(TARGET_NAMES)}")
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        crash_file = Path(scratch) / "crashes.jsonl"
        count_file = Path(scratch) / "count"
        args = [
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-len_control=0",
            "-max_len=2048",
            "-print_final_stats=1",
            f"-artifact_prefix={scratch}/",
        ]
        if budget.cases is not None:
            args.append(f"-runs={budget.cases}")
        if budget.seconds is not None:
            args.append(f"-max_total_time={max(1, round(budget.seconds))}")
        if corpus is not None:
            corpus.mkdir(parents=True, exist_ok=True)
            args.append(str(corpus))
        command = [sys.executable, "-m", "bench.reliability.fuzzing", "--child", name, str(crash_file), str(count_file)]
        started = time.monotonic()
        limit = (budget.seconds or 600) + 120
        try:
            done = subprocess.run(
                [*command, *args], cwd=ROOT, capture_output=True, text=True, errors="replace", timeout=limit
            )
            output, status = done.stderr + done.stdout, done.returncode
        except subprocess.TimeoutExpired as exc:
            output, status = f"the fuzzer ran past {limit} s: {exc}", -1
        result = CampaignResult(
            name=f"fuzz_{name}",
            target=name,
            engine="atheris",
            seconds=round(time.monotonic() - started, 1),
            command=f"python -m bench.reliability.fuzzing{_budget_flags(budget)} {name}",
        )
        runs = [int(n) for n in _DONE.findall(output)]
        counted = int(count_file.read_text() or 0) if count_file.exists() else 0
        result.cases = max([*runs, counted])
        if crash_file.exists():
            for line in crash_file.read_text().splitlines():
                crash = json.loads(line)
                result.crashes += 1
                result.note(crash["kind"], crash["message"], crash["input"])
        if status != 0 or not runs:
            result.crashes += 1
            result.note(f"fuzzer exited with status {status}", output[-2000:], "")
    return result


def fuzz_parsers(budget: Budget = QUICK, names: Sequence[str] = TARGET_NAMES) -> list[CampaignResult]:
    """Every target in ``names``, one after the other, each for ``budget``."""
    return [fuzz_parser(name, budget) for name in names]


def _budget_flags(budget: Budget) -> str:
    flags = f" --cases {budget.cases}" if budget.cases is not None else ""
    return flags + (f" --seconds {budget.seconds:g}" if budget.seconds is not None else "")


# --- the child ---------------------------------------------------------------------------------------------


def _child(name: str, crash_file: Path, count_file: Path, fuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["cache_service"]):
        from bench.reliability.parsers import TARGETS

    target = TARGETS[name]
    runs = 0

    def one_input(data: bytes) -> None:
        nonlocal runs
        runs += 1
        if runs % 500 == 0:
            count_file.write_text(str(runs))
        try:
            target.run(atheris.FuzzedDataProvider(data))
        except target.allowed:
            pass
        except Exception as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            record = {
                "kind": f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}",
                "message": f"{type(exc).__name__}: {exc}"[:500],
                "input": data.hex(),
            }
            with crash_file.open("a") as out:
                out.write(json.dumps(record) + "\n")
            count_file.write_text(str(runs))

    atheris.Setup([sys.argv[0], *fuzzer_args], one_input)
    atheris.Fuzz()


def replay(name: str, hex_input: str) -> None:
    """Run target ``name`` on one recorded input (the ``input`` of a crash), raising what it raises."""
    import atheris

    from bench.reliability.parsers import TARGETS

    TARGETS[name].run(atheris.FuzzedDataProvider(bytes.fromhex(hex_input)))


def main(argv: Sequence[str] | None = None) -> int:
    """Fuzz the targets named (all by default) and print one line per campaign; exit 1 if any found something."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        _child(argv[1], Path(argv[2]), Path(argv[3]), argv[4:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.reliability.fuzzing", description=__doc__)
    parser.add_argument("targets", nargs="*", choices=[[], *TARGET_NAMES], default=[])
    parser.add_argument("--cases", type=int, default=QUICK.cases)
    parser.add_argument("--seconds", type=float, default=QUICK.seconds)
    parser.add_argument("--corpus", type=Path, help="keep each target's corpus in DIR/TARGET between campaigns")
    parser.add_argument("--replay", metavar="HEX", help="run the one target named on a crash's recorded input")
    args = parser.parse_args(argv)
    if args.replay:
        replay(args.targets[0], args.replay)
        return 0
    budget = Budget(cases=args.cases, seconds=args.seconds)
    failed = False
    for name in args.targets or TARGET_NAMES:
        result = fuzz_parser(name, budget, corpus=args.corpus / name if args.corpus else None)
        failed |= not result.ok
        print(f"{name}: {result.cases} cases in {result.seconds} s, {result.crashes} crashes", flush=True)
        for failure in result.failures:
            print(f"  {failure.kind}: {failure.message}\n    input: {failure.example[:200]}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
