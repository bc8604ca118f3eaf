"""``make bench``: run the benchmarks, store their results, and rewrite ``docs/benchmarks.md``.

Quick mode by default; ``BENCH_FULL=1`` uses larger data. ``--only NAME`` runs some sections and keeps the other
sections of the last run in the page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import (
    cluster,
    eviction,
    fleet_alerts,
    http_reads,
    parquet_lookups,
    plots,
    profile_reads,
    report,
    ring_balance,
    spark_scan,
    warmup,
)
from bench.section import Section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"


def eviction_with_plot(full: bool, *, img_dir: Path = report.IMG_DIR) -> Section:
    """The eviction section with its hit ratios drawn too (the simulator's own module stays free of plotting)."""
    section = eviction.run(full)
    title, link = plots.eviction(section.results["rows"], img_dir / "eviction.png")
    section.markdown = section.markdown.rstrip() + f"\n\n![{title}]({link})\n"
    return section


def ring_with_plot(full: bool, *, img_dir: Path = report.IMG_DIR) -> Section:
    """The ring section with its balance and movement drawn too."""
    section = ring_balance.run(full)
    title, link = plots.ring(section.results["rows"], img_dir / "ring.png")
    section.markdown = section.markdown.rstrip() + f"\n\n![{title}]({link})\n"
    return section


# In the page's order. Each takes ``full`` (BENCH_FULL) and starts and stops every process it needs.
SECTIONS: dict[str, Callable[[bool], Section]] = {
    "eviction": eviction_with_plot,
    "http_reads": http_reads.run,
    "profile": profile_reads.run,
    "parquet_lookups": parquet_lookups.run,
    "spark_scan": spark_scan.run,
    "warmup": warmup.run,
    "ring": ring_with_plot,
    "cluster": cluster.run,
    "fleet_alerts": fleet_alerts.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="run only these sections")
    args = parser.parse_args(argv)
    full = os.environ.get("BENCH_FULL", "") not in ("", "0")
    names = args.only or list(SECTIONS)
    started = time.monotonic()
    measured: dict[str, Section] = {}
    for name in names:
        print(f"bench: {name} ({'full' if full else 'quick'})", file=sys.stderr, flush=True)
        began = time.monotonic()
        measured[name] = SECTIONS[name](full)
        print(f"bench: {name} took {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    # Read the other sections' results only now: a run of another section that ended meanwhile is kept, not undone.
    sections = {s["name"]: Section(**s) for s in _load_latest().get("sections", [])} | measured
    ordered = [sections[n] for n in SECTIONS if n in sections]
    now = dt.datetime.now(dt.UTC)
    host = report.machine()
    payload = {
        "generated_at": now.isoformat(timespec="seconds"),
        "full": full,
        "machine": host,
        "targets": {k: v for s in ordered for k, v in s.targets.items()},
        "sections": [asdict(s) for s in ordered],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=1, default=str)
    (RESULTS / f"{now:%Y-%m-%dT%H%M%S}.json").write_text(text)
    (RESULTS / "latest.json").write_text(text)
    DOC.write_text(report.render(ordered, now.strftime("%Y-%m-%d %H:%M UTC"), full, host))
    print(
        f"bench: wrote {DOC.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}/latest.json "
        f"in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
    return 0


def _load_latest() -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads((RESULTS / "latest.json").read_text())
        return loaded
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    raise SystemExit(main())
