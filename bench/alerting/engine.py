"""Rules evaluated by Prometheus's own engine over backfilled series: recording rules by ``promtool tsdb
create-blocks-from rules``, alerting rules by range queries, with ``for`` and ``keep_firing_for`` applied as the rule
manager applies them.

A Prometheus that scrapes writes a stale marker when a target or a recorded series goes away, and the series is gone
at the next evaluation. OpenMetrics cannot carry stale markers, so ``QueryEngine`` runs with a lookback of 59 s over
series sampled every minute, and rules are evaluated 30 s past the minute: each sample is read for the minute it
stands for, and a series that stops is gone at the next evaluation, as in a scraping Prometheus. A range query at a
step is the instant query the rule manager runs at that time, so the expression's result at each evaluation is
Prometheus's own.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.ports import LOOPBACK, free_port
from infra.service_process import ProcessService, ServiceProcess, http_ok

LOOKBACK = "59s"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def promtool(*args: str, timeout: float = 3600) -> str:
    """Run ``promtool`` and return its output. Raises ``RuntimeError`` with what it said when it fails."""
    binary = shutil.which("promtool")
    if binary is None:
        raise FileNotFoundError("promtool is not installed: `make system-deps` installs Debian's prometheus")
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"promtool {' '.join(args[:3])} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def backfill(openmetrics: Path, data_dir: Path) -> None:
    """Cut ``openmetrics`` into TSDB blocks in ``data_dir`` (``promtool tsdb create-blocks-from openmetrics``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    promtool("tsdb", "create-blocks-from", "openmetrics", "--quiet", str(openmetrics), str(data_dir))


class QueryEngine(ProcessService):
    """``prometheus`` over a data directory of backfilled blocks, scraping nothing, answering queries."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port(LOOPBACK)
        self.url = f"http://{LOOPBACK}:{self.port}"
        config = data_dir.parent / "query-engine.yml"
        config.write_text("# Queries only: no scrape targets, no rules.\nglobal: {}\n")
        binary = shutil.which("prometheus")
        if binary is None:
            raise FileNotFoundError("prometheus is not installed: `make system-deps` installs Debian's package")
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            "--storage.tsdb.retention.time=100y",  # the blocks are in the past; nothing may be cut
            f"--query.lookback-delta={LOOKBACK}",
            "--query.max-samples=500000000",
            f"--web.listen-address={LOOPBACK}:{self.port}",
        ]
        self._process = ServiceProcess("Prometheus (queries)", argv, log_path=log_path, env={})

    def start(self, timeout: float = 120.0) -> None:
        """Start it and wait until ``/-/ready``. Raises ``ServiceStartError`` with its log."""
        assert self._process is not None
        self._process.start(lambda: http_ok(self.url + "/-/ready"), timeout)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        if self._process is not None:
            self._process.stop()

    def restart(self) -> None:
        """Stop and start again: blocks added to the data directory meanwhile are read."""
        self.stop()
        self.start()

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """The expression's matrix: its value at every step from ``start`` to ``end`` (Unix seconds).

        Raises ``RuntimeError`` with Prometheus's error when it refuses the query."""
        form = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step, "timeout": "600s"})
        request = urllib.request.Request(self.url + "/api/v1/query_range", data=form.encode(), method="POST")
        try:
            with _DIRECT.open(request, timeout=900) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"Prometheus refused {expr!r}: {error.read().decode(errors='replace')}") from error
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result


@dataclass(frozen=True)
class AlertRule:
    """An alerting rule as Prometheus reads it."""

    name: str
    expr: str
    for_seconds: float
    keep_firing_for_seconds: float
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Firing:
    """One alert (its full label set) firing from ``start`` until ``end`` (Unix seconds; None: still at the end)."""

    labels: tuple[tuple[str, str], ...]
    start: float
    end: float | None

    def label(self, name: str) -> str:
        """The value of label ``name`` ("" if it has none)."""
        return dict(self.labels).get(name, "")


def parse_duration(text: str | float | int) -> float:
    """Seconds of a Prometheus duration (``1h30m``, ``90s``, ``500ms``)."""
    if isinstance(text, int | float):
        return float(text)
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def load_groups(rule_files: Iterable[Path]) -> list[dict[str, Any]]:
    """Every rule group of the files, in order."""
    groups: list[dict[str, Any]] = []
    for path in rule_files:
        groups += (yaml.safe_load(path.read_text()) or {}).get("groups", [])
    return groups


