"""``make chaos``: run the reliability campaigns, store their results, and rewrite ``docs/reliability.md``.

The quick budget by default; ``--full`` (``CHAOS_FULL=1``) the long one. ``--only NAME`` runs some campaigns and keeps
the others' last results in the page. Exits 1 when a campaign of this run found a broken guarantee, or raised
(it is then a broken guarantee of its own on the page, and the other campaigns still run).

    python -m bench.reliability [--only NAME ...] [--full]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.reliability import report
from bench.reliability.campaign import FULL, QUICK, GuaranteeResult
from bench.reliability.suite import CAMPAIGNS, Campaign
from bench.report import machine

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "reliability.json"
DOC = ROOT / "docs" / "reliability.md"


def main(
    argv: Sequence[str] | None = None,
    *,
    campaigns: Sequence[tuple[str, Campaign]] = CAMPAIGNS,
    results: Path = RESULTS,
    doc: Path = DOC,
) -> int:
    """Entry point; returns the exit status (1 if a guarantee broke in this run)."""
    names = [name for name, _ in campaigns]
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__)
    parser.add_argument("--only", action="append", choices=names, help="run only these campaigns")
    parser.add_argument("--full", action="store_true", help="the long budget (default: CHAOS_FULL set and not 0)")
    args = parser.parse_args(argv)
    full = args.full or os.environ.get("CHAOS_FULL", "") not in ("", "0")
    budget = FULL if full else QUICK
    fresh: dict[str, list[dict[str, Any]]] = {}
    broken = []
    started = time.monotonic()
    for name, campaign in campaigns:
        if args.only and name not in args.only:
            continue
        print(f"chaos: {name} ({'full' if full else 'quick'})", file=sys.stderr, flush=True)
        began = time.monotonic()
        # Each result says on which commit it began, when it ended and with which budget: --only keeps older ones.
        commit = machine()["commit"]
        try:
            outcome = [report.as_json(r) for r in campaign(budget)]
        except Exception as exc:  # the other campaigns still run, and the page says this one did not finish
            traceback.print_exc()
            outcome = [report.as_json(_unfinished(name, exc, full, began))]
        ran = {"at": _minute(dt.datetime.now(dt.UTC)), "commit": commit, "full": full}
        fresh[name] = [r | {"ran": ran} for r in outcome]
        broken += [r["name"] for r in fresh[name] if not r["ok"]]
        held = "held" if all(r["ok"] for r in fresh[name]) else "BROKEN"
        print(f"chaos: {name} {held} in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    # The others' results are read only now: a run of another campaign that ended meanwhile is kept, not undone.
    kept: dict[str, list[dict[str, Any]]] = _load(results).get("campaigns", {}) | fresh
    ordered = {name: kept[name] for name in names if name in kept}
    now, host = dt.datetime.now(dt.UTC), machine()
    payload = {"generated_at": now.isoformat(timespec="seconds"), "full": full, "machine": host, "campaigns": ordered}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    doc.write_text(report.render(ordered, _minute(now), host))
    print(f"chaos: wrote {doc} and {results} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    for name in broken:
        print(f"chaos: BROKEN: {name}", file=sys.stderr)
    return 1 if broken else 0


def _minute(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _unfinished(name: str, exc: Exception, full: bool, started: float) -> GuaranteeResult:
    """Campaign ``name`` raised ``exc`` instead of returning its results: a broken guarantee of its own."""
    where = traceback.extract_tb(exc.__traceback__)[-1]
    failure = f"{type(exc).__name__} at {Path(where.filename).name}:{where.lineno}: {exc}"
    return GuaranteeResult.judged(
        name, "the campaign runs to its end", {}, [failure], campaign=name, full=full, started=started
    )


def _load(path: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    raise SystemExit(main())
