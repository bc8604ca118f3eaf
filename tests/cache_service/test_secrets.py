"""No secret the worker holds reaches its log, an answer or ``/metrics``: the admin token (also the cluster's
secret), the ``[s3_api]`` pair's and each user's S3 secret, and the under store's keys. A worker logging every request
(``debug``) is sent allowed and refused requests over WebHDFS, the S3 API, the admin API and the peer API, then every
file it wrote, every answer (bodies and headers) and ``/metrics`` are searched for each secret; so is what the worker
prints when a bad configuration stops it at start."""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cache_service.logs import redacted_url
from infra.cache_process import CacheProcess
from infra.toml_writer import dumps
from tests.cache_service.api.s3.support import Reply, s3_client, send, sign, streaming_put
from tests.support.buckets import throwaway_bucket
from tests.support.caches import lone_cluster_worker
from tests.support.webhdfs import WebHdfsClient

ADMIN_TOKEN = f"admintok{secrets.token_hex(12)}"  # in bad configurations; a live worker's is its cluster's secret
API_SECRET = f"apisecret{secrets.token_hex(12)}"
ETL_SECRET = f"etlsecret{secrets.token_hex(12)}"  # from the environment
ANALYST_SECRET = f"analystsecret{secrets.token_hex(12)}"
UNDER_SECRET = f"undersecret{secrets.token_hex(12)}"  # the under store's (the emulator takes any)
REDIS_PASSWORD = f"redispw{secrets.token_hex(12)}"
SECRETS = {
    "admin token": ADMIN_TOKEN,
    "s3_api secret": API_SECRET,
    "etl secret": ETL_SECRET,
    "analyst secret": ANALYST_SECRET,
    "under store secret": UNDER_SECRET,
    "redis password": REDIS_PASSWORD,
}
# Wrong credentials a caller sent: no more the worker's to print than the right ones.
WRONG = {"wrong admin token": f"wrongtok{secrets.token_hex(12)}", "wrong s3 secret": f"wrongs3{secrets.token_hex(12)}"}
UNDER_ENV = {
    "AWS_ACCESS_KEY_ID": "under-key-id",
    "AWS_SECRET_ACCESS_KEY": UNDER_SECRET,
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _config(bucket: str) -> dict[str, Any]:
    return {
        "server": {"log_level": "debug"},
        "s3_api": {
            "access_key": "lake-admin",
            "secret_key": API_SECRET,
            "users": [
                {
                    "access_key": "etl",
                    "secret_key_env": "LAKECACHE_ETL_SECRET",
                    "grants": [{"bucket": bucket, "prefix": "warehouse/", "access": "write"}],
                },
                {
                    "access_key": "analyst",
                    "secret_key": ANALYST_SECRET,
                    "grants": [{"bucket": bucket, "prefix": "warehouse/", "access": "read"}],
                },
            ],
        },
        "mounts": [
            {"path": "/warehouse", "uri": f"s3://{bucket}/warehouse", "users": {"etl": "write", "analyst": "read"}}
        ],
        "store": {"page_size": "64KiB"},
    }


@pytest.fixture(scope="module")
def lake(s3_emulator) -> Iterator[str]:
    with throwaway_bucket(s3_emulator.client(), "secrets") as bucket:
        yield bucket


@pytest.fixture(scope="module")
def worker(s3_emulator, tmp_path_factory, redis_server, lake: str) -> Iterator[CacheProcess]:
    """One worker in a cluster of its own (so it serves the peer API), logging every request."""
    env = {**UNDER_ENV, "LAKECACHE_ETL_SECRET": ETL_SECRET}
    root = tmp_path_factory.mktemp("secrets")
    with lone_cluster_worker(s3_emulator, root, redis_server, {}, _config(lake), aws_credentials=env) as cache:
        yield cache


class Exchange:
    """Every answer the worker gave, to search afterwards."""

    def __init__(self) -> None:
        self.answers: list[Reply] = []
        self.bearers: dict[str, str] = {}
        """Credentials made during the exchange: a presigned URL's signature lets anyone read until it expires."""

    def keep(self, reply: Any) -> Any:
        self.answers.append(Reply(reply.status, dict(reply.headers), reply.body))
        return reply

    def text(self) -> str:
        return "\n".join(f"{a.status} {a.headers} " + a.body.decode("utf-8", "replace") for a in self.answers)


def _exercise(worker: CacheProcess, lake: str, seen: Exchange) -> None:
    hdfs = WebHdfsClient(worker.webhdfs_url)
    tag = uuid.uuid4().hex[:8]
    path = f"/warehouse/{tag}/a.bin"
    # WebHDFS: a write and reads allowed, a write and a read refused, a traversal.
    assert (
        seen.keep(hdfs.request("PUT", f"/webhdfs/v1{path}?op=CREATE&data=true&user.name=etl", b"x" * 100)).status == 201
    )
    assert seen.keep(hdfs.request("GET", f"/webhdfs/v1{path}?op=OPEN&user.name=analyst")).status == 200
    assert seen.keep(hdfs.request("PUT", f"/webhdfs/v1{path}?op=DELETE&user.name=analyst")).status >= 400
    assert seen.keep(hdfs.request("GET", f"/webhdfs/v1{path}?op=OPEN&user.name=nobody")).status == 403
    assert seen.keep(hdfs.request("GET", "/webhdfs/v1/warehouse/../x?op=OPEN&user.name=etl")).status == 400

    # The admin API: reads, a change with the token, without it, with a wrong one.
    body = f'{{"path": "{path}"}}'.encode()
    bearer = {"Authorization": f"Bearer {worker.token}", "Content-Type": "application/json"}
    wrong = {"Authorization": f"Bearer {WRONG['wrong admin token']}"}
    assert seen.keep(hdfs.request("GET", "/admin/v1/status")).status == 200
    assert seen.keep(hdfs.request("GET", "/admin/v1/cluster")).status == 200
    assert seen.keep(hdfs.request("POST", "/admin/v1/pin", body, bearer)).status == 200
    assert seen.keep(hdfs.request("POST", "/admin/v1/unpin", body, bearer)).status == 200
    assert seen.keep(hdfs.request("POST", "/admin/v1/pin", body)).status == 401
    assert seen.keep(hdfs.request("POST", "/admin/v1/pin", body, wrong)).status == 403
    assert seen.keep(hdfs.request("POST", "/admin/v1/load", b'{"paths": ["/warehouse/../x"]}', bearer)).status == 400

    # The peer API and the relay marks: with the secret, without, forged.
    size = 100
    stat = f"bucket={lake}&key=warehouse/{tag}/a.bin&size={size}&start=0&end={size}"
    etag = seen.keep(hdfs.request("GET", f"/admin/v1/stat?path={path}")).json().get("etag", "e")
    pages = f"/cluster/v1/pages?{stat}&etag={etag}"
    secret = {"Authorization": f"Bearer {worker.token}"}
    assert seen.keep(hdfs.request("GET", pages, headers=secret)).status in (200, 409)
    assert seen.keep(hdfs.request("GET", pages)).status == 401
    assert seen.keep(hdfs.request("GET", pages, headers=wrong)).status == 401
    assert seen.keep(hdfs.request("GET", "/cluster/v1/watch", headers=wrong)).status == 401
    assert seen.keep(hdfs.request("POST", "/cluster/v1/invalidations", b"{}", wrong)).status == 401
    forged = {"X-Lakecache-Forwarded": WRONG["wrong admin token"]}
    assert (
        seen.keep(hdfs.request("PUT", f"/webhdfs/v1/warehouse/{tag}/f?op=MKDIRS&user.name=x", None, forged)).status
        == 403
    )

    # The S3 API: each user allowed and refused, a wrong secret, presigned URLs good and expired, a streaming upload.
    url = f"{worker.s3_url}/{lake}/warehouse/{tag}/s3.bin"
    as_etl: dict[str, Any] = {"access_key": "etl", "secret": ETL_SECRET}
    as_analyst: dict[str, Any] = {"access_key": "analyst", "secret": ANALYST_SECRET}
    assert seen.keep(send("PUT", url, b"s3 body", sign("PUT", url, b"s3 body", **as_etl))).status == 200
    assert seen.keep(send("GET", url, headers=sign("GET", url, **as_analyst))).status == 200
    assert seen.keep(send("PUT", url, b"no", sign("PUT", url, b"no", **as_analyst))).status == 403
    forged_s3: dict[str, Any] = {"access_key": "etl", "secret": WRONG["wrong s3 secret"]}
    assert seen.keep(send("GET", url, headers=sign("GET", url, **forged_s3))).status == 403
    assert (
        seen.keep(
            send(
                "GET",
                f"{worker.s3_url}/",
                headers=sign("GET", f"{worker.s3_url}/", access_key="lake-admin", secret=API_SECRET),
            )
        ).status
        == 200
    )
    assert (
        seen.keep(
            send(
                "GET",
                f"{worker.s3_url}/",
                headers=sign("GET", f"{worker.s3_url}/", access_key="under-key-id", secret=UNDER_SECRET),
            )
        ).status
        == 403
    )
    assert seen.keep(send("GET", url)).status == 403
    assert seen.keep(streaming_put(url, b"streamed" * 2000, **as_etl)).status == 200
    assert seen.keep(streaming_put(url, b"streamed" * 2000, tamper=True, **as_etl)).status >= 400
    presigner = s3_client(worker.s3_url, signature_version="s3v4", **as_etl)
    params = {"Bucket": lake, "Key": f"warehouse/{tag}/s3.bin"}
    presigned = presigner.generate_presigned_url("get_object", Params=params)
    seen.bearers["presigned URL signature"] = parse_qs(urlsplit(presigned).query)["X-Amz-Signature"][0]
    assert seen.keep(send("GET", presigned)).status == 200
    expiring = presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=1)
    time.sleep(1.5)
    assert seen.keep(send("GET", expiring)).status == 403
    mp = f"{url}.mp?uploads"
    assert seen.keep(send("POST", mp, b"", sign("POST", mp, b"", **as_analyst))).status == 403
    delete = b"<Delete><Object><Key>warehouse/" + tag.encode() + b"/s3.bin</Key></Object></Delete>"
    md5 = {"Content-MD5": base64.b64encode(hashlib.md5(delete).digest()).decode()}
    headers = sign("POST", f"{worker.s3_url}/{lake}?delete", delete, md5, **as_analyst)
    assert seen.keep(send("POST", f"{worker.s3_url}/{lake}?delete", delete, headers)).status == 200

    seen.keep(hdfs.request("GET", "/metrics"))


