"""The ``cachectl`` command line: ``serve`` runs a worker; the other commands talk to one over HTTP."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cache_service.config import ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cachectl", description="Run and operate the Lakecache cache service.")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2


def _serve(args: argparse.Namespace) -> int:
    from cache_service import logs, server

    try:
        config = load_config(args.config)
        server.check_exposure(config)
    except ConfigError as exc:
        print(f"cachectl: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"cachectl: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.server.log_level)
    server.serve(config)
    return 0
