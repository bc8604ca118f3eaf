"""``CachePurgeOperator``: purge under pressure — evict down to a target only when the cache is above a threshold."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from lakecache_airflow.hooks.cache import CacheHook
from lakecache_airflow.operators.warmup import is_template, path_list


class CachePurgeOperator(BaseOperator):
    """Read the cache's status; when its usage is above ``threshold``, purge it down to ``target``.

    Usage is ``used_bytes / capacity_bytes`` of the cache's last (largest) tier, as ``GET status`` reports it.
    Purging never evicts pinned pages, pages being read, or staged data not yet in S3: the cache refuses those and
    the refusals are reported. With ``dry_run`` the cache only plans the purge; nothing changes.

    Returns (and pushes to XCom)::

        {"purged": bool, "dry_run": bool, "freed_bytes": int, "evicted": [{"path", "bytes"}],
         "refused": [{"path", "reason"}], "reached_target": bool, "shortfall": str | None,
         "usage_before": float, "usage_after": float, "threshold": float, "target": float}

    ``purged`` is true only when pages were actually evicted; a dry run reports the plan in ``freed_bytes``,
    ``evicted`` and ``usage_after`` with ``purged`` false. When the target is not (or would not be) reached,
    ``shortfall`` is the cache's one-line reason: pinned or staged bytes it kept, pages being read, or paths that
    hold less than the purge needed; otherwise it is None.

    :param threshold: usage fraction above which to purge; default: the cache's ``high_watermark``.
    :param target: usage fraction to purge down to; default: the cache's ``low_watermark``.
    :param dry_run: only plan the purge.
    :param paths: purge only below these cache paths; templated. Default: the whole cache.
    :param lakecache_conn_id: the ``lakecache`` connection of the cache.
    """

    template_fields: Sequence[str] = ("paths", "threshold", "target", "plan_only")
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        threshold: float | str | None = None,
        target: float | str | None = None,
        dry_run: bool | str = False,
        paths: str | Sequence[str] | None = None,
        lakecache_conn_id: str = CacheHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Values are checked at DAG parse time; templates (DAG params) once rendered, in execute.
        if not any(is_template(v) for v in (threshold, target, dry_run)):
            _check_arguments(threshold, target, dry_run)
        self.threshold = threshold
        self.target = target
        # Not ``self.dry_run``: BaseOperator.dry_run() is Airflow's render-only run of a task.
        self.plan_only = dry_run
        self.paths = paths
        self.lakecache_conn_id = lakecache_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Decide from the status, purge (or plan) if needed, and return what was freed."""
        _check_arguments(self.threshold, self.target, self.plan_only)
        hook = CacheHook(self.lakecache_conn_id)
        status = hook.status()
        capacity = int(status["capacity_bytes"])
        threshold = float(self.threshold if self.threshold is not None else status["high_watermark"])
        target = float(self.target if self.target is not None else status["low_watermark"])
        plan_only = bool(self.plan_only)
        if target > threshold:
            raise AirflowException(
                f"target {target:.2f} is above threshold {threshold:.2f} (defaults are the cache's watermarks): "
                "set both"
            )
        usage = _usage(int(status["used_bytes"]), capacity)
        result: dict[str, Any] = {
            "purged": False,
            "dry_run": self.plan_only,
            "freed_bytes": 0,
            "evicted": [],
            "refused": [],
            "reached_target": usage <= target,
            "shortfall": None,
            "usage_before": usage,
            "usage_after": usage,
            "threshold": threshold,
            "target": target,
        }
        if usage <= threshold:
            self.log.info("Cache usage %.1f%% is not above %.1f%%: nothing to purge", 100 * usage, 100 * threshold)
            return result
        paths = path_list(self.paths) if self.paths is not None else None
        self.log.info(
            "Cache usage %.1f%% is above %.1f%%: %s down to %.1f%%%s",
            100 * usage,
            100 * threshold,
            "planning a purge" if self.plan_only else "purging",
            100 * target,
            f" below {', '.join(paths)}" if paths else "",
        )
        report = hook.purge(target, dry_run=plan_only, paths=paths)
        result.update(
            purged=not plan_only and report["freed_bytes"] > 0,
            freed_bytes=report["freed_bytes"],
            evicted=report["evicted"],
            refused=report["refused"],
            reached_target=report["reached_target"],
            shortfall=report.get("shortfall"),
            usage_before=_usage(report["used_bytes_before"], capacity),
            usage_after=_usage(report["used_bytes_after"], capacity),
        )
        for refusal in report["refused"]:
            self.log.warning("Kept %s: %s", refusal["path"], refusal["reason"])
        if result["shortfall"]:
            self.log.warning("Target %.1f%% not reached: %s", 100 * target, result["shortfall"])
        files = len(report["evicted"])
        self.log.info(
            "%s %d bytes from %d %s; usage %.1f%% -> %.1f%%",
            "Would free" if self.plan_only else "Freed",
            report["freed_bytes"],
            files,
            "file" if files == 1 else "files",
            100 * result["usage_before"],
            100 * result["usage_after"],
        )
        return result


def _check_arguments(threshold: object, target: object, dry_run: object) -> None:
    _check_fraction("threshold", threshold)
    _check_fraction("target", target)
    if isinstance(threshold, int | float) and isinstance(target, int | float) and target > threshold:
        raise ValueError(f"target ({target}) must not be above threshold ({threshold})")
    if not isinstance(dry_run, bool):
        raise ValueError(f"dry_run must be True or False, not {dry_run!r}")


def _check_fraction(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a fraction of the cache's capacity in [0, 1], not {value!r}")
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be a fraction of the cache's capacity in [0, 1], not {value!r}")


def _usage(used: int, capacity: int) -> float:
    return used / capacity if capacity > 0 else 0.0
