"""``LakecachePlugin`` in a real Airflow API server whose plugins folder is the repository's ``plugins/``.

One API server for the module (it takes ~20 s to start), with SimpleAuthManager in all-admins mode so a token
needs no password. It must load the plugin from the folder without import errors, show the ``lakecache``
connection form, and serve the cache status page from a real cache, or say plainly that the cache is down.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.cache_process import CacheProcess
from infra.ports import free_port
from infra.service_process import ServiceProcess, http_ok
from lakecache_airflow.plugin import LakecachePlugin, status_app
from tests.plugins.airflow_home import AIRFLOW, PLUGINS_FOLDER, REPO_ROOT, AirflowHome, connection_json
from tests.plugins.cache_data import DAY_BYTES, DAY_PATH, admin, events_cache

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def cache(s3_emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CacheProcess]:
    with events_cache(s3_emulator, tmp_path_factory.mktemp("plugin")) as cache:
        job = admin(cache).ok("POST", "load", {"paths": [DAY_PATH]})
        assert admin(cache).wait_job(job["id"])["state"] == "succeeded"
        yield cache


class ApiServer:
    """The API server's base URL and a bearer token for it."""

    def __init__(self, url: str) -> None:
        self.url = url
        with urllib.request.urlopen(f"{url}/auth/token", timeout=30) as response:  # all-admins: no password
            self.token = json.loads(response.read())["access_token"]

    def get(self, path: str) -> tuple[int, str]:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)


