"""The admin API (/admin/v1) against a real cache worker and S3 emulator: auth, input errors, and each operation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from infra.cache_process import CacheProcess
from tests.cache_service.api.admin.test_openapi import DOC
from tests.support.metrics import scrape
from tests.support.webhdfs import Reply, WebHdfsClient

PAGE = 64 * 1024
EVENTS = "/warehouse/events/dt=2026-11-23"


class Admin:
    """JSON calls to one worker's admin API, with or without its token."""

    def __init__(self, cache: CacheProcess) -> None:
        self.http = WebHdfsClient(cache.webhdfs_url)
        self.token = cache.token

    def call(
        self, method: str, route: str, body: Any = None, *, token: str | None = "", raw: bytes | None = None
    ) -> Reply:
        """``token=""`` sends the worker's token, ``None`` sends none, anything else is sent as the token."""
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token or self.token}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        return self.http.request(method, f"/admin/v1/{route}", body=data, headers=headers)

    def get(self, route: str) -> Any:
        reply = self.call("GET", route, token=None)
        assert reply.status == 200, reply.body
        return reply.json()

    def post(self, route: str, body: Any = None, status: int = 200) -> Any:
        reply = self.call("POST", route, body)
        assert reply.status == status, reply.body
        return reply.json()

    def stat(self, path: str) -> dict[str, Any]:
        return self.get(f"stat?path={quote(path)}")

    def wait(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(f"jobs/{job_id}")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            assert time.monotonic() < deadline, job
            time.sleep(0.1)


def _put_events(s3_client, bucket: str) -> None:
    for day, size in (("2026-11-23", 3 * PAGE + 100), ("2026-11-22", 2 * PAGE)):
        for part in range(2):
            key = f"warehouse/events/dt={day}/part-{part}.parquet"
            s3_client.put_object(Bucket=bucket, Key=key, Body=bytes([part]) * size)


def assert_error(reply: Reply, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """A JSON error of the documented shape, naming ``field``, with no stack trace in it."""
    assert reply.status == status, reply.body
    assert reply.headers["content-type"].startswith("application/json")
    assert b"Traceback" not in reply.body
    error = reply.json()["error"]
    assert set(error) == {"code", "message", "field"}
    assert error["code"] == code, error
    assert error["field"] == field, error
    assert error["message"]
    return error


# --- refusals and bad input: one worker for the module; nothing here may change it ---------------------------------


@pytest.fixture(scope="module")
def shared(s3_emulator, tmp_path_factory) -> Iterator[CacheProcess]:
    from tests.support.buckets import remove_bucket, unique_bucket_name
    from tests.support.caches import CacheFactory

    name = unique_bucket_name()
    client = s3_emulator.client()
    client.create_bucket(Bucket=name)
    _put_events(client, name)
    factory = CacheFactory(tmp_path_factory.mktemp("admin"), s3_emulator.endpoint_url)
    yield factory({"/warehouse": f"s3://{name}/warehouse"}, {"store": {"page_size": "64KiB"}})
    factory.stop_all()
    remove_bucket(client, name)


@pytest.fixture
def admin(shared: CacheProcess) -> Iterator[Admin]:
    admin = Admin(shared)
    yield admin
    # Refused requests changed nothing, and the server is still up.
    assert admin.get("pins") == {"pins": []}
    assert admin.get("ttl") == {"ttls": {}}
    assert admin.get("jobs") == {"jobs": []}
    assert admin.get("purges") == {"purges": []}  # a refused purge is not in the record
    assert admin.stat(f"{EVENTS}/part-0.parquet")["cached_bytes"] == 0


# Every mutating route without a token or with a wrong one: test_auth.py, from the API's own table of routes.


def test_a_token_in_another_scheme_is_unauthorized(admin: Admin) -> None:
    headers = {"Authorization": f"Basic {admin.token}"}
    reply = admin.http.request("POST", "/admin/v1/pin", body=json.dumps({"path": EVENTS}).encode(), headers=headers)
    assert_error(reply, 401, "Unauthorized")


@pytest.mark.parametrize(
    "route",
    ["status", "mounts", f"stat?path={EVENTS}", "ls?path=/warehouse/events", "pins", "ttl", "jobs", "purges"],
)
def test_reads_need_no_token(admin: Admin, route: str) -> None:
    assert admin.call("GET", route, token=None).status == 200


BAD_BODIES = [
    ("load", {"paths": "/warehouse/events"}, "paths", "paths must be a non-empty list"),
    ("load", {"paths": []}, "paths", "paths must be a non-empty list"),
    ("load", {}, "paths", "paths is required"),
    ("load", {"paths": [EVENTS, 3]}, "paths[1]", "paths[1] must be a non-empty string"),
    ("load", {"paths": ["warehouse/events"]}, "paths[0]", "must be absolute"),
    ("load", {"paths": ["/warehouse/../etc"]}, "paths[0]", "'..'"),
    ("load", {"paths": [EVENTS], "parallelism": 0}, "parallelism", "parallelism must be an integer"),
    ("load", {"paths": [EVENTS], "parallelism": "4"}, "parallelism", "parallelism must be an integer"),
    ("load", {"paths": [EVENTS], "parallelism": True}, "parallelism", "parallelism must be an integer"),
    ("load", {"paths": [EVENTS], "bandwidth": "fast"}, "bandwidth", "bandwidth must be"),
    ("load", {"paths": [EVENTS], "bandwidth": -5}, "bandwidth", "bandwidth must be"),
    ("load", {"paths": [EVENTS], "bandwidth": 0}, "bandwidth", "bandwidth must be"),
    ("load", {"paths": [EVENTS], "tier": "ssd"}, "tier", "tier must be one of disk, memory"),
    ("load", {"paths": [EVENTS], "parallel": 4}, "parallel", "unknown field 'parallel'"),
    ("free", {"paths": [EVENTS], "force": True}, "force", "unknown field 'force'"),
    ("purge", {"target": 1.5}, "target", "target must be a number in [0, 1]"),
    ("purge", {"target": -0.1}, "target", "target must be a number in [0, 1]"),
    ("purge", {"target": "0.5"}, "target", "target must be a number in [0, 1]"),
    ("purge", {"target": True}, "target", "target must be a number in [0, 1]"),
    ("purge", {}, "target", "target is required"),
    ("purge", {"target": 0.5, "dry_run": "yes"}, "dry_run", "dry_run must be true or false"),
    ("purge", {"target": 0.5, "paths": [1]}, "paths[0]", "paths[0] must be a non-empty string"),
    ("pin", {}, "path", "path is required"),
    ("pin", {"path": 5}, "path", "path must be a non-empty string"),
    ("unpin", {"path": "relative/path"}, "path", "must be absolute"),
    ("ttl", {"path": EVENTS, "ttl": -5}, "ttl", "ttl must not be negative"),
    ("ttl", {"path": EVENTS, "ttl": "-1h"}, "ttl", "ttl must not be negative"),
    ("ttl", {"path": EVENTS, "ttl": "soon"}, "ttl", "ttl must be a duration"),
    ("ttl", {"path": EVENTS, "ttl": True}, "ttl", "ttl must be a duration"),
    ("ttl", {"path": EVENTS}, "ttl", "ttl is required"),
    ("ttl/sweep", {"now": 1}, "now", "unknown field 'now'"),
]


@pytest.mark.parametrize(
    ("route", "body", "field", "message"), BAD_BODIES, ids=[f"{r}-{f}" for r, _, f, _ in BAD_BODIES]
)
def test_bad_values_are_refused_naming_the_field(admin: Admin, route: str, body: Any, field: str, message: str) -> None:
    error = assert_error(admin.call("POST", route, body), 400, "InvalidArgument", field)
    assert message in error["message"]


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"target": 0.5', b"[1, 2]", b'"text"', b'{"target": NaN}', b"\xff\xfe", b'{"target": Infinity}'],
)
def test_malformed_json_is_refused(admin: Admin, raw: bytes) -> None:
    assert_error(admin.call("POST", "purge", raw=raw), 400, "MalformedJSON")


def test_bad_query_parameters_are_refused_naming_them(admin: Admin) -> None:
    assert_error(admin.call("GET", "stat", token=None), 400, "InvalidArgument", "path")
    assert_error(admin.call("GET", f"stat?path={EVENTS}&recursive=1", token=None), 400, "InvalidArgument", "recursive")
    assert_error(admin.call("GET", f"ls?path={EVENTS}&path=/x", token=None), 400, "InvalidArgument", "path")
    assert_error(admin.call("GET", "status?verbose=1", token=None), 400, "InvalidArgument", "verbose")


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "+3", "%203", "1001", "99999999999999999999"])
def test_a_bad_purge_record_limit_is_refused_naming_it(admin: Admin, limit: str) -> None:
    error = assert_error(admin.call("GET", f"purges?limit={limit}", token=None), 400, "InvalidArgument", "limit")
    assert "limit must be a whole number in [1, 1000]" in error["message"]
    assert_error(admin.call("GET", "purges?limit=1&limit=2", token=None), 400, "InvalidArgument", "limit")
    assert admin.get("purges?limit=5") == {"purges": []}


