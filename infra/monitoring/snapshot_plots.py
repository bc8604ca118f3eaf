"""A dashboard's panels drawn with matplotlib from what Prometheus answered their queries (``snapshots.Outcome``):
one PNG per dashboard, its panels in Grafana's order two to a row as the dashboards lay them out, a time series as
its lines over the window, a stat as its last value, in the panel's unit as Grafana shows it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

# Files only: no display on a build machine. Chosen before pyplot is imported.
matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from infra.monitoring.snapshots import Outcome, Panel, Window

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def legend(template: str, labels: Mapping[str, str]) -> str:
    """Grafana's legend: ``{{label}}`` replaced by the series' label; without a template, the series' labels ("" for
    a series without any, which gets no legend)."""
    if template:
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")


def formatted(value: float, unit: str) -> str:
    """``value`` as Grafana shows ``unit``: ``percentunit`` as a percentage, ``bytes`` and ``Bps`` in binary units."""
    if math.isnan(value):
        return "NaN"
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    if unit in ("bytes", "Bps"):
        scaled, index = abs(value), 0
        while scaled >= 1024 and index < len(_BINARY) - 1:
            scaled, index = scaled / 1024, index + 1
        text = f"{math.copysign(scaled, value):.3g} {_BINARY[index]}"
        return text + "/s" if unit == "Bps" else text
    suffix = {"reqps": " req/s", "h": " h", "s": " s"}.get(unit, "")
    return f"{value:.3g}{suffix}"


def _when(unix_seconds: float) -> float:
    """A Unix time as matplotlib's dates axis counts it."""
    return float(mdates.date2num(datetime.fromtimestamp(unix_seconds, UTC)))


def _draw_timeseries(axes: Axes, answers: Sequence[Outcome], window: Window) -> None:
    unit = answers[0].panel.unit
    for answer in answers:
        for series in answer.series:
            axes.plot(
                [_when(t) for t, _ in series.points],
                [v for _, v in series.points],
                label=legend(answer.target.legend, series.labels),
                linestyle="--" if answer.target.expr.startswith("vector(") else "-",  # a constant: an SLO's budget
                linewidth=1.2,
            )
    axes.set_xlim(_when(window.start), _when(window.end))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: formatted(value, unit)))
    axes.xaxis.set_major_locator(_minute_ticks(window))
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
    axes.grid(alpha=0.3)
    if any(not str(line.get_label()).startswith("_") for line in axes.get_lines()):  # "_child0": no label
        axes.legend(fontsize=7, loc="best")


def _minute_ticks(window: Window) -> mdates.DateLocator:
    """At most about seven ticks on whole minutes or hours: labels say ``%H:%M``, so a tick every 30 s (matplotlib's
    choice for a few minutes) would print one minute twice."""
    minutes = (window.end - window.start) / 60
    step = next((s for s in (1, 2, 5, 10, 15, 30) if minutes / s <= 7), None)
    if step is not None:
        return mdates.MinuteLocator(byminute=range(0, 60, step), tz=UTC)
    hours = next((s for s in (1, 2, 3, 6, 12) if minutes / 60 / s <= 7), 24)
    return mdates.HourLocator(byhour=range(0, 24, hours), tz=UTC)


def _draw_stat(axes: Axes, answers: Sequence[Outcome]) -> None:
    """The first series' last value that is a number (Grafana's default reduction, "last *"), else NaN."""
    values = [v for _, v in answers[0].series[0].points if not math.isnan(v)] if answers[0].series else []
    axes.axis("off")
    shown = formatted(values[-1] if values else math.nan, answers[0].panel.unit)
    axes.text(0.5, 0.5, shown, ha="center", va="center", fontsize=28)


def render(outcomes: Sequence[Outcome], window: Window, path: Path, title: str) -> Path:
    """Draw the panels of ``outcomes`` (one dashboard's, in order) over ``window`` as one PNG at ``path``, headed
    ``title``. A panel whose queries answered nothing says so in place of its plot. Returns ``path``."""
    panels: dict[Panel, list[Outcome]] = {}
    for outcome in outcomes:
        panels.setdefault(outcome.panel, []).append(outcome)
    rows = max(1, math.ceil(len(panels) / 2))
    figure, grid = plt.subplots(rows, 2, figsize=(13, 3.1 * rows + 0.5), squeeze=False)
    cells = list(grid.flat)
    for axes, (panel, answers) in zip(cells, panels.items(), strict=False):
        axes.set_title(panel.title, fontsize=10)
        if not any(a.series for a in answers):
            axes.axis("off")
            said = "no alert firing" if all(a.status == "quiet" for a in answers) else "no data"
            axes.text(0.5, 0.5, said, ha="center", va="center", fontsize=12, color="#555555")
        elif panel.kind == "stat":
            _draw_stat(axes, answers)
        else:
            _draw_timeseries(axes, answers, window)
    for axes in cells[len(panels) :]:
        axes.axis("off")
    start = datetime.fromtimestamp(window.start, UTC).strftime("%Y-%m-%d %H:%M")
    end = datetime.fromtimestamp(window.end, UTC).strftime("%H:%M UTC")
    figure.suptitle(f"{title}: {start} to {end}", fontsize=12)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.4 / (3.1 * rows + 0.5)))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
