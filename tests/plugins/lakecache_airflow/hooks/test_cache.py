"""``CacheHook`` against a real cache worker and S3 emulator: the connection, each admin call, and every failure."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowException

from infra.cache_process import CacheProcess
from lakecache_airflow.hooks.cache import (
    CacheApiError,
    CacheEndpoint,
    CacheHook,
    CacheUnavailableError,
    path_list,
    summarize_job,
)
from tests.plugins.airflow_home import connection_json, connection_uri
from tests.plugins.cache_data import (
    DAY_BYTES,
    DAY_PATH,
    OLD_DAY_PATH,
    PAGE,
    VANISHING_PATH,
    admin,
    cached_bytes,
    remove_behind_the_cache,
)
from tests.support.faulty_proxy import FaultyProxy

# --- the connection ------------------------------------------------------------------------------------------------


def test_connection_from_json_env_var(events_cache: CacheProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LAKECACHE_DEFAULT", connection_json(events_cache, timeout=7))
    endpoint = CacheHook().endpoint
    assert endpoint.url == events_cache.webhdfs_url
    assert endpoint.token == events_cache.token
    assert endpoint.timeout == 7
    assert CacheHook().status()["capacity_bytes"] > 0


def test_connection_from_uri_env_var(events_cache: CacheProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_CACHE", connection_uri(events_cache))
    hook = CacheHook("warehouse_cache")
    assert hook.endpoint.url == events_cache.webhdfs_url
    assert hook.endpoint.token == events_cache.token
    ok, message = hook.test_connection()
    assert ok, message
    assert message.startswith(f"Lakecache cache at {events_cache.webhdfs_url} answers")


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        ({"host": "cache.internal"}, "http://cache.internal:9870"),
        (
            {"host": "cache.internal", "port": 9443, "extra": json.dumps({"use_https": True})},
            "https://cache.internal:9443",
        ),
        ({"host": "cache.internal", "extra": json.dumps({"use_https": "true"})}, "https://cache.internal:9870"),
        ({"host": "cache.internal", "schema": "https"}, "https://cache.internal:9870"),
        ({"host": "https://cache.internal:8443"}, "https://cache.internal:8443"),
        ({"host": "http://cache.internal", "port": 9999}, "http://cache.internal:9999"),
        ({"host": "::1", "port": 9870}, "http://[::1]:9870"),
    ],
)
def test_endpoint_url_from_host_port_and_scheme(fields: dict, url: str) -> None:
    conn = Connection(conn_id="c", conn_type="lakecache", password=" tok ", **fields)
    endpoint = CacheEndpoint.from_connection(conn)
    assert endpoint.url == url
    assert endpoint.token == "tok"
    assert "tok" not in repr(endpoint)  # a secret must not reach a log line through a repr


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "connection 'c' has no host"),
        ({"host": "ftp://cache.internal"}, "is not http(s)://HOST[:PORT]"),
        ({"host": "cache.internal", "extra": json.dumps({"scheme": "gopher"})}, "scheme must be http or https"),
        ({"host": "cache.internal", "extra": json.dumps({"timeout": "soon"})}, "timeout must be a positive number"),
        ({"host": "cache.internal", "extra": json.dumps({"timeout": 0})}, "timeout must be a positive number"),
    ],
)
def test_invalid_connections_are_refused_with_what_to_fix(fields: dict, message: str) -> None:
    with pytest.raises(AirflowException, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        CacheEndpoint.from_connection(Connection(conn_id="c", conn_type="lakecache", **fields))


def test_a_missing_connection_is_an_airflow_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NO_SUCH_CACHE", raising=False)
    with pytest.raises(AirflowException, match="no_such_cache"):
        CacheHook("no_such_cache").status()


# --- the admin API -------------------------------------------------------------------------------------------------


def test_status_reports_capacity_use_and_watermarks(lakecache_default: CacheProcess) -> None:
    status = CacheHook().status()
    assert status["used_bytes"] == 0
    assert 0 < status["low_watermark"] < status["high_watermark"] <= 1
    assert {t["medium"] for t in status["tiers"]} == {"memory", "disk"}


def test_load_job_runs_to_success_and_caches_the_data(lakecache_default: CacheProcess) -> None:
    hook = CacheHook()
    job = hook.load([DAY_PATH], parallelism=2, bandwidth="50MiB", tier="disk")
    assert job["kind"] == "load" and job["state"] in ("queued", "running", "succeeded")
    done = hook.wait_for_job(job["id"], poll_interval=0.05, timeout=60)
    assert done["state"] == "succeeded", done
    assert hook.job(job["id"])["progress"]["bytes_done"] == DAY_BYTES
    assert cached_bytes(lakecache_default, DAY_PATH) == DAY_BYTES
    assert summarize_job(done).startswith(f"load job {job['id']} succeeded: 2 files, {DAY_BYTES} bytes")


def test_a_running_job_can_be_cancelled(lakecache_default: CacheProcess) -> None:
    hook = CacheHook()
    # 4 KiB/s over ~650 KiB: still running when the cancel arrives.
    job = hook.load(["/warehouse/events"], parallelism=1, bandwidth=4096)
    assert hook.cancel(job["id"])["state"] == "cancelled"
    assert hook.job(job["id"])["state"] == "cancelled"


def test_a_failed_job_lists_the_files_it_could_not_load(
    lakecache_default: CacheProcess, s3_client, bucket: str
) -> None:
    remove_behind_the_cache(lakecache_default, s3_client, bucket)
    hook = CacheHook()
    done = hook.wait_for_job(hook.load([VANISHING_PATH])["id"], poll_interval=0.05, timeout=60)
    assert done["state"] == "failed"
    assert [e["path"] for e in done["errors"]] == [VANISHING_PATH]
    summary = summarize_job(done)
    assert summary.startswith(f"load job {done['id']} failed: 1 of 1 files failed: {VANISHING_PATH}: ")


def test_purge_dry_run_plans_and_purge_evicts(lakecache_default: CacheProcess) -> None:
    hook = CacheHook()
    hook.wait_for_job(hook.load([DAY_PATH])["id"], poll_interval=0.05)
    plan = hook.purge(0.0, dry_run=True)
    assert plan["dry_run"] is True and plan["freed_bytes"] == DAY_BYTES
    assert {e["path"] for e in plan["evicted"]} == {f"{DAY_PATH}/part-0.parquet", f"{DAY_PATH}/part-1.parquet"}
    assert cached_bytes(lakecache_default, DAY_PATH) == DAY_BYTES
    done = hook.purge(0.0, paths=[DAY_PATH])
    assert done["reached_target"] is True and done["used_bytes_after"] == 0
    assert cached_bytes(lakecache_default, DAY_PATH) == 0


def test_free_drops_the_pages_of_the_paths_given(lakecache_default: CacheProcess) -> None:
    hook = CacheHook()
    hook.wait_for_job(hook.load([DAY_PATH, OLD_DAY_PATH])["id"], poll_interval=0.05)
    report = hook.free(OLD_DAY_PATH)  # one path as a plain string, as a templated field may render it
    assert report["freed_bytes"] == 4 * PAGE and report["refused"] == []
    assert cached_bytes(lakecache_default, OLD_DAY_PATH) == 0
    assert cached_bytes(lakecache_default, DAY_PATH) == DAY_BYTES


def test_ttl_sweep_frees_what_has_expired(lakecache_default: CacheProcess) -> None:
    hook = CacheHook()
    hook.wait_for_job(hook.load([OLD_DAY_PATH])["id"], poll_interval=0.05)
    admin(lakecache_default).ok("POST", "ttl", {"path": OLD_DAY_PATH, "ttl": 0})
    assert hook.sweep_ttl()["freed_bytes"] == 4 * PAGE
    assert cached_bytes(lakecache_default, OLD_DAY_PATH) == 0


def test_readiness_pins_and_the_purge_record_newest_first(lakecache_default: CacheProcess) -> None:
    hook = CacheHook()
    assert hook.ready() is True
    assert hook.purges() == [] and hook.pins() == []
    hook.wait_for_job(hook.load([DAY_PATH])["id"], poll_interval=0.05)
    admin(lakecache_default).ok("POST", "pin", {"path": DAY_PATH})
    assert hook.pins() == [DAY_PATH]
    hook.purge(0.5, dry_run=True)
    report = hook.purge(0.0)
    assert report["reached_target"] is False
    assert report["shortfall"] == (
        f"Reaching 0% needed 384.2 KiB freed, but 384.2 KiB is pinned under {DAY_PATH} (unpin to let it go)."
    )
    purges = hook.purges()
    assert [(p["dry_run"], p["target"]) for p in purges] == [(False, 0.0), (True, 0.5)]
    assert purges[0]["shortfall"] == report["shortfall"] and purges[0]["trigger"] == "manual"
    assert hook.purges(limit=1) == purges[:1]


def test_async_job_reads_the_same_record(lakecache_default: CacheProcess) -> None:
    hook = CacheHook()
    job = hook.wait_for_job(hook.load([DAY_PATH])["id"], poll_interval=0.05)
    assert asyncio.run(hook.job_async(job["id"])) == job


@pytest.mark.parametrize("paths", [[], "", [" "], ["/a", None], [3]])
def test_paths_that_are_no_paths_are_refused_before_any_request(paths) -> None:
    with pytest.raises(AirflowException, match="paths must be one path or a non-empty list of paths"):
        path_list(paths)


# --- refusals and failures -----------------------------------------------------------------------------------------


def test_api_errors_carry_code_message_and_field(lakecache_default: CacheProcess) -> None:
    with pytest.raises(CacheApiError) as caught:
        CacheHook().load(["/warehouse/no-such-day"])
    error = caught.value
    assert (error.status, error.code, error.field) == (404, "NotFound", "paths[0]")
    assert str(error) == (
        f"Lakecache cache at {lakecache_default.webhdfs_url} refused POST load: "
        "NotFound: paths[0]: no such path: /warehouse/no-such-day"
    )
    with pytest.raises(CacheApiError, match=r"InvalidArgument: tier must be one of disk, memory \(field tier\)"):
        CacheHook().load([DAY_PATH], tier="ssd")


def test_a_wrong_token_is_named_as_the_connection_password(
    events_cache: CacheProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WRONG_TOKEN", f"lakecache://:not-it@{events_cache.host}:{events_cache.webhdfs_port}"
    )
    hook = CacheHook("wrong_token")
    assert hook.status()["used_bytes"] == 0  # reads need no token
    with pytest.raises(CacheApiError, match="refused the admin token in the password of connection 'wrong_token'"):
        hook.free([DAY_PATH])
    ok, message = hook.test_connection()
    assert not ok and "refused the admin token" in message


def test_a_down_cache_is_reported_as_connection_refused(down_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LAKECACHE_DEFAULT", f"lakecache://:t@127.0.0.1:{down_port}")
    expected = f"cannot reach the Lakecache cache at http://127.0.0.1:{down_port}: connection refused"
    hook = CacheHook()
    with pytest.raises(CacheUnavailableError) as caught:
        hook.load([DAY_PATH])
    assert str(caught.value) == expected
    with pytest.raises(CacheUnavailableError) as caught:
        asyncio.run(hook.job_async("0123456789ab"))
    assert str(caught.value) == expected
    with pytest.raises(CacheUnavailableError) as caught:
        hook.ready()
    assert str(caught.value) == expected
    assert hook.test_connection() == (False, expected)


def test_an_unknown_host_is_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LAKECACHE_DEFAULT", "lakecache://:t@no-such-cache.invalid:9870")
    with pytest.raises(CacheUnavailableError, match=r"at http://no-such-cache.invalid:9870: unknown host$"):
        CacheHook().status()


def test_a_silent_cache_times_out_after_the_connection_timeout(
    events_cache: CacheProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultyProxy(events_cache.webhdfs_url, faults=2, stall=1.0) as proxy:
        monkeypatch.setenv(
            "AIRFLOW_CONN_LAKECACHE_DEFAULT",
            json.dumps({"conn_type": "lakecache", "host": proxy.url, "extra": {"timeout": 0.3}}),
        )
        hook = CacheHook()
        with pytest.raises(CacheUnavailableError, match=r"no answer within 0.3s$"):
            hook.status()
        with pytest.raises(CacheUnavailableError, match=r"no answer within 0.3s$"):
            asyncio.run(hook.job_async("0123456789ab"))
        time.sleep(1.0)  # let the proxy finish its stalled answers before it stops
        assert hook.status()["used_bytes"] == 0  # the faults are spent: the same hook reaches the cache again


def test_something_else_than_a_cache_is_named_as_such(events_cache: CacheProcess, monkeypatch) -> None:
    # The S3 port answers HTTP, but not the admin API.
    monkeypatch.setenv(
        "AIRFLOW_CONN_LAKECACHE_DEFAULT", json.dumps({"conn_type": "lakecache", "host": events_cache.s3_url})
    )
    with pytest.raises(CacheApiError, match=r"is .* a Lakecache cache\?\)$"):
        CacheHook().status()
    with pytest.raises(CacheApiError, match=r"^GET /readyz at .* answered HTTP \d+ \(is .* a Lakecache cache\?\)$"):
        CacheHook().ready()


def test_a_server_that_does_not_speak_http_is_named_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests buries the parser's complaint deep in its own errors; the words are found, the same as cachectl's.
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def greet() -> None:
            for _ in range(2):
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)  # closing with the request unread would reset the connection instead
                    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

        threading.Thread(target=greet, daemon=True).start()
        port = listener.getsockname()[1]
        monkeypatch.setenv("AIRFLOW_CONN_LAKECACHE_DEFAULT", f"lakecache://:t@127.0.0.1:{port}")
        hook = CacheHook()
        with pytest.raises(CacheUnavailableError) as caught:
            hook.status()
        assert (
            str(caught.value)
            == f"cannot reach the Lakecache cache at http://127.0.0.1:{port}: not an HTTP answer (BadStatusLine)"
        )
        # aiohttp says it its own way, and it is still the cache being unreachable.
        with pytest.raises(
            CacheUnavailableError, match=f"^cannot reach the Lakecache cache at http://127.0.0.1:{port}: "
        ):
            asyncio.run(hook.job_async("0123456789ab"))
