"""``clusterctl``: the compute cluster's size for an operator — ``status``, ``plan``, ``scale --to N``.

    clusterctl --config policy.toml status
    clusterctl --config policy.toml plan              # what the policy would do now, and why (changes nothing)
    clusterctl --config policy.toml scale --to 6      # within the policy's min/max unless --force
    clusterctl --backend asg --group etl-workers --json status

The backend comes from the file's ``[backend]`` table (see ``lakecache_airflow.scaling.backends``) or from
``--backend`` and its flags. ``--last-action FILE`` keeps what the policy remembers between runs (the last change,
for cooldowns; the warmups asked for). Errors are one line on stderr; exit codes: 0 done, 1 the backend failed,
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakecache_airflow.scaling.backends import KINDS, BackendConfig, build_scaler, collect_demand
from lakecache_airflow.scaling.base import ScalingError
from lakecache_airflow.scaling.policy import LastAction, PolicyConfig, PolicyConfigError

EXIT_OK, EXIT_BACKEND, EXIT_USAGE = 0, 1, 2
DEFAULT_APP_CORES = 4


class UsageError(Exception):
    """Bad flags or configuration: exit code 2."""


def parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    top = argparse.ArgumentParser(prog="clusterctl", description="Size the compute cluster: status, plan, scale.")
    top.add_argument("--config", type=Path, help="policy file (TOML) with optional [backend] and [demand] tables")
    top.add_argument("--backend", choices=KINDS, help="spark | asg | emr (default: [backend] kind, else spark)")
    top.add_argument("--json", action="store_true", help="machine-readable output")
    top.add_argument(
        "--last-action", type=Path, help="JSON file of the policy's last action (read by plan, written by scale)"
    )
    spark = top.add_argument_group("spark backend")
    spark.add_argument("--state-dir", help="state directory of a SparkStandaloneCluster")
    aws = top.add_argument_group("asg and emr backends")
    aws.add_argument("--group", help="Auto Scaling group name")
    aws.add_argument("--cluster-id", help="EMR cluster id")
    aws.add_argument("--group-type", choices=["TASK", "CORE"], help="EMR instance group type (default TASK)")
    aws.add_argument("--region")
    aws.add_argument("--endpoint-url", help="an AWS endpoint (an emulator)")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="the cluster's size and demand now")
    commands.add_parser("plan", help="what the policy decides now, with its reasons (changes nothing)")
    scale = commands.add_parser("scale", help="scale to N nodes")
    scale.add_argument("--to", type=int, required=True, metavar="N", help="target number of nodes")
    scale.add_argument("--force", action="store_true", help="allow a target outside the policy's min/max")
    scale.add_argument("--no-graceful", action="store_true", help="remove nodes at once, without decommissioning")
    scale.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run clusterctl; returns the exit code."""
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except (UsageError, PolicyConfigError, ValueError) as exc:
        print(f"clusterctl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ScalingError as exc:
        print(f"clusterctl: error: {exc}", file=sys.stderr)
        return EXIT_BACKEND
    except KeyboardInterrupt:
        print("clusterctl: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    data = _read(args.config) if args.config else {}
    try:
        policy = PolicyConfig.from_dict(data) if args.config else None
    except PolicyConfigError as exc:
        raise UsageError(f"{args.config}: {exc}") from None
    overrides = {
        "state_dir": args.state_dir,
        "group": args.group,
        "cluster_id": args.cluster_id,
        "group_type": args.group_type,
        "region": args.region,
        "endpoint_url": args.endpoint_url,
    }
    kind = args.backend or (data.get("backend") or {}).get("kind") or "spark"
    relevant = {k: v for k, v in overrides.items() if v is not None and _belongs(kind, k)}
    backend = BackendConfig.from_dict(data, kind=kind, overrides=relevant)
    scaler = build_scaler(backend, on_retry=lambda line: print(f"clusterctl: {line}", file=sys.stderr))
    app_cores = policy.reactive.app_cores if policy else DEFAULT_APP_CORES

    if args.command == "status":
        state = scaler.current()
        demand = collect_demand(backend, scaler, app_cores=app_cores)
        if args.json:
            _print_json({"state": state.to_json(), "demand": demand.to_json()})
        else:
            cores = f", cores {state.cores_used}/{state.cores_total} used" if state.cores_total is not None else ""
            print(f"{state.backend}: {state.nodes} nodes serving, {state.desired} desired{cores}")
            if demand.used_cores is not None:
                print(f"demand: {demand.waiting_apps} applications waiting for {demand.waiting_cores} cores")
            if demand.cache_fill is not None:
                print(f"cache: {demand.cache_fill:.0%} full (high watermark {demand.cache_high_watermark:.0%})")
            for note in demand.notes:
                print(f"note: {note}")
        return EXIT_OK

    if args.command == "plan":
        if policy is None:
            raise UsageError("plan needs a policy: --config FILE")
        state = scaler.current()
        demand = collect_demand(backend, scaler, app_cores=app_cores)
        decision = policy.decide(datetime.now(UTC), state, demand, _last_action(args.last_action), dry_run=True)
        if args.json:
            _print_json(decision.to_json())
        else:
            print(decision.summary())
            for reason in decision.reasons:
                print(f"  - {reason}")
        return EXIT_OK

    target = int(args.to)
    if target < 0:
        raise UsageError(f"--to must be 0 or more nodes, not {target}")
    if policy is not None and not args.force and not policy.min_nodes <= target <= policy.max_nodes:
        raise UsageError(
            f"--to {target} is outside the policy's [min_nodes, max_nodes] = [{policy.min_nodes}, "
            f"{policy.max_nodes}] (--force to do it anyway)"
        )
    if args.dry_run:
        state = scaler.current()
        message = f"would scale the {state.backend} from {state.desired} to {target} nodes (dry run)"
        if args.json:
            _print_json({"dry_run": True, "before": state.desired, "target": target})
        else:
            print(message)
        return EXIT_OK
    result = scaler.scale_to(target, graceful=not args.no_graceful)
    if args.last_action is not None and result.changed:
        record = (_last_action(args.last_action) or LastAction()).to_json()
        record.update(at=datetime.now(UTC).isoformat(), target=result.requested)
        args.last_action.write_text(json.dumps(record))
    if args.json:
        _print_json(result.to_json())
    else:
        verb = "scaled" if result.changed else "left"
        print(f"{verb} the {scaler.backend} cluster: {result.before} -> {result.requested} nodes ({result.after} now)")
        for line in (*result.retries, *result.notes):
            print(f"  - {line}")
    return EXIT_OK


def _belongs(kind: str, option: str) -> bool:
    return (
        option
        in {
            "spark": {"state_dir"},
            "asg": {"group", "region", "endpoint_url"},
            "emr": {"cluster_id", "group_type", "region", "endpoint_url"},
        }[kind]
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None


def _last_action(path: Path | None) -> LastAction | None:
    if path is None or not path.exists():
        return None
    try:
        return LastAction.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError, AttributeError) as exc:
        raise UsageError(f"{path}: not a last-action record: {exc}") from None


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True))


if __name__ == "__main__":
    raise SystemExit(main())
