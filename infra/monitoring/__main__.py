"""``python -m infra.monitoring COMMAND``: ``generate`` writes ``infra/monitoring/generated/`` from the spec;
``generate --check`` only says which committed files differ (exit 1), as ``make lint`` runs it. ``up``, ``deploy``
and ``down`` run the monitoring of the local stack (``infra.monitoring.local``); ``snapshots`` checks the dashboards'
queries against its Prometheus and draws them (``infra.monitoring.snapshots``).

Each command is one entry of ``COMMANDS``: a name, a help line, a function adding its arguments and one running it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from infra.monitoring import local, snapshots
from infra.monitoring.generate import GENERATED_DIR, differences, generate, write
from infra.monitoring.loading import SPEC_PATH, load_spec
from infra.monitoring.model import SpecError
from infra.monitoring.site import Site


class _Parser(argparse.ArgumentParser):
    """Usage mistakes in one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


@dataclass(frozen=True)
class Command:
    """One subcommand: ``add_arguments`` declares its options, ``run`` does it and returns the exit status."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", type=Path, default=SPEC_PATH, help="the spec (default: infra/monitoring/spec.toml)")
    parser.add_argument("--out", type=Path, default=GENERATED_DIR, help="where the files go (default: generated/)")
    parser.add_argument("--check", action="store_true", help="write nothing; fail if the files differ from the spec")


def _generate(args: argparse.Namespace) -> int:
    files = generate(load_spec(args.spec), Site.default())
    if args.check:
        problems = differences(files, args.out)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run: python -m infra.monitoring generate", file=sys.stderr)
            return 1
        print(f"{args.out}: {len(files)} files, as the spec generates them")
        return 0
    write(files, args.out)
    print(f"{args.out}: {len(files)} files written")
    return 0


COMMANDS: list[Command] = [
    Command(
        "generate", "write Prometheus, Alertmanager and Grafana files from the spec", _generate_arguments, _generate
    ),
    Command("up", "start Prometheus and Alertmanager against the local stack", local.add_up_arguments, local.run_up),
    Command("deploy", "check, write and reload the running servers' files", local.add_arguments, local.run_deploy),
    Command("down", "stop what up started", local.add_arguments, local.run_down),
    Command(
        "snapshots",
        "check every dashboard query against Prometheus and draw the dashboards as PNGs",
        snapshots.add_arguments,
        snapshots.run,
    ),
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a spec with mistakes is reported one line per mistake (exit 1)."""
    parser = _Parser(prog="python -m infra.monitoring", description="Monitoring as code for Lakecache.")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except SpecError as exc:
        for problem in exc.problems:
            print(f"{args.command}: {problem}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