def test_missing_paths_are_not_found_naming_the_field(admin: Admin) -> None:
    assert_error(admin.call("GET", "stat?path=/warehouse/nope", token=None), 404, "NotFound", "path")
    assert_error(admin.call("GET", "ls?path=/nowhere", token=None), 404, "NotFound", "path")
    assert_error(admin.call("POST", "pin", {"path": "/warehouse/nope"}), 404, "NotFound", "path")
    assert_error(admin.call("POST", "load", {"paths": [EVENTS, "/warehouse/nope"]}), 404, "NotFound", "paths[1]")
    assert_error(admin.call("POST", "load", {"paths": ["/warehouse/events/dt=1999-*"]}), 404, "NotFound", "paths[0]")
    assert_error(admin.call("POST", "free", {"paths": ["/warehouse/nope"]}), 404, "NotFound", "paths[0]")
    assert_error(admin.call("POST", "ttl", {"path": "/warehouse/nope", "ttl": 60}), 404, "NotFound", "path")


def test_unknown_jobs_are_not_found(admin: Admin) -> None:
    assert_error(admin.call("GET", "jobs/nope", token=None), 404, "NotFound", "id")
    assert_error(admin.call("POST", "jobs/nope/cancel"), 404, "NotFound", "id")
    assert_error(admin.call("DELETE", "jobs/nope"), 404, "NotFound", "id")