@pytest.fixture(scope="module")
def api_server(airflow_db: AirflowHome, cache: CacheProcess, tmp_path_factory) -> Iterator[ApiServer]:
    port = free_port()
    env = airflow_db.env(
        {
            "AIRFLOW_CONN_LAKECACHE_DEFAULT": connection_json(cache),
            "AIRFLOW_CONN_LAKECACHE_DOWN": f"lakecache://:t@127.0.0.1:{free_port()}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        },
        plugins_folder=PLUGINS_FOLDER,
    )
    server = ServiceProcess(
        "airflow api-server",
        [*AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        log_path=tmp_path_factory.mktemp("api-server") / "api-server.log",
        env=env,
        cwd=REPO_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    server.start(lambda: http_ok(f"{url}/api/v2/monitor/health"), timeout=180)
    try:
        yield ApiServer(url)
    finally:
        server.stop(timeout=30)


def test_the_plugin_loads_from_the_plugins_folder(api_server: ApiServer) -> None:
    plugins = {p["name"]: p for p in api_server.json("/api/v2/plugins")["plugins"]}
    plugin = plugins["lakecache"]
    assert plugin["source"] == "$PLUGINS_FOLDER/lakecache_airflow/plugin.py"
    assert plugin["fastapi_apps"] == [
        {"app": "fastapi.applications.FastAPI", "url_prefix": "/lakecache", "name": "Lakecache cache status"}
    ]
    # A short label: the navigation cuts longer ones ("Lakecache cache" showed as "Lakecach…").
    assert [(v["name"], v["href"], v["destination"]) for v in plugin["external_views"]] == [
        ("Cache", "lakecache/", "nav")
    ]
    errors = api_server.json("/api/v2/plugins/importErrors")["import_errors"]
    assert not [e for e in errors if "lakecache_airflow/" in e["source"] and "/quality/" not in e["source"]]
    assert not [e for e in errors if e["source"] == "lakecache"]


def test_the_ui_shows_the_lakecache_connection_form(api_server: ApiServer) -> None:
    forms = {f["connection_type"]: f for f in api_server.json("/ui/connections/hook_meta")}
    form = forms["lakecache"]
    assert form["hook_name"] == "Lakecache"
    assert form["standard_fields"]["password"]["title"] == "Admin token"
    assert form["standard_fields"]["login"]["hidden"] is True
    assert form["standard_fields"]["port"]["placeholder"] == "9870"
    assert form["extra_fields"]["use_https"]["schema"]["type"] == "boolean"


def test_the_status_endpoint_answers_the_caches_status(api_server: ApiServer, cache: CacheProcess) -> None:
    status = api_server.json("/lakecache/status")
    assert status["used_bytes"] == DAY_BYTES
    assert status == {**admin(cache).ok("GET", "status"), "hit_ratio": status["hit_ratio"]}


def test_the_status_page_shows_a_verdict_usage_mounts_and_the_last_purges(
    api_server: ApiServer, cache: CacheProcess
) -> None:
    plan = admin(cache).ok("POST", "purge", {"target": 0.0, "dry_run": True})  # changes nothing, but is recorded
    before = datetime.now(UTC).replace(microsecond=0)
    status, page = api_server.get("/lakecache/")
    assert status == 200
    assert 'id="verdict" class="verdict verdict-healthy" data-verdict="healthy"><strong>Healthy</strong>' in page
    assert '<span id="readiness">ready</span>' in page
    read_at = re.search(r'<time id="read-at" datetime="([^"]+)">', page)
    assert read_at is not None and before <= datetime.fromisoformat(read_at.group(1)) <= datetime.now(UTC)
    assert '<meta http-equiv="refresh" content="15">' in page and "refreshes every 15 s" in page
    assert cache.webhdfs_url in page
    assert 'id="usage-bar"' in page and 'class="mark mark-high" style="left: 90.00%"' in page
    assert 'class="mark mark-low" style="left: 75.00%"' in page
    mounts = re.search(r'<table id="mounts">.*?</table>', page)
    assert mounts is not None and "<td>/warehouse</td>" in mounts.group() and "<td>384.2 KiB</td>" in mounts.group()
    purges = re.search(r'<table id="purges">.*?</table>', page)
    assert purges is not None
    newest = re.search(r"<tr class=[^>]*>.*?</tr>", purges.group())
    assert newest is not None and '<tr class="dry-run reached">' in newest.group()
    assert f"<td>{DAY_BYTES / 1024:.1f} KiB (would free)</td>" in newest.group() and plan["freed_bytes"] == DAY_BYTES
    assert '<a id="purge-link" href="../dags/cache_purge" target="_top">' in page


def test_the_purges_endpoint_answers_the_caches_purge_record(api_server: ApiServer, cache: CacheProcess) -> None:
    admin(cache).ok("POST", "purge", {"target": 0.5, "dry_run": True})
    purges = api_server.json("/lakecache/purges?limit=1")["purges"]
    assert purges == admin(cache).ok("GET", "purges?limit=1")["purges"]
    assert len(purges) == 1 and purges[0]["dry_run"] is True and purges[0]["target"] == 0.5
    status, body = api_server.get("/lakecache/purges?limit=0")
    assert status == 400 and "limit must be a whole number" in json.loads(body)["error"]["message"]


def test_a_down_cache_is_said_plainly_on_the_page_and_in_the_json(api_server: ApiServer) -> None:
    status, page = api_server.get("/lakecache/?conn_id=lakecache_down")
    assert status == 200
    assert 'data-verdict="unreachable"><strong>Unreachable</strong>' in page
    assert '<span class="detail">cannot reach the Lakecache cache at http://127.0.0.1:' in page
    assert ": connection refused</span>" in page
    assert '<time id="read-at"' in page and 'id="purge-link"' in page
    assert page.rstrip().endswith("</html>")
    status, body = api_server.get("/lakecache/status?conn_id=lakecache_down")
    assert status == 502
    assert json.loads(body)["error"]["message"].endswith(": connection refused")
    status, body = api_server.get("/lakecache/purges?conn_id=lakecache_down")
    assert status == 502


def test_the_status_app_requires_an_airflow_login() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")  # not ours to fix
        from fastapi.testclient import TestClient

    response = TestClient(status_app()).get("/status")
    assert response.status_code == 401


def test_the_plugin_builds_its_app_only_when_asked() -> None:
    # Every task run loads the plugins: the class must not carry a built app (FastAPI, API security) around.
    assert "fastapi_apps" not in vars(LakecachePlugin()) and isinstance(vars(LakecachePlugin)["fastapi_apps"], property)
