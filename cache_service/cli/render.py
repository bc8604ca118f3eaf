"""Human output of ``cachectl``: the admin API's JSON answers as ``rich`` tables and a job progress bar."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from cache_service.units import format_size

JSON = Mapping[str, Any]


def console() -> Console:
    """The console for stdout. Everything printed is data (paths, messages): no markup or emoji codes in it."""
    return Console(markup=False, emoji=False)


def duration(seconds: float | None) -> str:
    """Seconds for humans ("45s", "12m 5s", "3h 20m", "2d 4h"); "-" when unknown."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.0f}s" if seconds >= 1 or seconds == 0 else f"{seconds * 1000:.0f}ms"
    for unit, size, smaller, smaller_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if whole >= size:
            rest = (whole % size) // smaller_size
            return f"{whole // size}{unit} {rest}{smaller}" if rest else f"{whole // size}{unit}"
    raise AssertionError("unreachable")


def _when(timestamp: float | None) -> str:
    return "-" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _size(n: float | None) -> str:
    return "-" if n is None else format_size(n)


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def cluster(console: Console, report: JSON) -> None:
    """``cachectl cluster``: whether the view is current, then one row per worker."""
    if report.get("degraded"):
        console.print(f"DEGRADED: {report['degraded']}")
    if not report.get("rings_agree", True):
        console.print("WARNING: the active workers do not all route by the same ring")
    table = Table(title=f"cluster (ring {report['ring']}, * = {report['worker']})", title_justify="left")
    table.add_column("worker", no_wrap=True)
    table.add_column("state")
    table.add_column("WebHDFS", no_wrap=True)
    for name in ("share", "pages", "used", "hits", "heartbeat"):
        table.add_column(name, justify="right", no_wrap=True)
    for m in report["members"]:
        ratio = m.get("hit_ratio")
        table.add_row(
            m["id"] + (" *" if m["id"] == report["worker"] else ""),
            m["state"],
            m["webhdfs_url"].removeprefix("http://"),
            f"{100 * m['ring_share']:.0f}%",
            str(m["pages"]),
            f"{_size(m['used_bytes'])} of {_size(m['capacity_bytes'])}",
            "-" if ratio is None else f"{100 * ratio:.0f}%",
            "-" if m.get("heartbeat_age_seconds") is None else f"{duration(m['heartbeat_age_seconds'])} ago",
        )
    # Wider than the 80 columns rich assumes when stdout is not a terminal: a row per worker stays one line.
    wide = Console(markup=False, emoji=False, file=console.file, width=max(console.width, 110))
    wide.print(table)


def status(console: Console, report: JSON) -> None:
    """``cachectl status``: totals, then one row per tier."""
    summary = Table(title="Lakecache", show_header=False, title_justify="left")
    summary.add_column("what", style="bold")
    summary.add_column("value")
    capacity, used = report["capacity_bytes"], report["used_bytes"]
    summary.add_row("used", f"{_size(used)} of {_size(capacity)} ({_percent(used, capacity)})")
    summary.add_row(
        "watermarks", f"high {report['high_watermark']:.0%}, purge down to low {report['low_watermark']:.0%}"
    )
    summary.add_row("pinned", _size(report["pinned_bytes"]))
    summary.add_row("staged (not yet in S3)", _size(report["staged_bytes"]))
    summary.add_row("hit ratio", f"{report['hit_ratio']:.1%}")
    if "eviction" in report:
        summary.add_row("eviction", f"{report['eviction']}, pages of {_size(report.get('page_size'))}")
    if "jobs_running" in report:
        summary.add_row("jobs running", str(report["jobs_running"]))
    cluster = report.get("cluster")
    if cluster is not None:
        whole, held = cluster["capacity_bytes"], cluster["used_bytes"]
        ratio = "-" if cluster["hit_ratio"] is None else f"{cluster['hit_ratio']:.1%}"
        summary.add_row(
            "cluster",
            f"{cluster['workers']} active workers, {_size(held)} of {_size(whole)} ({_percent(held, whole)}), "
            f"{cluster['pages']} pages, hit ratio {ratio}" + (" (DEGRADED)" if cluster["degraded"] else ""),
        )
    console.print(summary)
    tiers = Table(title="Tiers", title_justify="left")
    for name in ("tier", "capacity", "used", "use", "pages"):
        tiers.add_column(name, justify="left" if name == "tier" else "right")
    for tier in report["tiers"]:
        tiers.add_row(
            tier["medium"],
            _size(tier["capacity_bytes"]),
            _size(tier["used_bytes"]),
            _percent(tier["used_bytes"], tier["capacity_bytes"]),
            str(tier.get("pages", "-")),
        )
    console.print(tiers)