def test_wrong_methods_and_unknown_endpoints_answer_json(admin: Admin) -> None:
    reply = admin.call("GET", "load", token=None)
    assert_error(reply, 405, "MethodNotAllowed")
    assert reply.headers["allow"] == "POST"
    assert_error(admin.call("POST", "status", {}), 405, "MethodNotAllowed")
    assert_error(admin.call("PUT", "pin", {"path": EVENTS}), 405, "MethodNotAllowed")
    assert_error(admin.call("GET", "nope", token=None), 404, "NotFound")
    assert_error(admin.call("GET", "", token=None), 404, "NotFound")


def test_admin_requests_are_counted_in_the_metrics(admin: Admin, shared: CacheProcess) -> None:
    key = 'lakecache_requests_total{api="admin",op="status",status="200"}'
    before = scrape(shared.webhdfs_url).get(key, 0.0)
    admin.get("status")
    admin.get("status")
    assert scrape(shared.webhdfs_url)[key] == before + 2
    admin.call("POST", "pin", {"path": EVENTS}, token=None)
    assert scrape(shared.webhdfs_url)['lakecache_requests_total{api="admin",op="pin",status="401"}'] >= 1


# --- operations: a fresh worker per test ----------------------------------------------------------------------------


@pytest.fixture
def fresh(cache_factory, bucket: str, s3_client) -> Admin:
    _put_events(s3_client, bucket)
    cache = cache_factory({"/warehouse": f"s3://{bucket}/warehouse"}, {"store": {"page_size": "64KiB"}})
    return Admin(cache)


