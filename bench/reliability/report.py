"""Writes ``docs/reliability.md`` from the results of ``make chaos``: only the preamble below is typed by hand.

Results arrive as their JSON form (``as_json``), fresh or kept from an earlier run in ``reliability.json``, so a run
of one campaign (``--only``) renders the others' last results too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from bench.reliability.campaign import CampaignResult, GuaranteeResult
from bench.report import markdown_table

ABOUT: dict[str, str] = {
    "crash_consistency": (
        "Clients write through the cache (WebHDFS CREATE in two steps, APPEND, files staged under `_temporary` and "
        "published by RENAME as Spark's committer does, S3 PutObject and multipart uploads with boto3), each write "
        "with bytes no other write sends, while a random worker is SIGKILLed at random moments and restarted on its "
        "disk tier, and once every worker at the same moment. Then every acknowledged write must be in S3 byte for "
        "byte, or, for a staged file whose publishing RENAME was not acknowledged, be read back from the cache and "
        "published from there (*recovered from staging*); every object must hold exactly one body some client sent "
        "(*torn* counts the others); and objects read back through the cache must match S3. A write that was not "
        "acknowledged may be visible whole (*unacknowledged visible*), as in HDFS and S3. On one worker, and on "
        "three with Redis (staged files on two workers)."
    ),
    "s3_faults": (
        "The cache's S3 is behind a fault proxy (`infra/s3_faults.py`: seeded 500 InternalErrors, 503 SlowDowns, "
        "connection resets, GET bodies cut short under their whole Content-Length, bodies stalled past the worker's "
        "S3 read timeout) while telemetry_daily_etl runs through the cache (quick: its ingest job on one worker, "
        "submitted with `spark-submit` on the DAG's arguments; `CHAOS_FULL=1`: the whole DAG with "
        "`airflow dags test` on the local stack, warmup, both Spark jobs, both Great Expectations validations and "
        "the metastore sync, on a bigger day, on one worker and on three). Every job or task must succeed and the "
        "tables, read back from S3 row by row, equal a clean run's on an empty cache; meanwhile a reader compares "
        "random ranges the cache serves with S3's bytes "
        "(*reads same*; a *different* or *short* read would be a corrupt or truncated page served), every object is "
        "then read whole through the cache and compared (*objects swept*), and the workers' "
        "`lakecache_s3_retries_total` must count the retries (*retries*, by reason)."
    ),
    "disk_faults": (
        "The worker's disk tier (pages, staged files, spooled writes) is a tmpfs of a few MiB, far below the tier's "
        "configured capacity. With staged files acknowledged, a filler takes the last byte: every read must still be "
        "S3's bytes (pages that do not fit come from S3), staged and write-through CREATEs and an APPEND must answer "
        "503 `RemoteException` `org.apache.hadoop.ipc.RetriableException` (which Hadoop's client and its failover "
        "policy retry), never a 500, and acknowledged staged files must read back whole; with room again the "
        "refused writes succeed when retried and a RENAME publishes everything acknowledged to S3. Then bits are "
        "flipped in page files on disk: every read, in the same process and after a restart, must be S3's bytes, "
        "each rotten page counted in `lakecache_corrupt_pages_total` and fetched again. On one worker, and on three "
        "with Redis, each on a tmpfs of its own, all filled: every request goes to a worker picked at random (staged "
        "files, on two workers each, are written, read back and published through any worker; reads go to the "
        "blocks' owners, which fetch an object's other block from its owner), bits are flipped on every worker's "
        "disk, the counter is summed over the workers and the restart is of every worker. In the cluster a page "
        "cached off its block's owner is not read again after the restart, so there the pages counted after it must "
        "be at least one and at most those rotten at it, not all of them."
    ),
    "soak": (
        "One worker, then three (Redis), on the S3 emulator with tiers of 16 MiB in memory and 48 MiB on disk each, "
        "under a steady load of four clients for 3 minutes each (`CHAOS_FULL=1`: 30): ranges of warm objects and "
        "of cold ones (more than the tiers hold) read through WebHDFS OPEN and S3 GetObject, every byte checked; "
        "CREATE and PutObject over a bounded set of keys, each read back now and then through any worker; files "
        "staged under `_temporary` and published by RENAME. Meanwhile a purge of the whole cache every 30 s "
        "(2 minutes on the long run) and, on three workers, a drain of worker C at 15% of the run "
        "(`POST /admin/v1/cluster/drain`; C leaves the clients' rotation the moment its job ends, as a load "
        "balancer would be told, since once gone it no longer hears the others' invalidations, and is stopped once "
        "its requests in flight have ended and the others route without it), and C started again on its disk tier "
        "at 40%, back in rotation once every worker routes by the ring of three. A lone worker has no peer to hand "
        "its pages to and no ring to join again, and stopping it would leave the clients nothing to send to, an "
        "outage rather than what a soak measures: in place of the drain and the join it is purged and warmed at 15% "
        "(`POST /admin/v1/load` of the warm objects, which the clients read meanwhile; the job must succeed). No "
        "request may fail: a 503 (`RetriableException`, `SlowDown`) answered to a request that then succeeds when "
        "sent again, as Hadoop's client and boto3 do, counts as *retried after 503*, not failed; the suite injects "
        "no failure. No worker's memory may grow once warm: its RSS (`VmRSS`, sampled every second) over the last "
        "40% of the run and at least a minute after the worker's last start may peak at most 8 MiB higher in the "
        "second half of that time than in the first (*rss growth*, KiB; a worker up too short a time is not judged, "
        "*workers judged warm*). Peaks, since each purge drops RSS by about the memory tier and the load fills it "
        "again: a least-squares slope of that sawtooth (*rss slope*, KiB a minute, shown, not judged) swings by "
        "several MiB a minute either way over a few purges. The quick run thus catches only a fast leak; the long "
        "one, halves six minutes apart, one of about 1.3 MiB a minute. "
        "*p99 ms* is over every request, retries included; *worst 5s p99 ms* over 5-second windows.\n\n"
        "![soak, one worker: requests/s, p99 latency and the worker's memory over time, warmup and purges marked]"
        "(img/soak-one-worker.png)\n\n"
        "![soak, three workers: requests/s, p99 latency and each worker's memory over time, drain, join and purges "
        "marked](img/soak.png)"
    ),
    "fuzzing": (
        "Coverage-guided fuzzing (atheris) of the parsers at the cache's edge, in process: WebHDFS paths and "
        "parameters, the S3 request parser, SigV4 verification, the S3 XML bodies and the config loader. A crash "
        "is an exception other than the parser's documented errors, or a broken invariant."
    ),
    "live_http": (
        "Requests generated by hypothesis and sent byte for byte to both ports of a live worker with a small data "
        "set: WebHDFS ops with odd paths and parameters, admin calls, and S3 requests (most signed correctly, so "
        "that they reach the handlers) with odd keys, queries, ranges, headers and XML bodies, writes included. No "
        "answer may be a 5xx of the worker's own and the worker must answer after the campaign. A 5xx that S3 (the "
        "emulator) gave to a request the worker forwarded is passed on, as the S3 API must, and counted apart "
        "(*upstream*); 501 NotImplemented is S3's answer to what it does not do (browser POST uploads). Then the "
        "same on a three-worker cluster (Redis, blocks of 4 KiB so that each file spans several owners) for 30% of "
        "the time, each request to a worker hypothesis picks: OPENs redirected to a block's owner and requests "
        "claiming to be redirected (the owner fetches the other blocks from their owners), S3 reads through workers "
        "that read owners' pages, staging requests relayed to their home and marks of another worker without the "
        "cluster's secret, and calls of the peer API (`/cluster/v1/...`) with and without the secret; a peer call "
        "without it must answer 401 (*nonconforming* counts the others), and every worker must answer afterwards."
    ),
    "admin_schema": (
        "schemathesis generates the admin API's requests from its OpenAPI description (`docs/admin-api.yaml`, "
        "also served at `/admin/v1/openapi.json`), those it allows and those it does not, and sends them with the "
        "admin token to a throwaway worker, mutating routes (purge, free, pin, ttl, drain, job cancels) included. "
        "No answer may be a 5xx, and every answer to an allowed request must have a status, content type and body "
        "the description lists (*nonconforming* counts the others). Then the same on a three-worker cluster for 30% "
        "of the time, each request to a worker picked at random (a seeded rng), drains of workers included; every "
        "worker must answer afterwards."
    ),
}
"""What each campaign proves, by its name in ``suite.CAMPAIGNS``."""


def as_json(result: CampaignResult | GuaranteeResult) -> dict[str, Any]:
    """``result`` as ``reliability.json`` keeps it: its fields, ``kind`` (``guarantee`` or ``inputs``) and ``ok``."""
    kind = "guarantee" if isinstance(result, GuaranteeResult) else "inputs"
    return {"kind": kind, "ok": result.ok, **asdict(result)}


def render(campaigns: Mapping[str, Sequence[Mapping[str, Any]]], when: str, host: Mapping[str, str]) -> str:
    """The whole page: ``campaigns`` maps each campaign's name to its results' JSON forms, in the page's order."""
    lines = [
        "# Reliability",
        "",
        f"Written by `make chaos` on {when}; each result says when it ended, the commit it ran on and its budget "
        "(*ran*), since a run of some campaigns keeps the others' last results. Do not edit by hand: run "
        "`make chaos` again. Raw figures: `bench/results/reliability.json`.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in host.items() if k != "commit") + ".",
        "",
        "`make chaos` runs every campaign below against real processes (S3 emulator, Redis, cache workers) with the "
        "quick budget, in under 15 minutes; `CHAOS_FULL=1 make chaos` runs the long ones. "
        "`python -m bench.reliability --only NAME` runs one campaign and keeps the others' last results on this "
        "page. It exits 1 when a guarantee broke, and the quick campaigns also run in `make test` "
        "(`tests/bench/reliability/`), so CI fails when one breaks.",
        "",
        "## Summary",
        "",
        _summary(campaigns).rstrip(),
        "",
    ]
    for name, results in campaigns.items():
        lines += [f"## {name.replace('_', ' ').capitalize()}", ""]
        if name in ABOUT:
            lines += [ABOUT[name], ""]
        commands = list(dict.fromkeys(r["command"] for r in results if r.get("command")))
        if len(commands) == 1:
            lines += [f"Reproduce: `{commands[0]}`", ""]
        elif commands:
            lines += ["Reproduce each:", "", *(f"- `{command}`" for command in commands), ""]
        guarantees = [r for r in results if r["kind"] == "guarantee"]
        inputs = [r for r in results if r["kind"] == "inputs"]
        if guarantees:
            lines += [_guarantee_table(guarantees).rstrip(), ""]
        if inputs:
            lines += [_inputs_table(inputs).rstrip(), ""]
        lines += _problems(results)
    return "\n".join(lines)


