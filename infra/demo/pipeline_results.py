"""What a run of the telemetry DAG produced, read from what its tasks logged, returned and wrote.

``StageRows``: the rows at each stage (the ingest job's reconciliation, each aggregate's new partition);
``quality_results``: the Great Expectations suites' outcomes; ``catalog_changes``: what the metastore sync did.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.demo import DemoError
from infra.demo.airflow_home import DagRunRecord, task_log

_INGESTED = re.compile(
    r"ingested (?P<raw>[\d,]+) raw lines for (?P<day>\S+) in [\d.]+s: (?P<clean>[\d,]+) clean, "
    r"(?P<duplicates>[\d,]+) duplicates, (?P<quarantined>[\d,]+) quarantined"
)
_QUARANTINED = re.compile(r"\] quarantined +(?P<lines>[\d,]+) +(?P<reason>\S+)")


def _count(text: str) -> int:
    return int(text.replace(",", ""))


@dataclass(frozen=True)
class StageRows:
    """Rows at each stage of one run: the ingest job's reconciliation, and each aggregate table's new partition."""

    raw_lines: int
    clean: int
    duplicates: int
    quarantined: int
    quarantined_by_reason: Mapping[str, int]
    clean_validated: int
    aggregates: Mapping[str, int]

    @property
    def reconciles(self) -> bool:
        """Every raw line is accounted for once: ``raw_lines == clean + duplicates + quarantined``."""
        return self.raw_lines == self.clean + self.duplicates + self.quarantined

    @classmethod
    def from_run(cls, record: DagRunRecord, log_text: str) -> StageRows:
        """Read the ingest job's summary from its task's log and the row counts the validate tasks returned.

        Raises ``DemoError`` if the ingest summary or a validate task's return value is missing.
        """
        ingest = task_log(log_text, "ingest_events")
        found = next((m for m in map(_INGESTED.search, ingest) if m), None)
        if found is None:
            raise DemoError(f"the ingest_events task logged no summary line (see {record.log_path})")
        reasons = {m["reason"]: _count(m["lines"]) for m in map(_QUARANTINED.search, ingest) if m}
        events, aggregates = record.xcoms.get("validate_events"), record.xcoms.get("validate_aggregates")
        if not isinstance(events, dict) or not isinstance(aggregates, dict):
            raise DemoError(f"the validate tasks returned no row counts (see {record.log_path})")
        return cls(
            raw_lines=_count(found["raw"]),
            clean=_count(found["clean"]),
            duplicates=_count(found["duplicates"]),
            quarantined=_count(found["quarantined"]),
            quarantined_by_reason=dict(sorted(reasons.items())),
            clean_validated=int(events["rows"]),
            aggregates={str(k): int(v) for k, v in aggregates["tables"].items()},
        )


@dataclass(frozen=True)
class SuiteResult:
    """One Great Expectations suite's outcome on one table, as the validate task wrote it."""

    table: str
    suite: str
    success: bool
    evaluated: int
    failed: int
    path: Path

    @classmethod
    def read(cls, path: Path) -> SuiteResult:
        """The result JSON at ``path``. Raises ``DemoError`` if it is missing or not a result."""
        try:
            data = json.loads(path.read_text())
            return cls(
                table=str(data["table"]),
                suite=str(data["suite"]),
                success=bool(data["success"]),
                evaluated=int(data["evaluated"]),
                failed=int(data["failed"]),
                path=path,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DemoError(f"cannot read the data-quality result {path}: {exc}") from exc


def quality_results(record: DagRunRecord) -> tuple[SuiteResult, ...]:
    """Every suite result of the run: the clean events first, then the aggregate tables by name.

    The validate tasks write them side by side, in the folder whose path ``validate_events`` returned.
    """
    events = record.xcoms.get("validate_events")
    if not isinstance(events, dict) or "results" not in events:
        raise DemoError(f"validate_events returned no result path (see {record.log_path})")
    first = Path(events["results"])
    rest = sorted(p for p in first.parent.glob("*.json") if p != first)
    return tuple(SuiteResult.read(p) for p in (first, *rest))


def catalog_changes(record: DagRunRecord) -> dict[str, str]:
    """What ``metastore_sync`` did to each table (by short name), in a few words: ``new table, +1 partition``."""
    results = record.xcoms.get("metastore_sync")
    changes: dict[str, str] = {}
    for result in results if isinstance(results, list) else []:
        name = str(result.get("table", "")).rpartition(".")[2]
        if "skipped" in result:
            changes[name] = "skipped (no data)"
            continue
        done = []
        if result.get("create_table"):
            done.append("new table")
        elif result.get("update_table"):
            done.append("new schema")
        for key, change in _PARTITION_CHANGES:
            count = len(result.get(key) or ())
            if count:
                done.append(change.format(count, "" if count == 1 else "s"))
        changes[name] = ", ".join(done) or "unchanged"
    return changes


_PARTITION_CHANGES = (
    ("add_partitions", "+{} partition{}"),
    ("update_partitions", "{} partition{} replaced"),
    ("drop_partitions", "-{} partition{}"),
)