def test_status_reports_capacity_use_watermarks_and_tiers(fresh: Admin) -> None:
    status = fresh.get("status")
    for key in ("capacity_bytes", "used_bytes", "pinned_bytes", "staged_bytes", "hit_ratio"):
        assert isinstance(status[key], int | float), key
    assert 0 < status["low_watermark"] < status["high_watermark"] <= 1
    assert {t["medium"] for t in status["tiers"]} == {"memory", "disk"}
    for tier in status["tiers"]:
        assert {"medium", "capacity_bytes", "used_bytes"} <= set(tier)
    assert fresh.get("mounts")["mounts"][0]["path"] == "/warehouse"


def test_mounts_say_who_may_use_each_and_whether_it_is_read_only(cache_factory, bucket: str) -> None:
    mounts = [
        {"path": "/warehouse", "uri": f"s3://{bucket}/warehouse", "users": {"etl": "write", "analyst": "read"}},
        {"path": "/open", "uri": f"s3://{bucket}/open"},
        {"path": "/ro", "uri": f"s3://{bucket}/ro", "read_only": True, "users": {}},
    ]
    admin = Admin(cache_factory({}, {"mounts": mounts}))
    described = yaml.safe_load(DOC.read_text())["components"]["schemas"]["Mount"]
    answered = admin.get("mounts")["mounts"]
    assert all(set(described["required"]) <= set(m) for m in answered)
    assert {m["path"]: (m["users"], m["read_only"]) for m in answered} == {
        "/warehouse": ({"etl": "write", "analyst": "read"}, False),
        "/open": (None, False),
        "/ro": ({}, True),
    }
    assert admin.get("status")["mounts"] == answered


def test_stat_and_ls_report_cached_pinned_and_persisted(fresh: Admin) -> None:
    stat = fresh.stat(f"{EVENTS}/part-0.parquet")
    assert stat["path"] == f"{EVENTS}/part-0.parquet"
    assert stat["length"] == 3 * PAGE + 100
    assert stat["cached_bytes"] == 0
    assert stat["pinned"] is False
    assert stat["persisted"] is True
    listing = fresh.get(f"ls?path={quote(EVENTS)}")
    assert sorted(e["path"] for e in listing["entries"]) == [f"{EVENTS}/part-0.parquet", f"{EVENTS}/part-1.parquet"]


def test_load_job_completes_and_the_data_is_cached(fresh: Admin) -> None:
    reply = fresh.call("POST", "load", {"paths": [EVENTS], "parallelism": 2, "bandwidth": "50MiB", "tier": "disk"})
    assert reply.status == 202, reply.body
    job = reply.json()
    assert reply.headers["location"] == f"/admin/v1/jobs/{job['id']}"
    assert job["kind"] == "load" and job["state"] in ("queued", "running", "succeeded")
    done = fresh.wait(job["id"])
    assert done["state"] == "succeeded", done
    total = 2 * (3 * PAGE + 100)
    assert done["progress"]["bytes_total"] == done["progress"]["bytes_done"] == total
    assert done["progress"]["files_done"] == 2
    assert fresh.stat(EVENTS)["cached_bytes"] == total
    assert [j["id"] for j in fresh.get("jobs")["jobs"]] == [job["id"]]