def _files(root: Path) -> dict[Path, bytes]:
    """Everything the worker wrote under its directory but the config file an operator gave it."""
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != "cache.toml"}


def test_no_secret_is_in_the_log_an_answer_or_the_metrics(worker: CacheProcess, lake: str) -> None:
    seen = Exchange()
    _exercise(worker, lake, seen)
    files = _files(worker.state_dir)
    log = worker.log_path.read_text()
    assert '"level": "debug"' in log and "PutObject" in log  # every request was logged
    scanned = {str(p): data.decode("utf-8", "replace") for p, data in files.items()} | {"answers": seen.text()}
    found = [
        (name, where)
        for name, value in {**SECRETS, "admin token": worker.token, **WRONG, **seen.bearers}.items()
        for where, text in scanned.items()
        if value in text
    ]
    assert found == [], found
    assert len(seen.answers) >= 30 and sum(len(d) for d in files.values()) > 10_000


BAD_CONFIGS: list[tuple[str, Any, str]] = [  # (what is wrong, the change to the config, what the worker must say)
    (
        "a secret variable that is unset",
        lambda c: c["s3_api"]["users"][0].update(secret_key_env="LAKECACHE_UNSET_SECRET"),
        "LAKECACHE_UNSET_SECRET",
    ),
    (
        "a user entry with a secret and a bad access",
        lambda c: c["s3_api"]["users"][1]["grants"][0].update(access="all"),
        "(analyst).grants[0]",
    ),
    (
        "a redis URL with a password and a bad scheme",
        lambda c: c.update(cluster={"redis_url": f"redsi://:{REDIS_PASSWORD}@127.0.0.1:6379/0"}),
        "redsi://:***@127.0.0.1:6379/0",
    ),
    (
        "under store keys in the file and a bad value beside them",
        lambda c: c.update(
            under_store={"access_key_id": "under-key-id", "secret_access_key": UNDER_SECRET, "max_attempts": "many"}
        ),
        "max_attempts",
    ),
    (
        "an admin token and a bad port",
        lambda c: c.update(admin={"token": ADMIN_TOKEN}, server={"webhdfs_port": "ninety", "log_level": "debug"}),
        "webhdfs_port",
    ),
]


