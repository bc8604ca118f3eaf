"""``cachectl`` (``python -m cache_service``) as a user runs it, against a real cache worker and S3 emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.cache_process import CacheProcess
from infra.ports import free_port
from tests.support.cachectl import Run, cachectl

PAGE = 64 * 1024
DAY = "/warehouse/events/dt=2026-11-23"
SIZE = 3 * PAGE + 100


@pytest.fixture(scope="module")
def cache(s3_emulator, tmp_path_factory) -> Iterator[CacheProcess]:
    from tests.support.buckets import remove_bucket, unique_bucket_name
    from tests.support.caches import CacheFactory

    name = unique_bucket_name()
    client = s3_emulator.client()
    client.create_bucket(Bucket=name)
    for day in ("2026-11-23", "2026-11-22", "2026-11-21"):
        for part in range(2):
            client.put_object(Bucket=name, Key=f"warehouse/events/dt={day}/part-{part}.parquet", Body=b"e" * SIZE)
    factory = CacheFactory(tmp_path_factory.mktemp("cachectl"), s3_emulator.endpoint_url)
    cache = factory({"/warehouse": f"s3://{name}/warehouse"}, {"store": {"page_size": "64KiB"}})
    cache.bucket = name  # type: ignore[attr-defined]
    yield cache
    factory.stop_all()
    remove_bucket(client, name)


@pytest.fixture
def run(cache: CacheProcess):
    def run(*args: str, token: str | None = None) -> Run:
        return cachectl(*args, endpoint=cache.webhdfs_url, token=cache.token if token is None else token)

    return run


def test_status_json_has_the_documented_keys(run) -> None:
    status = run("status", "--json").json()
    for key in ("capacity_bytes", "used_bytes", "pinned_bytes", "staged_bytes", "hit_ratio"):
        assert key in status
    assert {"medium", "capacity_bytes", "used_bytes"} <= set(status["tiers"][0])
    assert run("--json", "status").json().keys() == status.keys()


def test_stat_json_has_the_documented_keys(run) -> None:
    stat = run("stat", f"{DAY}/part-0.parquet", "--json").json()
    assert {"path", "length", "cached_bytes", "pinned", "persisted"} <= set(stat)
    assert stat["length"] == SIZE


def test_mounts_shows_who_may_use_each_mount(cache_factory, bucket: str) -> None:
    mounts = [
        {"path": "/warehouse", "uri": f"s3://{bucket}/warehouse", "users": {"etl": "write", "analyst": "read"}},
        {"path": "/open", "uri": f"s3://{bucket}/open"},
        {"path": "/ro", "uri": f"s3://{bucket}/ro", "read_only": True},
    ]
    cache = cache_factory({}, {"mounts": mounts})
    shown = cachectl("mounts", endpoint=cache.webhdfs_url, token=cache.token)
    assert shown.code == 0, shown.stderr
    rows = {
        line.split()[1]: line
        for line in shown.stdout.splitlines()
        if line.split()[1:2] in (["/warehouse"], ["/open"], ["/ro"])
    }
    assert "etl write, analyst read" in rows["/warehouse"]
    assert "everyone" in rows["/open"] and "read-only" not in rows["/open"]
    assert "everyone (read-only)" in rows["/ro"]


def test_human_status_is_a_table(run) -> None:
    result = run("status")
    assert result.code == 0, result.stderr
    assert "Tiers" in result.stdout and "memory" in result.stdout and "disk" in result.stdout
    assert "│" in result.stdout or "┃" in result.stdout
    assert not result.stdout.lstrip().startswith("{")


def test_load_wait_exits_zero_and_the_data_is_cached(run) -> None:
    result = run("load", DAY, "--parallelism", "2", "--bandwidth", "50MiB", "--wait")
    assert result.code == 0, result.stderr
    assert "succeeded" in result.stdout
    assert run("stat", DAY, "--json").json()["cached_bytes"] == 2 * SIZE
    listing = run("ls", DAY)
    assert listing.code == 0 and "part-0.parquet" in listing.stdout and "100.0%" in listing.stdout


def test_load_wait_json_prints_the_finished_job(run) -> None:
    job = run("--json", "load", "/warehouse/events/dt=2026-11-22/part-0.parquet", "--wait").json()
    assert job["state"] == "succeeded"
    assert job["progress"]["bytes_done"] == SIZE


def test_load_wait_exits_non_zero_when_the_job_fails(run, cache: CacheProcess, s3_emulator) -> None:
    day = "/warehouse/events/dt=2026-11-21"
    assert run("stat", day).code == 0  # the cache knows both files before they vanish
    client = s3_emulator.client()
    for part in range(2):
        client.delete_object(Bucket=cache.bucket, Key=f"warehouse/events/dt=2026-11-21/part-{part}.parquet")
    result = run("load", day, "--wait")
    assert result.code == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert "job" in result.stderr and "failed" in result.stderr
    assert f"{day}/part-0.parquet" in result.stderr


def test_a_job_can_be_listed_and_cancelled(run) -> None:
    job = run("--json", "load", "/warehouse/events", "--bandwidth", "4KiB").json()
    assert job["id"] in run("jobs").stdout
    assert run("jobs", job["id"], "--json").json()["id"] == job["id"]
    assert run("jobs", job["id"], "--cancel", "--json").json()["state"] == "cancelled"


def test_pin_ttl_free_and_purge_round_trip(run) -> None:
    path = "/warehouse/events/dt=2026-11-22"
    assert run("pin", path, "--json").json()["pinned"] is True
    assert path in run("pin").stdout
    assert run("ttl", path, "7d", "--json").json()["ttl_seconds"] == 7 * 86400
    assert run("--json", "ttl").json()["ttls"] == {path: 7 * 86400}
    assert run("ttl", path, "none", "--json").json()["ttl_seconds"] is None
    assert run("unpin", path, "--json").json()["pinned"] is False
    plan = run("purge", "--target", "0", "--dry-run", "--path", path, "--json").json()
    assert plan["dry_run"] is True
    assert "DRY RUN" in run("purge", "--target", "0", "--dry-run").stdout
    assert run("free", path, "--json").json()["refused"] == []
    assert run("stat", path, "--json").json()["cached_bytes"] == 0


def test_unreachable_cache_is_one_line(cache: CacheProcess) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    line = cachectl("status", endpoint=endpoint, token="x").assert_one_line_error()
    assert line == f"cachectl: cannot reach the cache at {endpoint}: connection refused"


def test_wrong_or_missing_token_is_one_line(run) -> None:
    assert "refused the admin token" in run("pin", DAY, token="wrong").assert_one_line_error()
    assert "needs the admin token" in run("pin", DAY, token="").assert_one_line_error()
    assert run("status", token="").code == 0  # reads need no token


def test_missing_path_is_one_line(run) -> None:
    assert run("stat", "/warehouse/nope").assert_one_line_error() == "cachectl: no such path: /warehouse/nope"
    assert run("load", DAY, "/warehouse/nope").assert_one_line_error() == "cachectl: no such path: /warehouse/nope"
    assert run("jobs", "nope").assert_one_line_error() == "cachectl: no such job: nope"


@pytest.mark.parametrize(
    "args",
    [
        ("purge", "--target", "2"),
        ("purge", "--target", "x"),
        ("load", DAY, "--bandwidth", "fast"),
        ("load", DAY, "--tier", "tape"),
        ("ttl", DAY, "soon"),
        ("ttl", DAY),
        ("jobs", "--cancel"),
        ("no-such-command",),
    ],
)
def test_bad_arguments_are_one_line_with_exit_code_2(run, args: tuple[str, ...]) -> None:
    result = run(*args)
    result.assert_one_line_error()
    assert result.code == 2


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("cache.internal:9870", "expected http://HOST:PORT (--endpoint or CACHE_ENDPOINT)"),
        ("http://cache.internal:port", "the port is not a number"),
    ],
)
def test_an_invalid_endpoint_is_one_line_with_exit_code_2(endpoint: str, problem: str) -> None:
    result = cachectl("status", endpoint=endpoint, token="")
    assert result.assert_one_line_error() == f"cachectl: invalid endpoint {endpoint!r}: {problem}"
    assert result.code == 2


def test_something_else_than_a_cache_is_one_line(cache: CacheProcess) -> None:
    # The S3 port answers HTTP, but not the admin API.
    line = cachectl("status", endpoint=cache.s3_url, token="").assert_one_line_error()
    assert line.startswith(f"cachectl: the server at {cache.s3_url} answered HTTP 4")
    assert line.endswith(", not an admin API error (not a cache?)")
