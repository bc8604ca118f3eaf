"""``LakecachePlugin``: what the Airflow UI shows of Lakecache — a cache status page in the navigation.

The ``lakecache`` connection form itself comes from the provider info (``provider.py``), which Airflow reads through
the ``apache_airflow_provider`` entry point; Airflow 3 plugins no longer register hooks. This plugin adds a FastAPI
app to the API server, mounted at ``/lakecache``:

- ``GET /lakecache/`` — an HTML page with the cache's capacity, use, watermarks and tiers, shown inside the UI
  (navigation entry "Lakecache cache");
- ``GET /lakecache/status`` — the same as JSON, straight from the cache's ``GET /admin/v1/status``.

Both take ``?conn_id=`` (default ``lakecache_default``) and require an Airflow login, like the rest of the API.

Airflow finds the plugin in the plugins folder (``plugins/``, where ``plugin.py`` defines it) or, with
``[core] lazy_discover_providers = False``, through the provider info's ``plugins`` entry.
"""

from __future__ import annotations

import html
from functools import cache
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException
from airflow.sdk.plugins_manager import AirflowPlugin

from lakecache_airflow.hooks.cache import CacheHook

if TYPE_CHECKING:
    from fastapi import FastAPI

URL_PREFIX = "/lakecache"


class LakecachePlugin(AirflowPlugin):
    """Adds the Lakecache status page to the API server and a link to it in the UI's navigation."""

    name = "lakecache"
    external_views = [
        {
            "name": "Lakecache cache",
            # Relative: the UI resolves it against its base URL, so it works behind a proxy's path prefix too.
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "lakecache",
            "destination": "nav",
        }
    ]

    # A property, not a class attribute: every task run loads the plugins (for their macros), and building the
    # app would import FastAPI and the API server's security code there for nothing. Only the API server asks.
    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The status app, built on first use."""
        return [{"app": status_app(), "url_prefix": URL_PREFIX, "name": "Lakecache cache status"}]


@cache
def status_app() -> FastAPI:
    """The FastAPI app behind ``/lakecache``: the status page and its JSON."""
    from airflow.api_fastapi.core_api.security import requires_authenticated
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI(title="Lakecache cache status", dependencies=[Depends(requires_authenticated())])

    # Plain ``def`` endpoints: the hook's requests are blocking, so FastAPI runs them in its thread pool.
    # The annotations are module-level names only: FastAPI resolves them against this module's globals.
    @app.get("/status", response_model=None)
    def status(conn_id: str = CacheHook.default_conn_name) -> Any:
        try:
            return CacheHook(conn_id).status()
        except AirflowException as exc:
            return JSONResponse({"error": {"message": str(exc), "conn_id": conn_id}}, status_code=502)

    @app.get("/", response_class=HTMLResponse, response_model=None)
    def page(conn_id: str = CacheHook.default_conn_name) -> Any:
        try:
            hook = CacheHook(conn_id)
            body = render_status(hook.endpoint.url, hook.status())
        except AirflowException as exc:
            body = f'<p class="error">{html.escape(str(exc))}</p>'
        return HTMLResponse(_PAGE.format(conn_id=html.escape(conn_id), body=body))

    return app


def render_status(url: str, status: dict[str, Any]) -> str:
    """The status of the cache at ``url`` as an HTML fragment: totals, watermarks, then one row per tier."""
    capacity, used = int(status.get("capacity_bytes", 0)), int(status.get("used_bytes", 0))
    usage = used / capacity if capacity else 0.0
    high, low = float(status.get("high_watermark", 1.0)), float(status.get("low_watermark", 0.0))
    rows = [
        ("Cache", html.escape(url)),
        ("Used", f"{_size(used)} of {_size(capacity)} ({usage:.1%})"),
        ("Pinned", _size(int(status.get("pinned_bytes", 0)))),
        ("Staged (not yet in S3)", _size(int(status.get("staged_bytes", 0)))),
        ("Hit ratio", f"{float(status.get('hit_ratio', 0.0)):.1%}"),
        ("Watermarks", f"purges from {high:.0%} down to {low:.0%}"),
        ("Jobs running", html.escape(str(status.get("jobs_running", 0)))),
    ]
    totals = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    tiers = "".join(
        f"<tr><td>{html.escape(str(t.get('medium')))}</td><td>{_size(int(t.get('used_bytes', 0)))}</td>"
        f"<td>{_size(int(t.get('capacity_bytes', 0)))}</td><td>{html.escape(str(t.get('pages', '')))}</td></tr>"
        for t in status.get("tiers", [])
    )
    return (
        f'<meter min="0" max="1" low="{low}" high="{high}" value="{usage:.4f}"></meter><table>{totals}</table>'
        f"<h2>Tiers</h2><table><tr><th>Medium</th><th>Used</th><th>Capacity</th><th>Pages</th></tr>{tiers}</table>"
    )


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Lakecache cache</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; }}
table {{ border-collapse: collapse; margin-bottom: 1rem; }}
th, td {{ text-align: left; padding: 0.25rem 1rem 0.25rem 0; }}
meter {{ width: 24rem; height: 1.25rem; }}
.error {{ color: #b00020; }}
</style></head>
<body><h1>Lakecache cache <small>({conn_id})</small></h1>{body}</body></html>
"""