def _start_and_fail(tmp_path: Path, config: dict[str, Any]) -> str:
    """Start a worker on ``config`` (a disk tier added), which must stop it; what it printed."""
    disk = {"medium": "disk", "path": str(tmp_path / "disk"), "capacity": "64MiB"}
    config = {**config, "store": {"page_size": "64KiB", "tiers": [{"medium": "memory", "capacity": "64MiB"}, disk]}}
    path = tmp_path / "cache.toml"
    path.write_text(dumps(config))
    env = {**UNDER_ENV, "LAKECACHE_ETL_SECRET": ETL_SECRET, "CACHE_ADMIN_TOKEN": ADMIN_TOKEN, "PATH": "/usr/bin:/bin"}
    started = subprocess.run(
        [sys.executable, "-m", "cache_service", "serve", "--config", str(path)],
        capture_output=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
        check=False,
    )
    printed = (started.stdout + started.stderr).decode("utf-8", "replace")
    assert started.returncode != 0 and printed.strip(), printed
    return printed


@pytest.mark.parametrize(("mistake", "said"), [m[1:] for m in BAD_CONFIGS], ids=[m[0] for m in BAD_CONFIGS])
def test_a_bad_configuration_stops_the_worker_without_printing_a_secret(
    tmp_path: Path, mistake: Any, said: str
) -> None:
    config = _config("lake")
    mistake(config)
    printed = _start_and_fail(tmp_path, config)
    assert said in printed, printed
    assert [name for name, value in SECRETS.items() if value in printed] == [], printed


def test_a_redis_that_refuses_the_password_stops_the_worker_without_printing_it(tmp_path: Path, redis_server) -> None:
    # The session's Redis has no password: it refuses one, so the worker cannot join and says where it tried.
    url = f"redis://:{REDIS_PASSWORD}@{redis_server.host}:{redis_server.port}/0"
    config = {**_config("lake"), "cluster": {"redis_url": url}}
    printed = _start_and_fail(tmp_path, config)
    assert f"redis://:***@{redis_server.host}:{redis_server.port}/0" in printed, printed
    assert REDIS_PASSWORD not in printed


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://user:p:w@h/1", "rediss://user:***@h/1"),
        ("unix:///run/redis.sock?db=1&password=pw", "unix:///run/redis.sock?db=1&password=***"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("redis://[::1", "redis://[::1"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redacted_url(url) == shown