def test_load_of_a_glob_caches_only_what_it_matches(fresh: Admin) -> None:
    job = fresh.post("load", {"paths": ["/warehouse/events/dt=2026-11-2*/part-1.parquet"]}, status=202)
    assert fresh.wait(job["id"])["state"] == "succeeded"
    assert fresh.stat(f"{EVENTS}/part-1.parquet")["cached_bytes"] == 3 * PAGE + 100
    assert fresh.stat(f"{EVENTS}/part-0.parquet")["cached_bytes"] == 0


def test_a_running_job_can_be_cancelled(fresh: Admin) -> None:
    # 4 KiB/s over ~400 KiB: the job is still running when the cancel arrives.
    job = fresh.post("load", {"paths": ["/warehouse/events"], "bandwidth": 4096, "parallelism": 1}, status=202)
    reply = fresh.call("DELETE", f"jobs/{job['id']}")
    assert reply.status == 200, reply.body
    assert reply.json()["state"] == "cancelled"
    assert fresh.post(f"jobs/{job['id']}/cancel")["state"] == "cancelled"


def test_free_drops_cached_pages(fresh: Admin) -> None:
    fresh.wait(fresh.post("load", {"paths": [EVENTS]}, status=202)["id"])
    report = fresh.post("free", {"paths": [f"{EVENTS}/part-0.parquet"]})
    assert report["freed_bytes"] == 3 * PAGE + 100
    assert report["refused"] == []
    assert fresh.stat(f"{EVENTS}/part-0.parquet")["cached_bytes"] == 0
    assert fresh.stat(f"{EVENTS}/part-1.parquet")["cached_bytes"] == 3 * PAGE + 100


def test_purge_dry_run_changes_nothing_then_purge_evicts(fresh: Admin) -> None:
    fresh.wait(fresh.post("load", {"paths": [EVENTS]}, status=202)["id"])
    cached = fresh.stat(EVENTS)["cached_bytes"]
    plan = fresh.post("purge", {"target": 0.0, "dry_run": True})
    assert plan["dry_run"] is True
    assert plan["freed_bytes"] > 0
    assert {e["path"] for e in plan["evicted"]} == {f"{EVENTS}/part-0.parquet", f"{EVENTS}/part-1.parquet"}
    assert fresh.stat(EVENTS)["cached_bytes"] == cached
    done = fresh.post("purge", {"target": 0.0, "dry_run": False, "paths": None})
    assert done["reached_target"] is True
    assert fresh.stat(EVENTS)["cached_bytes"] == 0


def test_pin_protects_from_purge_and_unpin_releases(fresh: Admin) -> None:
    fresh.wait(fresh.post("load", {"paths": [EVENTS]}, status=202)["id"])
    assert fresh.post("pin", {"path": EVENTS})["pinned"] is True
    assert fresh.get("pins") == {"pins": [EVENTS]}
    fresh.post("purge", {"target": 0.0})
    assert fresh.stat(EVENTS)["cached_bytes"] == 2 * (3 * PAGE + 100)
    assert fresh.post("unpin", {"path": EVENTS})["pinned"] is False
    assert fresh.get("pins") == {"pins": []}


def test_ttl_is_set_listed_and_cleared(fresh: Admin) -> None:
    assert fresh.post("ttl", {"path": EVENTS, "ttl": "1h"})["ttl_seconds"] == 3600
    assert fresh.post("ttl", {"path": "/warehouse/events/dt=2026-11-22", "ttl": 90})["ttl_seconds"] == 90
    assert fresh.get("ttl") == {"ttls": {EVENTS: 3600, "/warehouse/events/dt=2026-11-22": 90}}
    assert fresh.stat(f"{EVENTS}/part-0.parquet")["ttl_seconds"] == 3600
    assert fresh.post("ttl", {"path": EVENTS, "ttl": None})["ttl_seconds"] is None
    assert fresh.get("ttl") == {"ttls": {"/warehouse/events/dt=2026-11-22": 90}}
    assert set(fresh.post("ttl/sweep")) >= {"freed_bytes", "freed_pages"}
