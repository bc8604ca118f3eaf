"""The Lakecache status page: one HTML page for on-call, rendered from what the cache answered.

Top to bottom it answers: is the cache all right (the verdict), is it ready and when was this read; how full it is
against its watermarks; on a cluster, every worker and the cluster's totals; what each mount holds; what is pinned;
what the last purges did and, when they fell short, why; and where to purge (the ``cache_purge`` DAG). Plain HTML
and CSS, reloaded every ``REFRESH_SECONDS``; the only script lets the links to the UI leave the iframe the UI shows
the page in (see ``_TOP_LINKS``). Element ids are stable for browser tests: ``#verdict``, ``#read-at``,
``#readiness``, ``#usage-bar``, ``#cluster``, ``#cluster-workers``, ``#cluster-totals``, ``#cluster-degraded``,
``#cluster-rings``, ``#mounts``, ``#pins``, ``#purges``, ``#purge-link``, ``#purge-runs-link``.

A worker alone answers ``GET /admin/v1/cluster`` too, as a cluster of one (``"clustered": false``): the page then
shows nothing of a cluster. The rest of the page (usage, mounts, pins, purges) is what the connected worker's own
admin API answers.

Nothing here does I/O: ``plugin.py`` reads the cache into a ``Reading`` and this module renders it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

REFRESH_SECONDS = 15
#: A purge this recent makes the verdict "Purging": the cache has just been acting on its use.
PURGING_WINDOW = timedelta(minutes=1)
PURGE_DAG_ID = "cache_purge"
#: Airflow 3.3's UI has no route that opens a DAG's trigger form (3.3.2's router knows ``dags/:dagId`` and its
#: ``runs`` tab, nothing under ``trigger``): the link opens the DAG, whose Trigger button opens the form. Relative to
#: the page (``<base>/lakecache/``), so it holds behind a proxy's path prefix too.
PURGE_DAG_HREF = f"../dags/{PURGE_DAG_ID}"
PURGE_RUNS_HREF = f"../dags/{PURGE_DAG_ID}/runs"
PURGES_SHOWN = 10


@dataclass(frozen=True)
class Reading:
    """What one cache answered at ``read_at``. With ``error`` set it could not be read, and the rest is empty."""

    conn_id: str
    url: str
    read_at: datetime
    ready: bool | None = None
    status: Mapping[str, Any] | None = None
    purges: Sequence[Mapping[str, Any]] = ()
    purges_error: str | None = None  # the purge record alone could not be read (a cache older than the record)
    pins: Sequence[str] = ()
    cluster: Mapping[str, Any] | None = None  # GET /admin/v1/cluster; None if the cache could not say
    error: str | None = None

    @property
    def clustered(self) -> bool:
        """True when the cache is one worker of a cluster (not a worker alone, which is a cluster of one)."""
        return bool(self.cluster and self.cluster.get("clustered"))


@dataclass(frozen=True)
class Verdict:
    """The one-line answer at the top of the page: ``key`` (for CSS and tests), ``label`` and a detail sentence."""

    key: str  # healthy | above-high | cluster-degraded | purging | not-ready | unreachable
    label: str
    detail: str


def verdict(reading: Reading) -> Verdict:
    """What the page says first, the most urgent that applies.

    Unreachable, then not ready (both mean the cache is not serving), then above the high watermark (a purge that
    ran and left it there is part of the problem, not a reassurance), then, on a cluster, a degraded view or rings
    that disagree (the cache serves, but not as it should), then purging (a purge in the last minute), else healthy.
    """
    if reading.error is not None or reading.status is None:
        return Verdict("unreachable", "Unreachable", reading.error or "the cache did not answer")
    if reading.ready is False:
        return Verdict(
            "not-ready",
            "Not ready",
            "/readyz answers 503: the worker is starting (indexing its pages) and does not serve reads yet",
        )
    status = reading.status
    usage, high, low = _usage(status), _fraction(status, "high_watermark", 1.0), _fraction(status, "low_watermark", 0)
    latest = next((p for p in reading.purges if not p.get("dry_run")), None)
    if usage > high:
        detail = (
            f"{_percent(usage)} used, above the high watermark {_percent(high)}: "
            f"the cache purges down to {_percent(low)} at its next pressure check"
        )
        if latest is not None and latest.get("shortfall"):
            detail += f"; its last purge fell short: {latest['shortfall']}"
        return Verdict("above-high", "Above the high watermark", detail)
    if reading.clustered and reading.cluster is not None:
        trouble = _cluster_trouble(reading.cluster)
        if trouble:
            return Verdict("cluster-degraded", "Cluster degraded", "; ".join(trouble))
    when = _time(latest.get("time")) if latest is not None else None
    if latest is not None and when is not None and reading.read_at - when <= PURGING_WINDOW:
        ago = max(0, int((reading.read_at - when).total_seconds()))
        trigger = "under pressure" if latest.get("trigger") == "pressure" else "by hand"
        return Verdict(
            "purging",
            "Purging",
            f"purged {trigger} {ago} s ago: freed {_size(latest.get('freed_bytes'))}, now {_percent(usage)} used",
        )
    return Verdict("healthy", "Healthy", f"{_percent(usage)} used, below the high watermark {_percent(high)}")


def render_page(reading: Reading) -> str:
    """The whole page for ``reading``."""
    found = verdict(reading)
    # The way to act comes right under the verdict: on-call should not scroll for it.
    sections = [_header(reading, found), _purge_links()]
    if reading.status is not None and reading.error is None:
        status = reading.status
        sections.append(_usage_section(status))
        if reading.clustered and reading.cluster is not None:
            sections.append(_cluster_section(reading.cluster, status.get("cluster")))
        sections += [
            _mounts_section(status),
            _pins_section(status, reading.pins),
            _purges_section(reading.purges, reading.purges_error),
        ]
    return _PAGE.format(refresh=REFRESH_SECONDS, body="\n".join(sections), script=_TOP_LINKS)


# --- sections ------------------------------------------------------------------------------------------------------


def _header(reading: Reading, found: Verdict) -> str:
    read_at = reading.read_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    readiness = {True: "ready", False: "not ready (/readyz answers 503)", None: "unknown"}[reading.ready]
    return (
        f"<h1>Lakecache cache <small>{_e(reading.conn_id)} · {_e(reading.url)}</small></h1>\n"
        f'<p id="verdict" class="verdict verdict-{found.key}" data-verdict="{found.key}">'
        f'<strong>{_e(found.label)}</strong> <span class="detail">{_e(found.detail)}</span></p>\n'
        f'<p class="meta">Readiness: <span id="readiness">{_e(readiness)}</span> · read at '
        f'<time id="read-at" datetime="{read_at}">{read_at}</time> · refreshes every {REFRESH_SECONDS} s</p>'
    )


def _usage_section(status: Mapping[str, Any]) -> str:
    capacity, used = _int(status, "capacity_bytes"), _int(status, "used_bytes")
    usage, high, low = _usage(status), _fraction(status, "high_watermark", 1.0), _fraction(status, "low_watermark", 0)
    level = "high" if usage > high else "mid" if usage > low else "ok"
    bar = (
        f'<div id="usage-bar" class="bar" role="meter" aria-label="cache usage" aria-valuemin="0" '
        f'aria-valuemax="100" aria-valuenow="{100 * usage:.1f}">'
        f'<div class="fill fill-{level}" style="width: {100 * min(usage, 1.0):.2f}%"></div>'
        f'<div class="mark mark-low" style="left: {100 * low:.2f}%" title="low watermark {_percent(low)}">'
        f"<span>low {_percent(low)}</span></div>"
        f'<div class="mark mark-high" style="left: {100 * high:.2f}%" title="high watermark {_percent(high)}">'
        f"<span>high {_percent(high)}</span></div></div>"
    )
    reads = status.get("reads")
    hit_ratio = "no reads yet" if reads == 0 else _percent(_fraction(status, "hit_ratio", 0.0))
    if isinstance(reads, int) and reads:
        hit_ratio += f" of {reads:,} page reads"
    rows = [
        ("Used", f"{_size(used)} of {_size(capacity)} ({_percent(usage)})"),
        ("Watermarks", f"above {_percent(high)} the cache purges down to {_percent(low)}"),
        ("Pinned", _size(status.get("pinned_bytes"))),
        ("Staged (not yet in S3)", _size(status.get("staged_bytes"))),
        ("Hit ratio", hit_ratio),
        ("Jobs running", str(status.get("jobs_running", 0))),
    ]
    tiers = "".join(
        f"<tr><td>{_e(t.get('medium'))}</td><td>{_size(t.get('used_bytes'))}</td>"
        f"<td>{_size(t.get('capacity_bytes'))}</td><td>{_e(t.get('pages', ''))}</td></tr>"
        for t in status.get("tiers", [])
    )
    return (
        f'<section><h2>Usage</h2>{bar}\n<table id="totals">{_rows(rows)}</table>\n'
        f'<table id="tiers"><tr><th>Tier</th><th>Used</th><th>Capacity</th><th>Pages</th></tr>{tiers}</table>'
        "</section>"
    )


_RINGS_DISAGREE = (
    "the active workers route by different rings: a read may go to a worker that does not own its block until "
    "they agree"
)


def _degraded_text(reason: object) -> str:
    # The worker says why (a string such as "Redis at redis://… does not answer: …"); older answers say true.
    why = f" ({reason})" if isinstance(reason, str) and reason else ""
    return (
        f"this worker cannot reach Redis{why}: it routes by the last ring it knew, and what it says of the others "
        "is from their last heartbeats"
    )


def _cluster_trouble(cluster: Mapping[str, Any]) -> list[str]:
    trouble = [_degraded_text(cluster["degraded"])] if cluster.get("degraded") else []
    if cluster.get("rings_agree") is False:
        trouble.append(_RINGS_DISAGREE)
    return trouble


def _cluster_section(cluster: Mapping[str, Any], totals: Mapping[str, Any] | None) -> str:
    members = [m for m in cluster.get("members", []) if isinstance(m, Mapping)]
    me = cluster.get("worker")
    flags = []
    if cluster.get("degraded"):
        flags.append(f'<p id="cluster-degraded" class="error">Degraded: {_e(_degraded_text(cluster["degraded"]))}</p>')
    if cluster.get("rings_agree") is False:
        flags.append(f'<p id="cluster-rings" class="error">Rings disagree: {_e(_RINGS_DISAGREE)}</p>')
    head = (
        "<tr><th>Worker</th><th>WebHDFS</th><th>State</th><th>Ring share</th><th>Pages</th>"
        "<th>Disk used / capacity</th><th>Hit ratio</th><th>Last heartbeat</th></tr>"
    )
    rows = "".join(_member_row(m, is_me=m.get("id") == me) for m in members)
    active = sum(1 for m in members if m.get("state") == "active")
    ring = str(cluster.get("ring") or "")
    return (
        f'<section id="cluster" data-degraded="{str(bool(cluster.get("degraded"))).lower()}" '
        f'data-rings-agree="{str(cluster.get("rings_agree") is not False).lower()}">'
        f"<h2>Cluster <small>{active} active of {len(members)} workers · this page reads {_e(me)} · "
        f"ring {_e(ring[:12])}</small></h2>"
        f"{''.join(flags)}"
        f'<table id="cluster-workers">{head}{rows}</table>'
        f"{_cluster_totals(totals) if isinstance(totals, Mapping) else ''}</section>"
    )


def _member_row(member: Mapping[str, Any], *, is_me: bool) -> str:
    state = str(member.get("state", ""))
    used, capacity = member.get("used_bytes"), member.get("capacity_bytes")
    ratio = member.get("hit_ratio")
    age = member.get("heartbeat_age_seconds")
    here = ' <small class="me">(this page)</small>' if is_me else ""
    return (
        f'<tr class="state-{_e(state)}" data-worker="{_e(member.get("id"))}">'
        f"<td>{_e(member.get('id'))}{here}</td><td>{_e(member.get('webhdfs_url', ''))}</td><td>{_e(state)}</td>"
        f"<td>{_percent(_fraction(member, 'ring_share', 0.0))}</td><td>{_count(member.get('pages'))}</td>"
        f"<td>{_size(used)} / {_size(capacity)}</td>"
        f"<td>{'no reads yet' if ratio is None else _percent(_fraction(member, 'hit_ratio', 0.0))}</td>"
        f"<td>{'-' if not isinstance(age, int | float) else f'{age:.1f} s ago'}</td></tr>"
    )


def _cluster_totals(totals: Mapping[str, Any]) -> str:
    capacity, used = _int(totals, "capacity_bytes"), _int(totals, "used_bytes")
    ratio = totals.get("hit_ratio")
    rows = [
        ("Active workers", str(_int(totals, "workers"))),
        ("Pages", _count(totals.get("pages"))),
        ("Disk used", f"{_size(used)} of {_size(capacity)} ({_percent(used / capacity if capacity else 0.0)})"),
        ("Hit ratio", "no reads yet" if ratio is None else _percent(_fraction(totals, "hit_ratio", 0.0))),
    ]
    return f'<h3>The active workers together</h3><table id="cluster-totals">{_rows(rows)}</table>'


def _mounts_section(status: Mapping[str, Any]) -> str:
    rows = []
    for mount in status.get("mounts", []):
        used = mount.get("used") or {}
        cached = mount.get("cached_bytes", used.get("disk"))
        quota = mount.get("quota") or {}
        quotas = ", ".join(f"{_e(m)} {_size(b)}" for m, b in sorted(quota.items())) or "none"
        by_tier = ", ".join(f"{_e(m)} {_size(b)}" for m, b in used.items())
        rows.append(
            f"<tr><td>{_e(mount.get('path'))}</td><td>{_e(mount.get('uri'))}</td><td>{_size(cached)}</td>"
            f"<td>{_size(mount.get('staged_bytes'))}</td><td>{quotas}</td><td>{by_tier}</td></tr>"
        )
    head = "<tr><th>Mount</th><th>S3</th><th>Cached</th><th>Staged</th><th>Quota</th><th>By tier</th></tr>"
    return f'<section><h2>Mounts</h2><table id="mounts">{head}{"".join(rows)}</table></section>'


def _pins_section(status: Mapping[str, Any], pins: Sequence[str]) -> str:
    listed = "".join(f"<li>{_e(p)}</li>" for p in pins) or '<li class="none">nothing is pinned</li>'
    return (
        f"<section><h2>Pins <small>{_size(status.get('pinned_bytes'))} kept from eviction</small></h2>"
        f'<ul id="pins">{listed}</ul></section>'
    )


def _purges_section(purges: Sequence[Mapping[str, Any]], error: str | None) -> str:
    if error is not None:
        body = f'<p class="error">the purge record could not be read: {_e(error)}</p>'
    elif not purges:
        body = '<p class="none">No purge recorded yet.</p>'
    else:
        body = ""
    head = (
        "<tr><th>Time (UTC)</th><th>Trigger</th><th>Dry run</th><th>Target</th><th>Paths</th><th>Freed</th>"
        "<th>Used before → after</th><th>Outcome</th></tr>"
    )
    rows = "".join(_purge_row(p) for p in purges[:PURGES_SHOWN])
    return f'<section><h2>Last purges</h2>{body}<table id="purges">{head}{rows}</table></section>'


def _purge_row(purge: Mapping[str, Any]) -> str:
    reached = bool(purge.get("reached_target"))
    outcome = "reached the target" if reached else f"fell short: {purge.get('shortfall') or 'no reason given'}"
    paths = purge.get("paths")
    dry = bool(purge.get("dry_run"))
    return (
        f'<tr class="{"dry-run" if dry else "purge"} {"reached" if reached else "short"}">'
        f"<td>{_e(purge.get('time'))}</td><td>{_e(purge.get('trigger'))}</td><td>{'yes' if dry else 'no'}</td>"
        f"<td>{_percent(_fraction(purge, 'target', 0.0))}</td>"
        f'<td class="paths">{_e(", ".join(paths)) if paths else "whole cache"}</td>'
        f"<td>{_size(purge.get('freed_bytes'))}{' (would free)' if dry else ''}</td>"
        f"<td>{_size(purge.get('used_bytes_before'))} → {_size(purge.get('used_bytes_after'))}</td>"
        f'<td class="outcome">{_e(outcome)}</td></tr>'
    )


def _purge_links() -> str:
    return (
        '<p class="actions">To purge, '
        f'<a id="purge-link" href="{PURGE_DAG_HREF}" target="_top">open the {PURGE_DAG_ID} DAG</a> and press '
        "<strong>Trigger</strong>: its form takes the target, the paths and a dry run. "
        f'<a id="purge-runs-link" href="{PURGE_RUNS_HREF}" target="_top">Its runs</a> show what each purge did.</p>'
    )


# --- values --------------------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value))


def _rows(rows: Sequence[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{_e(name)}</th><td>{_e(value)}</td></tr>" for name, value in rows)


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _fraction(data: Mapping[str, Any], key: str, default: float) -> float:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _usage(status: Mapping[str, Any]) -> float:
    capacity = _int(status, "capacity_bytes")
    return _int(status, "used_bytes") / capacity if capacity else 0.0


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "-"


def _percent(fraction: float) -> str:
    # 0.9 -> "90%", 0.625 -> "62.5%": whole numbers where they are whole, one decimal otherwise.
    return f"{100 * fraction:.1f}".removesuffix(".0") + "%"


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _size(n: object) -> str:
    if not isinstance(n, int | float) or isinstance(n, bool):
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}">
<title>Lakecache cache</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a1a1a; }}
h1 small, h2 small {{ font-weight: normal; color: #555; font-size: 0.7em; margin-left: 0.5rem; }}
table {{ border-collapse: collapse; margin-bottom: 1rem; }}
th, td {{ text-align: left; padding: 0.25rem 1rem 0.25rem 0; vertical-align: top; }}
#mounts th, #purges th, #tiers th, #cluster-workers th {{ border-bottom: 1px solid #ccc; }}
#cluster-workers td {{ white-space: nowrap; }}
#cluster-workers .state-gone, #cluster-workers .state-draining, #cluster-workers .state-joining {{ color: #555; }}
#purges td:not(.outcome):not(.paths), #mounts td {{ white-space: nowrap; }}
#purges td.outcome {{ min-width: 22rem; }}
.actions {{ padding: 0.5rem 0.9rem; background: #f5f5f5; border-radius: 0.4rem; }}
.verdict {{ font-size: 1.25rem; padding: 0.6rem 0.9rem; border-radius: 0.4rem; border-left: 0.5rem solid; }}
.verdict-healthy {{ background: #e8f5e9; border-color: #2e7d32; }}
.verdict-purging {{ background: #e3f2fd; border-color: #1565c0; }}
.verdict-above-high, .verdict-cluster-degraded {{ background: #fff3e0; border-color: #e65100; }}
.verdict-not-ready, .verdict-unreachable {{ background: #ffebee; border-color: #b00020; }}
.verdict .detail {{ font-size: 1rem; margin-left: 0.5rem; }}
.meta {{ color: #555; }}
.bar {{ position: relative; width: 32rem; max-width: 100%; height: 1.5rem; background: #eee;
        border: 1px solid #999; margin: 1.75rem 0 1.75rem; }}
.fill {{ height: 100%; }}
.fill-ok {{ background: #66bb6a; }} .fill-mid {{ background: #ffa726; }} .fill-high {{ background: #e53935; }}
.mark {{ position: absolute; top: -0.4rem; bottom: -0.4rem; width: 0; border-left: 2px dashed #1a1a1a; }}
.mark span {{ position: absolute; transform: translateX(-50%); font-size: 0.75rem; white-space: nowrap; }}
.mark-high {{ border-color: #b00020; }} .mark-high span {{ bottom: 100%; }}
.mark-low span {{ top: 100%; }}
.short .outcome {{ color: #b00020; }}
.dry-run {{ color: #555; }}
.error {{ color: #b00020; }}
.none {{ color: #555; }}
</style></head>
<body>
{body}
<script>{script}</script>
</body></html>
"""

# Airflow 3.3 shows a navigation entry's page in an iframe sandboxed without ``allow-top-navigation``: the browser
# refuses a ``target="_top"`` link there ("Unsafe attempt to initiate navigation"). The iframe is same-origin
# (``allow-same-origin``), so such a link instead moves the UI's own router, as the UI's links do: push the URL on
# the UI's history and tell its router with a ``popstate``. Opened on its own (no frame), or framed by another
# origin, the plain link does the job. Verified with Chromium against Airflow 3.3.2's UI.
_TOP_LINKS = """
document.querySelectorAll('a[target="_top"]').forEach(function (link) {
  link.addEventListener("click", function (event) {
    if (window.top === window || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    try {
      window.top.history.pushState(null, "", link.href);
      window.top.dispatchEvent(new window.top.PopStateEvent("popstate"));
      event.preventDefault();
    } catch (error) {
      // another origin frames the page: leave the navigation to the link
    }
  });
});
"""
