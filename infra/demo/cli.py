"""The command line of the demo: ``python -m infra.demo`` (``make demo``) runs ``main``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from infra.cache_metrics import CacheMetricsError
from infra.demo import DemoError
from infra.demo.driver import DEFAULT_EVENTS, DEFAULT_S3_MODEL, DEFAULT_STATE_DIR, MAX_WORKERS, run_demo
from infra.s3_model import S3ModelConfig
from infra.service_process import ServiceStartError

_OFF = ("0", "false", "no", "off")


def events_default(environ: Mapping[str, str]) -> int:
    """The number of raw events from ``DEMO_EVENTS`` (1,000,000 if unset). Raises ``DemoError`` if it is not a
    positive whole number."""
    raw = environ.get("DEMO_EVENTS", "").replace("_", "").strip()
    if not raw:
        return DEFAULT_EVENTS
    if not raw.isdigit() or int(raw) < 1:
        raise DemoError(f"DEMO_EVENTS must be a positive whole number, got {environ['DEMO_EVENTS']!r}")
    return int(raw)


def workers_choice(flag: int | None, environ: Mapping[str, str]) -> int:
    """The number of cache workers: ``--workers`` if given, else ``DEMO_WORKERS``, else 1. Raises ``DemoError``
    unless it is a whole number from 1 to ``MAX_WORKERS``."""
    if flag is not None:
        raw, source = str(flag), "--workers"
    else:
        raw, source = environ.get("DEMO_WORKERS", "").strip(), "DEMO_WORKERS"
        if not raw:
            return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WORKERS:
        raise DemoError(f"{source} must be a whole number from 1 to {MAX_WORKERS}, got {raw!r}")
    return int(raw)


def s3_model_choice(args: argparse.Namespace, environ: Mapping[str, str]) -> S3ModelConfig | None:
    """The S3 model the flags and ``DEMO_S3_MODEL`` ask for, or None for none (the flag wins over the variable).

    Raises ``DemoError`` if a latency or bandwidth is negative.
    """
    if args.no_s3_model or environ.get("DEMO_S3_MODEL", "").strip().lower() in _OFF:
        return None
    latency = DEFAULT_S3_MODEL.latency_ms if args.s3_latency_ms is None else args.s3_latency_ms
    bandwidth = DEFAULT_S3_MODEL.bandwidth_mbps if args.s3_bandwidth_mbps is None else args.s3_bandwidth_mbps
    try:
        return S3ModelConfig.from_flags(latency, bandwidth)
    except ValueError as exc:
        raise DemoError(f"bad S3 model: {exc}") from exc


def parser() -> argparse.ArgumentParser:
    """The command line's flags."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.demo",
        description="Run the daily telemetry ETL through the cache, cold then warm, and show what the cache saved.",
    )
    parser.add_argument("--events", type=int, help="raw events to generate (default: $DEMO_EVENTS or 1,000,000)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="wiped first; default: %(default)s")
    parser.add_argument(
        "--workers",
        type=int,
        help=f"cache workers, 1 to {MAX_WORKERS}; above 1 they form a cluster that Spark addresses as one HA "
        "nameservice (default: $DEMO_WORKERS or 1)",
    )
    parser.add_argument(
        "--no-s3-model",
        action="store_true",
        help="let the cache read the emulator directly, with no S3 latency model (also: DEMO_S3_MODEL=0)",
    )
    parser.add_argument(
        "--s3-latency-ms",
        type=float,
        help=f"the model's first-byte latency (default: {DEFAULT_S3_MODEL.latency_ms:g})",
    )
    parser.add_argument(
        "--s3-bandwidth-mbps",
        type=float,
        help=f"the model's cap per connection, MB/s; 0 = none (default: {DEFAULT_S3_MODEL.bandwidth_mbps:g})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.demo [--events N] [--workers N] [--state-dir DIR] [--no-s3-model] [--s3-latency-ms MS]
    [--s3-bandwidth-mbps MBPS]``: 0 if both runs succeeded, 1 with a one-line message if not."""
    args = parser().parse_args(argv)
    try:
        events = args.events if args.events is not None else events_default(os.environ)
        workers = workers_choice(args.workers, os.environ)
        run_demo(events, args.state_dir, s3_model=s3_model_choice(args, os.environ), workers=workers)
    except (DemoError, ServiceStartError, CacheMetricsError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo interrupted; the stack was stopped", file=sys.stderr)
        return 130
    return 0