def alerting_rules(groups: Sequence[Mapping[str, Any]]) -> list[AlertRule]:
    """The alerting rules of ``groups``."""
    return [
        AlertRule(
            rule["alert"],
            rule["expr"],
            parse_duration(rule.get("for", 0)),
            parse_duration(rule.get("keep_firing_for", 0)),
            {k: str(v) for k, v in (rule.get("labels") or {}).items()},
        )
        for group in groups
        for rule in group.get("rules", [])
        if "alert" in rule
    ]


def recording_passes(groups: Sequence[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """The recording rules in passes: each pass reads only raw series and the records of earlier passes.

    ``promtool tsdb create-blocks-from rules`` cannot read a record it is writing in the same run."""
    rules = [dict(rule) for group in groups for rule in group.get("rules", []) if "record" in rule]
    names = {rule["record"] for rule in rules}
    done: set[str] = set()
    passes: list[list[dict[str, Any]]] = []
    while rules:
        ready = [r for r in rules if not (_reads(r["expr"], names) - done)]
        if not ready:
            raise ValueError("recording rules read each other in a cycle: " + ", ".join(r["record"] for r in rules))
        passes.append(ready)
        rules = [r for r in rules if r not in ready]
        done |= {r["record"] for r in ready}
    return passes


def _reads(expr: str, names: set[str]) -> set[str]:
    return {n for n in names if re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])", expr)}


def backfill_records(
    engine: QueryEngine, groups: Sequence[Mapping[str, Any]], start: float, end: float, step: float
) -> int:
    """Evaluate the recording rules of ``groups`` over [``start``, ``end``] with promtool, pass by pass, into the
    engine's data directory (restarting it after each pass). Returns the number of passes."""
    passes = recording_passes(groups)
    for number, rules in enumerate(passes):
        with tempfile.TemporaryDirectory(dir=engine.data_dir.parent) as scratch:
            rule_file = Path(scratch) / f"pass-{number}.yml"
            rule_file.write_text(yaml.safe_dump({"groups": [{"name": f"pass-{number}", "rules": rules}]}))
            out = Path(scratch) / "blocks"
            promtool(
                "tsdb",
                "create-blocks-from",
                "rules",
                f"--start={int(start)}",
                f"--end={int(end)}",
                f"--url={engine.url}",
                f"--eval-interval={int(step)}s",
                f"--output-dir={out}",
                str(rule_file),
            )
            for block in out.iterdir():
                shutil.move(str(block), engine.data_dir / block.name)
        engine.restart()
    return len(passes)


def evaluate_alerts(
    engine: QueryEngine,
    rules: Sequence[AlertRule],
    start: float,
    end: float,
    step: float,
    external_labels: Mapping[str, str] | None = None,
) -> list[Firing]:
    """Every alert that fired between ``start`` and ``end``, evaluated every ``step`` seconds."""
    firings: list[Firing] = []
    for rule in rules:
        firings += alert_states(rule, engine.query_range(rule.expr, start, end, step), start, end, step)
    extra = dict(external_labels or {})
    return [
        Firing(tuple(sorted(({**extra, **dict(f.labels)}).items())), f.start, f.end) if extra else f for f in firings
    ]


def alert_states(
    rule: AlertRule, matrix: Sequence[Mapping[str, Any]], start: float, end: float, step: float
) -> list[Firing]:
    """The firing intervals of ``rule`` given its expression's value at each step, as the rule manager computes them.

    An alert is pending from the first evaluation that returns its series and firing once it has been pending for
    ``for``; it is dropped while pending, or resolved while firing, at the first evaluation without its series
    (after ``keep_firing_for`` of such evaluations)."""
    present: dict[tuple[tuple[str, str], ...], set[int]] = {}
    for series in matrix:
        labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
        labels.update(rule.labels)
        labels["alertname"] = rule.name
        key = tuple(sorted(labels.items()))
        present.setdefault(key, set()).update(round((float(t) - start) / step) for t, _ in series["values"])
    steps = round((end - start) / step) + 1
    firings = []
    for key, seen in present.items():
        active_at: int | None = None
        firing_at: int | None = None
        missing_since: int | None = None
        for index in range(min(seen), steps):
            if index in seen:
                missing_since = None
                if active_at is None:
                    active_at = index
                if firing_at is None and (index - active_at) * step >= rule.for_seconds:
                    firing_at = index
                continue
            if active_at is None:
                continue
            if firing_at is None:
                active_at = None
                continue
            missing_since = index if missing_since is None else missing_since
            if (index - missing_since) * step >= rule.keep_firing_for_seconds:
                firings.append(Firing(key, start + firing_at * step, start + index * step))
                active_at = firing_at = missing_since = None
        if firing_at is not None:
            firings.append(Firing(key, start + firing_at * step, None))
    return firings
