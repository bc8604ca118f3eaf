"""Bad input, at scale: the parsers fuzzed in-process, then generated requests to both ports of a live worker, then
schemathesis against the admin API, each for one budget; the outcome is one ``CampaignResult`` per campaign.

    python -m bench.reliability.bad_input [--cases N] [--seconds S] [--only fuzz|live_http|admin_schema] [--json F]

The live campaigns each get a throwaway worker of their own (its own S3 emulator unless one is given), since they
write, delete, pin and purge, and then a throwaway cluster of three (``live_plans``: 30% of the budget's time), so
that the cluster's paths answer too: redirects to blocks' owners, reads from peers, staging relayed to its home,
the peer API, drains. ``fuzz_parsers``, ``live_http_campaign`` and ``admin_schema_campaign`` each take only a
``Budget``, as a campaign of ``make chaos`` does. Exit status 1 when any campaign found a crash, a 5xx or an
answer the admin API's description does not list, or left the worker dead.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.reliability.admin_schema import run_admin_schema
from bench.reliability.campaign import QUICK, Budget, CampaignResult
from bench.reliability.fuzzing import fuzz_parsers
from bench.reliability.live_http import run_live_http
from bench.reliability.worker import throwaway_worker
from cache_service.api.s3.sigv4 import Credentials
from infra.s3_emulator import EMULATOR_CREDENTIALS, S3Emulator

CAMPAIGNS = ("fuzz", "live_http", "admin_schema")


@dataclass(frozen=True)
class LivePlan:
    """One run of a live campaign: on ``workers`` workers (a cluster when more than one), for ``budget``."""

    workers: int
    budget: Budget

    @property
    def label(self) -> str:
        """What ends the results' names: nothing for one worker, ``, 3 workers`` for three."""
        return "" if self.workers == 1 else f", {self.workers} workers"


def live_plans(budget: Budget) -> list[LivePlan]:
    """``budget`` on one worker, then 30% of its time on three (the cluster's paths are few beside the inputs)."""
    seconds = budget.seconds * 0.3 if budget.seconds is not None else None
    return [LivePlan(1, budget), LivePlan(3, Budget(budget.cases, seconds))]


def live_http_campaign(budget: Budget = QUICK, *, s3: S3Emulator | None = None) -> list[CampaignResult]:
    """Generated requests to both ports of a throwaway worker, then of a throwaway cluster (``live_http``), one
    result per port and run."""
    return [result for plan in live_plans(budget) for result in live_http_run(plan, s3=s3, command_budget=budget)]


def live_http_run(
    plan: LivePlan, *, s3: S3Emulator | None = None, command_budget: Budget = QUICK
) -> list[CampaignResult]:
    """One run of ``live_http``, requests spread over ``plan``'s workers; ``command_budget`` is the budget the
    reproducing command names (the campaign's, not the run's share of it)."""
    with (
        tempfile.TemporaryDirectory(prefix="live-http-") as work,
        throwaway_worker(Path(work), s3, workers=plan.workers) as worker,
    ):
        results = run_live_http(
            [w.webhdfs_url for w in worker.workers],
            [w.s3_url for w in worker.workers],
            worker.bucket,
            Credentials(EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"], EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
            region=EMULATOR_CREDENTIALS["AWS_DEFAULT_REGION"],
            budget=plan.budget,
            log_paths=[w.log_path for w in worker.workers],
            peer_secret=worker.cache.token if plan.workers > 1 else None,
            label=plan.label,
        )
    for result in results:
        result.command = f"python -m bench.reliability.bad_input --only live_http{_flags(command_budget)}"
    return results


def admin_schema_campaign(budget: Budget = QUICK, *, s3: S3Emulator | None = None) -> list[CampaignResult]:
    """schemathesis against the admin API of a throwaway worker, then of a throwaway cluster (``admin_schema``),
    whose data it purges and pins (and whose workers it drains)."""
    return [admin_schema_run(plan, s3=s3, command_budget=budget) for plan in live_plans(budget)]


def admin_schema_run(plan: LivePlan, *, s3: S3Emulator | None = None, command_budget: Budget = QUICK) -> CampaignResult:
    """One run of ``admin_schema``, requests spread over ``plan``'s workers (``command_budget`` as in
    ``live_http_run``)."""
    with (
        tempfile.TemporaryDirectory(prefix="admin-schema-") as work,
        throwaway_worker(Path(work), s3, workers=plan.workers) as worker,
    ):
        urls = [w.webhdfs_url for w in worker.workers]
        result = run_admin_schema(urls, worker.cache.token, plan.budget, label=plan.label)
    result.command = f"python -m bench.reliability.bad_input --only admin_schema{_flags(command_budget)}"
    return result


def run_bad_input(
    budget: Budget = QUICK, *, only: Sequence[str] = CAMPAIGNS, s3: S3Emulator | None = None
) -> list[CampaignResult]:
    """The campaigns in ``only``, each for ``budget``: their results, in order."""
    results: list[CampaignResult] = []
    if "fuzz" in only:
        results += fuzz_parsers(budget)
    if "live_http" in only:
        results += live_http_campaign(budget, s3=s3)
    if "admin_schema" in only:
        results += admin_schema_campaign(budget, s3=s3)
    return results


def _flags(budget: Budget) -> str:
    flags = f" --cases {budget.cases}" if budget.cases is not None else ""
    return flags + (f" --seconds {budget.seconds:g}" if budget.seconds is not None else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the campaigns, print one line each (and its failures), optionally write them as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.reliability.bad_input", description=__doc__)
    parser.add_argument("--cases", type=int, default=QUICK.cases)
    parser.add_argument("--seconds", type=float, default=QUICK.seconds)
    parser.add_argument("--only", action="append", choices=CAMPAIGNS)
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args(argv)
    results = run_bad_input(Budget(args.cases, args.seconds), only=args.only or CAMPAIGNS)
    for r in results:
        alive = "" if r.server_alive is None else f", server {'alive' if r.server_alive else 'DEAD'}"
        print(
            f"{r.name} ({r.engine}): {r.cases} cases in {r.seconds} s, {r.crashes} crashes, {r.server_errors} 5xx, "
            f"{r.upstream_errors} S3's own 5xx passed on, {r.nonconforming} not as described{alive}"
        )
        for failure in r.failures:
            print(f"  {failure.kind}: {failure.message[:300]}\n    {failure.example[:300]}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
