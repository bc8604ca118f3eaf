"""The ``cachectl`` commands that operate a running cache: one admin API call each, shown as tables or JSON.

Each command takes the admin client, the parsed arguments and the output, and returns the exit code. Failures are
raised as ``CliError`` or the admin client's errors; ``main`` turns them into one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console

from cache_service.admin_client import ADMIN_PREFIX, AdminClient, job_route
from cache_service.cli import render
from cache_service.cli.errors import CliError
from cache_service.cluster.client_settings import ha_settings, site_xml, spark_defaults
from cache_service.units import format_size, parse_size

POLL_INTERVAL = 0.5
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
NO_TTL = frozenset({"none", "off", "clear"})


@dataclass(frozen=True)
class Output:
    """Where results go: the API's JSON as is (``--json``, for scripts) or tables on ``console``."""

    json: bool
    console: Console

    def show(self, data: Any, human: Callable[[Console], None]) -> None:
        """Print ``data`` as JSON, or call ``human`` to render it."""
        if self.json:
            print(json.dumps(data, indent=2, sort_keys=True))
        else:
            human(self.console)


Command = Callable[[AdminClient, argparse.Namespace, Output], int]


def status(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """Capacity, use, watermarks, hit ratio and tiers."""
    report = client.get("status")
    out.show(report, lambda c: render.status(c, report))
    return 0


def mounts(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """The mount table."""
    answer = client.get("mounts")
    out.show(answer, lambda c: render.mounts(c, answer["mounts"]))
    return 0


def ls(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """The entries of a directory (or the file itself), with how much of each is cached."""
    answer = client.get("ls", path=args.path)
    out.show(answer, lambda c: render.paths(c, answer.get("path", args.path), answer["entries"]))
    return 0


def stat(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """One path in detail."""
    report = client.get("stat", path=args.path)
    out.show(report, lambda c: render.path_report(c, report))
    return 0


def load(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """Start a warmup job; with ``--wait``, follow it to the end and fail if it failed."""
    body: dict[str, Any] = {"paths": args.paths, "tier": args.tier}
    if args.parallelism is not None:
        body["parallelism"] = args.parallelism
    if args.bandwidth is not None:
        body["bandwidth"] = args.bandwidth
    job = client.post("load", body)
    if not args.wait:
        out.show(
            job, lambda c: c.print(f"load job {job['id']} {job['state']}; follow it with: cachectl jobs {job['id']}")
        )
        return 0
    job = _wait(client, job, out)
    out.show(job, lambda c: _summary(c, job))
    _report_errors(job)
    return 0 if job["state"] == "succeeded" else 1


def _wait(client: AdminClient, job: Mapping[str, Any], out: Output) -> Mapping[str, Any]:
    route = job_route(job["id"])
    try:
        if out.json:
            while job["state"] not in FINISHED:
                time.sleep(POLL_INTERVAL)
                job = client.get(route)
            return job
        with render.JobProgress(out.console, job) as progress:
            while job["state"] not in FINISHED:
                time.sleep(POLL_INTERVAL)
                job = client.get(route)
                progress.update(job)
        return job
    except KeyboardInterrupt:
        # Only the waiting stops: the job runs in the cache, not in this process.
        raise CliError(
            f"stopped waiting; job {job['id']} keeps running (stop it with: cachectl jobs {job['id']} --cancel)", 130
        ) from None


def _summary(console: Console, job: Mapping[str, Any]) -> None:
    progress = job.get("progress") or {}
    if job["state"] == "succeeded":
        console.print(
            f"{job['kind']} job {job['id']} succeeded: {progress.get('files_done', 0)} files, "
            f"{format_size(progress.get('bytes_done', 0))} "
            f"({format_size(progress.get('bytes_from_s3', 0))} from S3, "
            f"{format_size(progress.get('bytes_skipped', 0))} already cached)"
        )


def _report_errors(job: Mapping[str, Any]) -> None:
    """A failed or cancelled job's story on stderr: what happened, then one line per failed path."""
    if job["state"] == "failed":
        print(
            f"cachectl: {job['kind']} job {job['id']} failed: {job.get('message') or 'see its errors'}", file=sys.stderr
        )
    elif job["state"] == "cancelled":
        print(f"cachectl: {job['kind']} job {job['id']} was cancelled", file=sys.stderr)
    for error in job.get("errors") or []:
        print(f"cachectl:   {error.get('path', '-')}: {error.get('error', '')}", file=sys.stderr)


def free(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """Drop cached pages of paths (data in S3 is untouched; staged data is refused)."""
    report = client.post("free", {"paths": args.paths})
    out.show(report, lambda c: render.free_report(c, report))
    return 0


def purge(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """Evict down to a target fill, or show what that would evict (``--dry-run``)."""
    report = client.post("purge", {"target": args.target, "dry_run": args.dry_run, "paths": args.paths})
    out.show(report, lambda c: render.purge_report(c, report))
    return 0


def pin(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """Pin a path (never evicted), or list the pins when no path is given."""
    if args.path is None:
        answer = client.get("pins")
        out.show(answer, lambda c: render.pins(c, answer["pins"]))
        return 0
    report = client.post("pin", {"path": args.path})
    out.show(report, lambda c: render.path_report(c, report))
    return 0


def unpin(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """Let a path be evicted again."""
    report = client.post("unpin", {"path": args.path})
    out.show(report, lambda c: render.path_report(c, report))
    return 0


def ttl(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """Set or clear a path's TTL, list the TTLs, or drop what has expired (``--sweep``)."""
    if args.sweep:
        if args.path is not None:
            raise CliError("ttl --sweep takes no path", 2)
        report = client.post("ttl/sweep")
        out.show(report, lambda c: render.free_report(c, report))
        return 0
    if args.path is None:
        answer = client.get("ttl")
        out.show(answer, lambda c: render.ttls(c, answer["ttls"]))
        return 0
    if args.duration is None:
        raise CliError(f"ttl {args.path} needs a DURATION (e.g. 1h, 7d) or none to clear it", 2)
    seconds = None if args.duration.lower() in NO_TTL else args.duration
    report = client.post("ttl", {"path": args.path, "ttl": seconds})
    out.show(report, lambda c: render.path_report(c, report))
    return 0


def jobs(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """List jobs, show one, or cancel one (``--cancel``)."""
    if args.id is None:
        if args.cancel:
            raise CliError("jobs --cancel needs the ID of the job to cancel", 2)
        answer = client.get("jobs")
        out.show(answer, lambda c: render.job_table(c, answer["jobs"]))
        return 0
    route = job_route(args.id)
    job = client.post(f"{route}/cancel") if args.cancel else client.get(route)
    out.show(job, lambda c: render.job_detail(c, job))
    return 0


def cluster(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """The cluster's workers (``show``), or the Hadoop client settings that address them all (``spark-conf``)."""
    report = client.get("cluster")
    if args.what == "show":
        out.show(report, lambda c: render.cluster(c, report))
        return 0
    try:
        settings = ha_settings(report["members"], args.nameservice)
    except ValueError as exc:
        raise CliError(str(exc), 1) from None
    if out.json:
        print(json.dumps(settings, indent=2))
    else:
        print(site_xml(settings) if args.format == "hdfs-site" else spark_defaults(settings), end="")
    return 0


def drain(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    """Drain a worker out of the cluster: it hands its pages to their new owners, then leaves; with ``--wait``,
    follow the job (it runs on the worker being drained) to the end and fail if it failed."""
    body: dict[str, Any] = {"worker": args.worker}
    if args.budget is not None:
        try:
            body["budget"] = parse_size(args.budget)
        except ValueError as exc:
            raise CliError(f"--budget: {exc}", 2) from None
    job = client.post("cluster/drain", body)
    if not args.wait:
        out.show(job, lambda c: c.print(f"drain of {args.worker}: job {job['id']} {job['state']} at {job['job_url']}"))
        return 0
    worker = AdminClient(replace(client.endpoint, url=job["job_url"].split(ADMIN_PREFIX, 1)[0]))
    job = _wait(worker, job, out)
    out.show(job, lambda c: c.print(f"drain of {args.worker}: {job['state']}: {job.get('message', '')}"))
    _report_errors(job)
    return 0 if job["state"] == "succeeded" else 1


COMMANDS: dict[str, Command] = {
    "status": status,
    "mounts": mounts,
    "ls": ls,
    "stat": stat,
    "load": load,
    "free": free,
    "purge": purge,
    "pin": pin,
    "unpin": unpin,
    "ttl": ttl,
    "jobs": jobs,
    "cluster": cluster,
    "drain": drain,
}