def _summary(campaigns: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    rows = []
    for results in campaigns.values():
        for r in results:
            if r["kind"] == "guarantee":
                claim, counts = r["guarantee"], list(r["counts"].items())[:6]
            elif r.get("server_alive") is None:  # in process: no server to answer 5xx or to die
                claim = f"{r['target']} ({r['engine']}): no crash, no broken invariant"
                counts = [(k, r[k]) for k in ("cases", "crashes")]
            else:
                claim = f"{r['target']} ({r['engine']}): no crash, no 5xx, answers as documented, worker alive"
                counts = [(k, r[k]) for k in ("cases", "crashes", "server_errors", "nonconforming") if k in r]
            shown = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counts)
            rows.append([_cell(r["name"]), _cell(claim), shown, "held" if r["ok"] else "**broken**", _ran(r)])
    return markdown_table(["campaign", "guarantee", "counts", "", "ran"], rows, "lllll")


def _ran(result: Mapping[str, Any]) -> str:
    """When ``result``'s campaign ended, the commit it ran on and its budget; "-" for a result that does not say."""
    stamp = result.get("ran")
    if not stamp:
        return "-"
    return f"{stamp['at']}, {stamp['commit']}, {'full' if stamp['full'] else 'quick'}"


def _guarantee_table(results: Sequence[Mapping[str, Any]]) -> str:
    names = list(dict.fromkeys(k for r in results for k in r["counts"]))
    rows = [[k.replace("_", " ")] + [f"{r['counts'].get(k, 0):,}" for r in results] for k in names]
    rows.append(["seconds"] + [f"{r['seconds']:g}" for r in results])
    rows.append(["ran"] + [_ran(r) for r in results])
    rows.append(["guarantee"] + ["held" if r["ok"] else "**broken**" for r in results])
    return markdown_table(["", *(_cell(r["name"]) for r in results)], rows, "l" + "r" * len(results))


def _inputs_table(results: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for r in results:
        alive = {None: "-", True: "yes", False: "**no**"}[r.get("server_alive")]
        counted = ("cases", "crashes", "server_errors", "upstream_errors", "nonconforming")
        figures = [f"{r.get(k, 0):,}" for k in counted]
        rows.append([_cell(r["name"]), _cell(r["target"]), r["engine"], *figures, alive, f"{r['seconds']:g}", _ran(r)])
    header = ["campaign", "target", "engine", "inputs", "crashes", "5xx", "upstream", "nonconforming", "worker alive"]
    return markdown_table([*header, "seconds", "ran"], rows, "lllrrrrrlrl")


def _problems(results: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for r in results:
        found = r.get("violations") or [f"{f['kind']}: {f['message'][:300]}" for f in r.get("failures", [])]
        if found:
            lines += [f"What broke in *{r['name']}*:", ""] + [f"- `{_cell(line)[:400]}`" for line in found] + [""]
    return lines


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("`", "'")
