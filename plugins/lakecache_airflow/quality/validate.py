"""Run an expectation suite over a table inside a task, and turn the outcome into something a person can read.

Great Expectations 1.x runs in an ephemeral context (nothing on disk, no analytics, no progress bars), created per
validation so that two validations never share state. The data is a pandas or a Spark DataFrame; for a partition
in the lake, ``read_partition`` loads it through the cache's WebHDFS API with pyarrow and fsspec (no JVM, no
libhdfs).

``check`` is what a task calls: it validates, writes the result as JSON beside the run, and raises ``QualityError``
with one line per failed expectation (what was expected, what was observed) if anything failed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.data_context import EphemeralDataContext

# SUMMARY keeps counts and up to 20 sample values per failure: enough to see what went wrong, small enough to store.
RESULT_FORMAT: Final = "SUMMARY"
SAMPLE_VALUES = 5  # shown in a summary line


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result: which, on what, whether it held, and what was expected and observed, in words."""

    expectation: str
    kwargs: Mapping[str, Any]
    success: bool
    expected: str
    observed: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """``<expectation>: expected <...>; observed <...>``."""
        return f"{self.expectation}: expected {self.expected}; observed {self.observed}"

    def to_dict(self) -> dict[str, Any]:
        """The outcome as JSON-ready data (values JSON cannot hold are turned into strings when dumped)."""
        return {
            "expectation": self.expectation,
            "kwargs": dict(self.kwargs),
            "success": self.success,
            "expected": self.expected,
            "observed": self.observed,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class QualityResult:
    """The outcome of one suite over one table: ``success`` only if every expectation held."""

    suite: str
    table: str
    success: bool
    outcomes: tuple[ExpectationOutcome, ...]
    validated_at: str
    gx_result: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        """The outcomes of the expectations that did not hold."""
        return tuple(o for o in self.outcomes if not o.success)

    def summary(self) -> str:
        """A headline, then one line per failed expectation: what, expected, observed."""
        where = f" on {self.table}" if self.table else ""
        total = len(self.outcomes)
        if self.success:
            return f"quality check passed: suite {self.suite}{where}, {total} of {total} expectations met"
        lines = [
            f"quality check failed: suite {self.suite}{where}, {len(self.failures)} of {total} expectations failed"
        ]
        lines += [f"  - {o.line()}" for o in self.failures]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data, the full Great Expectations result included under ``gx_result``."""
        return {
            "suite": self.suite,
            "table": self.table,
            "success": self.success,
            "validated_at": self.validated_at,
            "evaluated": len(self.outcomes),
            "failed": len(self.failures),
            "summary": self.summary(),
            "expectations": [o.to_dict() for o in self.outcomes],
            "gx_result": dict(self.gx_result),
        }

    def to_json(self) -> str:
        """``to_dict()`` as indented JSON; timestamps and other non-JSON values become strings."""
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    def write_json(self, path: Path) -> Path:
        """Write ``to_json()`` to ``path`` (parents created) and return ``path``. Raises ``OSError`` if it cannot."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path


class QualityError(Exception):
    """A suite failed; the message is the result's readable summary and ``result`` holds the whole outcome."""

    def __init__(self, result: QualityResult) -> None:
        super().__init__(result.summary())
        self.result = result


# --- describing expectations in words ---------------------------------------------------------------------------


def _condition(condition: Any) -> str:
    """A row condition (as GX serialises it) in words, e.g. ``event_type == 'purchase'``."""
    if isinstance(condition, Mapping):
        kind = condition.get("type")
        if kind == "comparison":
            return f"{condition['column']['name']} {condition['operator']} {condition['parameter']!r}"
        if kind == "nullity":
            return f"{condition['column']['name']} IS {'NULL' if condition.get('is_null') else 'NOT NULL'}"
        if kind in ("and", "or"):
            return f" {kind.upper()} ".join(f"({_condition(c)})" for c in condition.get("conditions", []))
    return str(condition)


def _number(value: Any) -> Any:
    """GX stores bounds as floats: 0.0 reads better as 0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _bounds(subject: str, kwargs: Mapping[str, Any]) -> str:
    low, high = _number(kwargs.get("min_value")), _number(kwargs.get("max_value"))
    low_op = ">" if kwargs.get("strict_min") else ">="
    high_op = "<" if kwargs.get("strict_max") else "<="
    parts = ([f"{low_op} {low}"] if low is not None else []) + ([f"{high_op} {high}"] if high is not None else [])
    return f"{subject} {' and '.join(parts)}" if parts else f"{subject} unbounded"


def _expected(expectation: str, kwargs: Mapping[str, Any]) -> str:
    column = kwargs.get("column", "")
    if expectation == "expect_column_values_to_be_unique":
        text = f"{column} unique"
    elif expectation == "expect_column_values_to_not_be_null":
        text = f"{column} never null"
    elif expectation == "expect_column_values_to_be_in_set":
        text = f"{column} in {list(kwargs.get('value_set') or [])}"
    elif expectation == "expect_column_values_to_be_between":
        text = _bounds(str(column), kwargs)
    elif expectation == "expect_table_row_count_to_be_between":
        text = _bounds("row count", kwargs)
    elif expectation == "expect_table_row_count_to_equal":
        text = f"row count == {kwargs.get('value')}"
    elif expectation == "expect_column_pair_values_a_to_be_greater_than_b":
        operator = ">=" if kwargs.get("or_equal") else ">"
        text = f"{kwargs.get('column_A')} {operator} {kwargs.get('column_B')}"
    else:
        text = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "row_condition")
    if kwargs.get("row_condition"):
        text += f" where {_condition(kwargs['row_condition'])}"
    return text


def _errors(exception_info: Any) -> list[str]:
    """The distinct error messages of a result: GX gives one record, or one per metric it could not compute."""
    if not isinstance(exception_info, Mapping):
        return []
    records = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    messages = [
        str(r.get("exception_message")) for r in records if isinstance(r, Mapping) and r.get("raised_exception")
    ]
    return list(dict.fromkeys(messages))


def _observed(result: Mapping[str, Any], errors: Sequence[str]) -> str:
    if errors:
        return f"an error: {'; '.join(errors)}"
    if "observed_value" in result:
        return f"{result['observed_value']!r}"
    if "unexpected_count" in result:
        text = f"{result['unexpected_count']:,} of {result.get('element_count', 0):,} values unexpected"
        percent = result.get("unexpected_percent")
        if percent is not None:
            text += f" ({percent:.2f}%)" if percent == 0 or percent >= 0.01 else " (<0.01%)"
        sample = _sample(result)
        return f"{text}, e.g. {sample}" if sample else text
    return "no result"


def _sample(result: Mapping[str, Any]) -> str:
    """A few unexpected values, each once with how often it was seen (a duplicate key shows as ``'k' x4``)."""
    counts: Sequence[Mapping[str, Any]] = result.get("partial_unexpected_counts") or []
    if counts:
        shown = [(_plain(c.get("value")), int(c.get("count", 1))) for c in counts[:SAMPLE_VALUES]]
    else:
        shown = [(_plain(v), 1) for v in (result.get("partial_unexpected_list") or [])[:SAMPLE_VALUES]]
    return ", ".join(f"{value!r} x{count}" if count > 1 else repr(value) for value, count in shown)


def _plain(value: Any) -> Any:
    """A sample value as it reads best in a line: numbers and strings as they are, the rest as text."""
    return value if isinstance(value, int | float | str | list | tuple) or value is None else str(value)


def _outcome(validation: ExpectationValidationResult) -> ExpectationOutcome:
    config = validation.expectation_config
    assert config is not None  # GX sets it on every result of a suite run
    serialised: Any = config.to_json_dict()["kwargs"]  # JSON-ready, datetimes as text
    kwargs = {k: v for k, v in serialised.items() if k != "batch_id"}
    result = dict(validation.result or {})
    errors = _errors(validation.exception_info)
    return ExpectationOutcome(
        expectation=config.type,
        kwargs=kwargs,
        success=bool(validation.success) and not errors,
        expected=_expected(config.type, kwargs),
        observed=_observed(result, errors),
        details=result | {"errors": errors} if errors else result,
    )


# --- running a suite ---------------------------------------------------------------------------------------------


def _context() -> EphemeralDataContext:
    """A fresh ephemeral context: in memory only, quiet, and no usage statistics leave the machine."""
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def validate_table(data: Any, suite: gx.ExpectationSuite, *, table: str = "") -> QualityResult:
    """Run ``suite`` over ``data`` (a pandas or a Spark DataFrame) and return the outcome; never raises on failure.

    ``table`` names the data in the summary and the JSON (e.g. the partition's URI). An expectation that cannot be
    evaluated (a missing column, say) counts as failed, its error as the observation. Raises ``TypeError`` if
    ``data`` is neither kind of DataFrame.
    """
    context = _context()
    asset = table or suite.name
    if isinstance(data, pd.DataFrame):
        pandas_asset = context.data_sources.add_pandas("lakecache").add_dataframe_asset(asset)
        batch = pandas_asset.add_batch_definition_whole_dataframe("whole")
    elif type(data).__module__.startswith("pyspark.sql"):
        spark_asset = context.data_sources.add_spark("lakecache").add_dataframe_asset(asset)
        batch = spark_asset.add_batch_definition_whole_dataframe("whole")
    else:
        raise TypeError(f"expected a pandas or Spark DataFrame, got {type(data).__name__}")
    # A copy joins this context: the caller's suite object stays unbound and can be validated again elsewhere.
    copy = context.suites.add(
        gx.ExpectationSuite(name=suite.name, expectations=[e.copy(update={"id": None}) for e in suite.expectations])
    )
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=suite.name, data=batch, suite=copy))
    run: ExpectationSuiteValidationResult = definition.run(
        batch_parameters={"dataframe": data}, result_format=RESULT_FORMAT
    )
    outcomes = tuple(_outcome(r) for r in run.results)
    return QualityResult(
        suite=suite.name,
        table=table,
        success=bool(run.success) and all(o.success for o in outcomes),
        outcomes=outcomes,
        validated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        gx_result=run.to_json_dict(),
    )


def check(data: Any, suite: gx.ExpectationSuite, *, table: str = "", result_path: Path | None = None) -> QualityResult:
    """Validate like ``validate_table``, write the JSON to ``result_path`` if given, and fail loudly.

    The JSON is written whether the suite passed or not, before raising. Returns the result if every expectation
    held; raises ``QualityError`` (message: the summary) if any failed, ``OSError`` if the JSON cannot be written.
    """
    result = validate_table(data, suite, table=table)
    if result_path is not None:
        result.write_json(result_path)
    if not result.success:
        raise QualityError(result)
    return result


# --- reading a partition through the cache ----------------------------------------------------------------------


def read_partition(table_uri: str, column: str, value: date | str, *, user: str = "lakecache") -> pd.DataFrame:
    """Partition ``column=value`` of the Parquet table at ``table_uri`` (``webhdfs://host:port/path``) as pandas.

    The partition column is added back as a column of ``value``'s text. Raises ``ValueError`` for a URI that is not
    ``webhdfs://``, ``FileNotFoundError`` if the partition does not exist.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds
    from fsspec.implementations.webhdfs import WebHDFS
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    parts = urlsplit(table_uri)
    if parts.scheme != "webhdfs" or not parts.hostname:
        raise ValueError(f"table_uri must be a webhdfs://host:port/path URI, got {table_uri!r}")
    text = value.isoformat() if isinstance(value, date) else str(value)
    path = f"{parts.path.rstrip('/')}/{column}={text}"
    webhdfs = WebHDFS(parts.hostname, port=parts.port or 9870, user=user)
    if not webhdfs.exists(path):
        raise FileNotFoundError(f"{table_uri}/{column}={text}: no such partition")
    # Spark's markers (_SUCCESS, .crc) start with "_" or ".", which the dataset skips by default.
    arrow = ds.dataset(path, filesystem=PyFileSystem(FSSpecHandler(webhdfs)), format="parquet").to_table()
    arrow = arrow.append_column(column, pa.array([text] * arrow.num_rows, pa.string()))
    return arrow.to_pandas()