def mounts(console: Console, entries: Sequence[JSON]) -> None:
    """``cachectl mounts``: cache path, S3 URI, who may use it over WebHDFS and per-tier quotas."""
    table = Table(title="Mounts", title_justify="left")
    table.add_column("path", overflow="fold")
    table.add_column("S3 URI", overflow="fold")
    table.add_column("users", no_wrap=True)  # the S3 URI folds first
    table.add_column("quota")
    for mount in entries:
        quota = ", ".join(f"{medium} {_size(n)}" for medium, n in (mount.get("quota") or {}).items())
        table.add_row(mount["path"], mount["uri"], _users(mount), quota or "-")
    console.print(table)


def _users(mount: JSON) -> str:
    """Who may use a mount: its table (``etl write, analyst read``), or ``everyone``; ``read-only`` when it is."""
    table = mount.get("users")
    who = "everyone" if table is None else ", ".join(f"{user} {access}" for user, access in table.items()) or "no one"
    return f"{who} (read-only)" if mount.get("read_only") else who


def paths(console: Console, base: str, entries: Sequence[JSON]) -> None:
    """``cachectl ls``: one row per entry of ``base`` with its cached share, pin, persistence and TTL."""
    table = Table(title=base, title_justify="left")
    prefix = base.rstrip("/") + "/"
    names = []
    for entry in entries:
        path = entry["path"]
        name = path[len(prefix) :] if path.startswith(prefix) else path.rsplit("/", 1)[-1] or path
        names.append(f"{name}/" if entry.get("is_dir") else name)
    # Names are what the reader copies into the next command: keep them whole, squeeze the numbers instead.
    table.add_column("name", overflow="fold", min_width=min(60, max(map(len, names), default=4)))
    for name in ("type", "length", "cached", "cached %", "pinned", "in S3", "ttl"):
        table.add_column(
            name, no_wrap=True, justify="right" if name in ("length", "cached", "cached %", "ttl") else "left"
        )
    for name, entry in zip(names, entries, strict=True):
        table.add_row(
            name,
            "dir" if entry.get("is_dir") else "file",
            _size(entry["length"]),
            _size(entry["cached_bytes"]),
            _percent(entry["cached_bytes"], entry["length"]),
            _yes(entry["pinned"]),
            _yes(entry["persisted"]),
            duration(entry.get("ttl_seconds")),
        )
    if not entries:
        table.caption = "(empty)"
    console.print(table)


