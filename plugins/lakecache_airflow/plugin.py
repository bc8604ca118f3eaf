"""``LakecachePlugin``: what the Airflow UI shows of Lakecache — a cache status page in the navigation.

The ``lakecache`` connection form itself comes from the provider info (``provider.py``), which Airflow reads through
the ``apache_airflow_provider`` entry point; Airflow 3 plugins no longer register hooks. This plugin adds a FastAPI
app to the API server, mounted at ``/lakecache``:

- ``GET /lakecache/`` — the status page for on-call (``status_page.py``): a verdict, readiness, usage against the
  watermarks, on a cluster every worker and the totals, mounts, pins, the last purges and a link to the
  ``cache_purge`` DAG; shown inside the UI (navigation entry "Cache"). It renders when the cache is down too,
  saying so;
- ``GET /lakecache/status`` — the cache's ``GET /admin/v1/status`` as JSON;
- ``GET /lakecache/purges`` — the cache's purge record (``GET /admin/v1/purges``) as JSON, ``?limit=`` passed on.

All take ``?conn_id=`` (default ``lakecache_default``) and require an Airflow login, like the rest of the API. The
JSON endpoints answer ``502`` with ``{"error": {"message": ..., "conn_id": ...}}`` when the cache cannot be read.

Airflow finds the plugin in the plugins folder (``plugins/``, where ``plugin.py`` defines it) or, with
``[core] lazy_discover_providers = False``, through the provider info's ``plugins`` entry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException
from airflow.sdk.plugins_manager import AirflowPlugin

from lakecache_airflow.hooks.cache import CacheApiError, CacheHook, CacheUnavailableError
from lakecache_airflow.status_page import PURGES_SHOWN, Reading, render_page

if TYPE_CHECKING:
    from fastapi import FastAPI

URL_PREFIX = "/lakecache"


class LakecachePlugin(AirflowPlugin):
    """Adds the Lakecache status page to the API server and a link to it in the UI's navigation."""

    name = "lakecache"
    external_views = [
        {
            # Short: the navigation shows about eight characters of a label ("Lakecache cache" read "Lakecach…").
            "name": "Cache",
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


def read_cache(conn_id: str) -> Reading:
    """Everything the status page shows, read from the cache of connection ``conn_id`` now; never raises.

    Readiness is asked first: a cache that cannot be reached costs one timeout, not one per question.
    """
    read_at = datetime.now(UTC)
    try:
        hook = CacheHook(conn_id)
        url = hook.endpoint.url
    except AirflowException as exc:  # no such connection, or not a valid one
        return Reading(conn_id=conn_id, url="", read_at=read_at, error=str(exc))
    try:
        ready = hook.ready()
        status = hook.status()
        pins = hook.pins()
    except AirflowException as exc:
        return Reading(conn_id=conn_id, url=url, read_at=read_at, error=str(exc))
    try:
        purges, purges_error = hook.purges(PURGES_SHOWN), None
    except CacheUnavailableError as exc:
        return Reading(conn_id=conn_id, url=url, read_at=read_at, error=str(exc))
    except AirflowException as exc:  # e.g. a cache from before the purge record: the rest of the page still helps
        purges, purges_error = [], str(exc)
    try:
        cluster: dict[str, Any] | None = hook.cluster()
    except CacheUnavailableError as exc:
        return Reading(conn_id=conn_id, url=url, read_at=read_at, error=str(exc))
    except AirflowException:  # a cache from before the cluster: it is a worker alone
        cluster = None
    return Reading(
        conn_id=conn_id,
        url=url,
        read_at=read_at,
        ready=ready,
        status=status,
        purges=purges,
        purges_error=purges_error,
        pins=pins,
        cluster=cluster,
    )


@cache
def status_app() -> FastAPI:
    """The FastAPI app behind ``/lakecache``: the status page and its JSON."""
    from airflow.api_fastapi.core_api.security import requires_authenticated
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI(title="Lakecache cache status", dependencies=[Depends(requires_authenticated())])

    def unavailable(exc: AirflowException, conn_id: str) -> JSONResponse:
        # The cache refusing a bad ?limit= is the caller's mistake (400); anything else is a bad gateway.
        bad_request = isinstance(exc, CacheApiError) and exc.status == 400
        body = {"error": {"message": str(exc), "conn_id": conn_id}}
        return JSONResponse(body, status_code=400 if bad_request else 502)

    # Plain ``def`` endpoints: the hook's requests are blocking, so FastAPI runs them in its thread pool.
    # The annotations are module-level names only: FastAPI resolves them against this module's globals.
    @app.get("/status", response_model=None)
    def status(conn_id: str = CacheHook.default_conn_name) -> Any:
        try:
            return CacheHook(conn_id).status()
        except AirflowException as exc:
            return unavailable(exc, conn_id)

    @app.get("/purges", response_model=None)
    def purges(conn_id: str = CacheHook.default_conn_name, limit: int | None = None) -> Any:
        try:
            return {"purges": CacheHook(conn_id).purges(limit)}
        except AirflowException as exc:
            return unavailable(exc, conn_id)

    @app.get("/", response_class=HTMLResponse, response_model=None)
    def page(conn_id: str = CacheHook.default_conn_name) -> Any:
        # Never cached: the page is a reading at one moment, and it reloads itself to take the next.
        return HTMLResponse(render_page(read_cache(conn_id)), headers={"Cache-Control": "no-store"})

    return app
