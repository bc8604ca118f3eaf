"""The ``cachectl`` command line: ``serve`` runs a worker; the other commands talk to one over HTTP."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from cache_service.config import ConfigError, load_config


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are reported in one line, like every other ``cachectl`` error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number in [0, 1]") from None
    if not 0 <= value <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is not a number in [0, 1] (0.6 means 60% full)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cachectl", description="Run and operate the Lakecache cache service.")
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("CACHE_ENDPOINT", "http://127.0.0.1:9870"),
        help="the cache's WebHDFS/admin URL (env CACHE_ENDPOINT)",
    )
    parser.add_argument(
        "--token", default=os.environ.get("CACHE_ADMIN_TOKEN", ""), help="admin token (env CACHE_ADMIN_TOKEN)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a cache worker")
    serve.add_argument("--config", help="TOML config file (env CACHE_<SECTION>_<KEY> overrides it)")

    # The global options are accepted after the command too (`cachectl status --json`); SUPPRESS keeps a value
    # given before the command from being overwritten by the subcommand's default.
    common = _Parser(add_help=False)
    common.add_argument("--endpoint", default=argparse.SUPPRESS, help="the cache's URL (env CACHE_ENDPOINT)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="admin token (env CACHE_ADMIN_TOKEN)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the API's JSON")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=summary, description=summary)

    command("status", "capacity, use, watermarks, hit ratio and tiers")
    command("mounts", "the mount table: cache paths and their S3 URIs")
    command("ls", "list a directory with how much of each entry is cached").add_argument("path")
    command("stat", "one path: length, cached bytes, pin, TTL, persisted").add_argument("path")

    load = command("load", "warm the cache: read files, directories (recursively) or globs from S3")
    load.add_argument("paths", nargs="+", metavar="PATH")
    load.add_argument("--parallelism", type=int, help="S3 reads at once (default 4)")
    load.add_argument("--bandwidth", help="cap on the S3 read rate, e.g. 50MiB (per second)")
    load.add_argument("--tier", choices=("disk", "memory"), default="disk", help="tier to load into (default disk)")
    load.add_argument("--wait", action="store_true", help="follow the job with a progress bar; fail if it fails")

    command("free", "drop the cached pages of paths (S3 is untouched)").add_argument("paths", nargs="+", metavar="PATH")

    purge = command("purge", "evict down to a target fill of the cache")
    purge.add_argument("--target", type=_fraction, required=True, help="fill to reach, in [0, 1] (0.6 = 60%%)")
    purge.add_argument("--dry-run", action="store_true", help="only show what would be evicted")
    purge.add_argument("--path", dest="paths", action="append", metavar="PATH", help="only evict under PATH")

    command("pin", "keep a path in the cache (no PATH: list the pins)").add_argument("path", nargs="?")
    command("unpin", "let a pinned path be evicted again").add_argument("path")

    ttl = command("ttl", "set (PATH DURATION), clear (PATH none) or list (no argument) TTLs")
    ttl.add_argument("path", nargs="?")
    ttl.add_argument("duration", nargs="?", help="e.g. 30m, 1h, 7d; none clears the TTL")
    ttl.add_argument("--sweep", action="store_true", help="drop what has outlived its TTL now")

    cluster = command("cluster", "the cluster's workers (show), or Hadoop's settings to address them (spark-conf)")
    cluster.add_argument("what", nargs="?", choices=("show", "spark-conf"), default="show")
    cluster.add_argument("--nameservice", default="lakecache", help="the HA nameservice's name (spark-conf)")
    cluster.add_argument(
        "--format",
        choices=("spark", "hdfs-site"),
        default="spark",
        help="spark-defaults.conf lines (default) or an hdfs-site.xml (spark-conf)",
    )

    drain = command("drain", "hand a worker's pages to their new owners, then take it out of the cluster")
    drain.add_argument("worker", metavar="WORKER", help="the worker's id (see cachectl cluster)")
    drain.add_argument("--budget", help="hand over at most this much, e.g. 20GiB (default: [cluster] handoff_budget)")
    drain.add_argument("--wait", action="store_true", help="follow the drain with a progress bar; fail if it fails")

    jobs = command("jobs", "list jobs, show one (ID), or cancel one (ID --cancel)")
    jobs.add_argument("id", nargs="?", metavar="ID")
    jobs.add_argument("--cancel", action="store_true", help="cancel job ID")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _operate(args)


def _operate(args: argparse.Namespace) -> int:
    # Imported here so that `cachectl serve` does not pay for rich.
    from cache_service.admin_client import AdminClient, AdminClientError, AdminEndpoint, InvalidEndpointError
    from cache_service.cli import render
    from cache_service.cli.commands import COMMANDS, Output
    from cache_service.cli.errors import CliError, as_cli_error

    try:
        client = AdminClient(AdminEndpoint.from_url(args.endpoint, token=args.token))
        return COMMANDS[args.command](client, args, Output(json=args.json, console=render.console()))
    except (CliError, AdminClientError, InvalidEndpointError) as exc:
        error = as_cli_error(exc)
        print(f"cachectl: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("cachectl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (`| head`) went away: nothing left to say, and nothing to flush at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a bug of ours: still one line, never a stack trace
        print(f"cachectl: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    from cache_service import allocator, logs, server
    from cache_service.api.s3.credentials import api_users

    try:
        config = load_config(args.config)
        server.check_exposure(config)
        api_users(config.s3_api, lambda: None, os.environ)  # a half-configured [s3_api] or a missing secret stops here
    except ConfigError as exc:
        print(f"cachectl: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"cachectl: {exc}", file=sys.stderr)
        return 2
    from cache_service.cluster.identity import IdentityError
    from cache_service.cluster.membership import ClusterError

    logs.configure(config.server.log_level)
    allocator.limit_fragmentation()
    try:
        server.serve(config)
    except (ClusterError, IdentityError) as exc:
        print(f"cachectl: {exc}", file=sys.stderr)
        return 1
    return 0
