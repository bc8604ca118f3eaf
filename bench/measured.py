"""What the measured sections (``http_reads``, ``parquet_lookups``, ``spark_scan``) share around their measurements.

Each works in a folder of its own, emptied first, and returns a ``Section`` that ``python -m bench.run --only NAME``
runs again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bench.report import WORK_ROOT
from bench.section import Section


def fresh_work_dir(name: str, work_dir: Path | None = None) -> Path:
    """``work_dir``, or section ``name``'s folder under ``WORK_ROOT``, emptied of an earlier run and created."""
    work = (work_dir or WORK_ROOT / name).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def measured_section(
    name: str, title: str, *, full: bool, markdown: str, results: dict[str, Any], targets: dict[str, Any]
) -> Section:
    """Section ``name``, whose command is the ``make bench`` run of it alone (with ``BENCH_FULL=1`` if ``full``)."""
    command = f"{'BENCH_FULL=1 ' if full else ''}python -m bench.run --only {name}"
    return Section(name, title, command, markdown, results, targets)