def path_report(console: Console, report: JSON) -> None:
    """``cachectl stat`` (and the answer of pin, unpin and ttl): one path in detail."""
    table = Table(show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("path", report["path"])
    if report.get("uri"):
        table.add_row("S3 URI", report["uri"])
    table.add_row("type", "directory" if report.get("is_dir") else "file")
    table.add_row("length", _size(report["length"]))
    cached = report["cached_bytes"]
    table.add_row("cached", f"{_size(cached)} ({_percent(cached, report['length'])})")
    table.add_row("pinned", _yes(report["pinned"]))
    table.add_row("in S3", _yes(report["persisted"]))
    table.add_row("ttl", duration(report.get("ttl_seconds")))
    console.print(table)


def _refusals(console: Console, refused: Sequence[JSON]) -> None:
    if not refused:
        return
    table = Table(title="Kept (refused)", title_justify="left")
    table.add_column("path", overflow="fold")
    table.add_column("why", overflow="fold")
    for refusal in refused:
        table.add_row(refusal["path"], refusal["reason"])
    console.print(table)


def free_report(console: Console, report: JSON) -> None:
    """``cachectl free`` and ``cachectl ttl --sweep``: what was dropped and what was kept."""
    console.print(f"freed {_size(report['freed_bytes'])} ({report['freed_pages']} pages)")
    _refusals(console, report.get("refused") or [])


def purge_report(console: Console, report: JSON, limit: int = 20) -> None:
    """``cachectl purge``: before and after, the biggest evictions, and what was kept."""
    verb = "would free" if report["dry_run"] else "freed"
    before, after = report["used_bytes_before"], report["used_bytes_after"]
    head = "DRY RUN: nothing was evicted. " if report["dry_run"] else ""
    console.print(
        f"{head}{verb} {_size(report['freed_bytes'])}: used {_size(before)} -> {_size(after)} "
        f"(target {report['target']:.0%}, {'reached' if report['reached_target'] else 'NOT reached'})"
    )
    if report.get("shortfall"):
        console.print(report["shortfall"], markup=False, highlight=False)
    evicted = sorted(report.get("evicted") or [], key=lambda e: -int(e["bytes"]))
    if evicted:
        table = Table(title="Would evict" if report["dry_run"] else "Evicted", title_justify="left")
        table.add_column("path", overflow="fold")
        table.add_column("bytes", justify="right")
        for entry in evicted[:limit]:
            table.add_row(entry["path"], _size(entry["bytes"]))
        if len(evicted) > limit:
            table.caption = f"... and {len(evicted) - limit} more files (--json lists them all)"
        console.print(table)
    _refusals(console, report.get("refused") or [])


def pins(console: Console, pinned: Sequence[str]) -> None:
    """``cachectl pin`` with no path: the pinned paths."""
    table = Table(title="Pinned", title_justify="left")
    table.add_column("path", overflow="fold")
    for path in pinned:
        table.add_row(path)
    console.print(table)


def ttls(console: Console, by_path: Mapping[str, float]) -> None:
    """``cachectl ttl``: every path with a TTL."""
    table = Table(title="TTLs", title_justify="left")
    table.add_column("path", overflow="fold")
    table.add_column("ttl", justify="right")
    for path, seconds in sorted(by_path.items()):
        table.add_row(path, duration(seconds))
    if not by_path:
        table.caption = "(none)"
    console.print(table)


def _progress_cell(job: JSON) -> str:
    progress = job.get("progress") or {}
    done, total = progress.get("bytes_done", 0), progress.get("bytes_total", 0)
    return f"{_size(done)} / {_size(total)}" if total else _size(done)


def job_table(console: Console, entries: Sequence[JSON]) -> None:
    """``cachectl jobs``: one row per job (``cachectl jobs ID`` has the rest)."""
    table = Table(title="Jobs", title_justify="left")
    for name in ("id", "kind", "state", "created", "done", "eta"):
        table.add_column(name, no_wrap=True, justify="right" if name in ("done", "eta") else "left")
    table.add_column("message", overflow="fold")
    for job in entries:
        progress = job.get("progress") or {}
        created = job.get("created_at")
        total = progress.get("bytes_total", 0)
        table.add_row(
            job["id"],
            job["kind"],
            job["state"],
            "-" if created is None else time.strftime("%H:%M:%S", time.localtime(created)),
            f"{_percent(progress.get('bytes_done', 0), total)} of {_size(total)}" if total else "-",
            duration(progress.get("eta_seconds")) if job["state"] in ("queued", "running") else "-",
            "" if job.get("message") == job["state"] else job.get("message") or "",
        )
    if not entries:
        table.caption = "(none)"
    console.print(table)


def job_detail(console: Console, job: JSON) -> None:
    """``cachectl jobs ID``: one job in detail, its errors last."""
    progress = job.get("progress") or {}
    table = Table(show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("id", job["id"])
    table.add_row("kind", job["kind"])
    table.add_row("state", job["state"])
    for key in ("created_at", "started_at", "finished_at"):
        table.add_row(key.replace("_at", ""), _when(job.get(key)))
    table.add_row("request", ", ".join(f"{k}={v}" for k, v in (job.get("request") or {}).items()))
    table.add_row("files", f"{progress.get('files_done', 0)} of {progress.get('files_total', 0)}")
    table.add_row("bytes", _progress_cell(job))
    table.add_row("from S3", _size(progress.get("bytes_from_s3")))
    table.add_row("already cached", _size(progress.get("bytes_skipped")))
    rate = progress.get("rate_bytes_per_s")
    table.add_row("rate", f"{_size(rate)}/s" if rate else "-")
    table.add_row("eta", duration(progress.get("eta_seconds")))
    if job.get("message"):
        table.add_row("message", job["message"])
    console.print(table)
    errors = job.get("errors") or []
    if errors:
        failed = Table(title="Errors", title_justify="left")
        failed.add_column("path", overflow="fold")
        failed.add_column("error", overflow="fold")
        for error in errors:
            failed.add_row(error.get("path", "-"), error.get("error", ""))
        console.print(failed)


class JobProgress:
    """A live progress bar for a job (``cachectl load --wait``), fed with the job's JSON as it is polled.

    Rate and ETA are the service's own numbers: it sees every byte, we only see snapshots.
    """

    def __init__(self, console: Console, job: JSON) -> None:
        # markup=False: paths and messages are data; "[abc]" in one must print as itself, not as a style tag.
        self._progress = Progress(
            TextColumn("{task.description}", markup=False, style="bold"),
            BarColumn(),
            TextColumn("{task.fields[bytes]}", markup=False),
            TextColumn("{task.fields[rate]}", markup=False),
            TextColumn("ETA {task.fields[eta]}", markup=False),
            TextColumn("{task.fields[files]} files", markup=False),
            console=console,
        )
        self._task: TaskID = self._progress.add_task(
            f"{job['kind']} {job['id']}", total=None, bytes="", rate="", eta="-", files="0/0"
        )
        self.update(job)

    def update(self, job: JSON) -> None:
        """Show the state of ``job``."""
        progress = job.get("progress") or {}
        total = progress.get("bytes_total") or None
        rate = progress.get("rate_bytes_per_s")
        self._progress.update(
            self._task,
            total=total,
            completed=progress.get("bytes_done", 0),
            description=f"{job['kind']} {job['id']} ({job['state']})",
            bytes=_progress_cell(job),
            rate=f"{_size(rate)}/s" if rate else "-",
            eta=duration(progress.get("eta_seconds")) if job["state"] in ("queued", "running") else "-",
            files=f"{progress.get('files_done', 0)}/{progress.get('files_total', 0)}",
        )

    def __enter__(self) -> JobProgress:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._progress.stop()
