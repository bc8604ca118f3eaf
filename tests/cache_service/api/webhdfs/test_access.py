"""Users and rights over WebHDFS (HDFS simple auth): ``/warehouse`` lets ``etl`` write and ``analyst`` read, ``/open``
has no table (everyone writes, as before users existed), ``/ro`` is read-only, ``/teams/finance`` (under a directory
of mounts) is ``cfo``'s to write and ``etl``'s to read, and ``/open/vault`` (a mount nested in ``/open``) is
``cfo``'s alone; with plain HTTP, fsspec's client and Hadoop's FsShell."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from fsspec.implementations.webhdfs import WebHDFS
from yarl import URL

from infra.cache_process import CacheProcess
from infra.s3_emulator import S3Emulator
from tests.cache_service.api.webhdfs.test_warm_reads import RawConnection, get
from tests.support.buckets import throwaway_bucket
from tests.support.caches import CacheFactory
from tests.support.hadoop_shell import fs_shell, fs_shell_batch
from tests.support.metrics import added, requests_by_user, scrape
from tests.support.webhdfs import Reply, WebHdfsClient


@pytest.fixture(scope="module")
def lake(s3_emulator: S3Emulator) -> Iterator[str]:
    with throwaway_bucket(s3_emulator.client(), "hdfsusers") as name:
        yield name


@pytest.fixture(scope="module")
def worker(s3_emulator: S3Emulator, lake: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CacheProcess]:
    factory = CacheFactory(tmp_path_factory.mktemp("hdfsusers"), s3_emulator.endpoint_url)
    mounts = [
        {"path": "/warehouse", "uri": f"s3://{lake}/warehouse", "users": {"etl": "write", "analyst": "read"}},
        {"path": "/open", "uri": f"s3://{lake}/open"},
        {"path": "/ro", "uri": f"s3://{lake}/ro", "read_only": True},
        {"path": "/teams/finance", "uri": f"s3://{lake}/finance", "users": {"cfo": "write", "etl": "read"}},
        {"path": "/open/vault", "uri": f"s3://{lake}/vault", "users": {"cfo": "write"}},
    ]
    yield factory({}, {"mounts": mounts})
    factory.stop_all()


def hdfs(worker: CacheProcess, user: str) -> WebHdfsClient:
    return WebHdfsClient(worker.webhdfs_url, user=user)


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


def assert_denied(reply: Reply, user: str, access: str, path: str) -> None:
    assert reply.status == 403, reply.body
    assert reply.exception == "AccessControlException"
    assert reply.json()["RemoteException"]["message"] == f"Permission denied: user={user}, access={access}, path={path}"


def _exists(s3_client, bucket: str, key: str) -> bool:
    return bool(s3_client.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))


def test_a_writer_writes_and_a_reader_reads_but_cannot_write(worker, s3_client, lake: str, tag: str) -> None:
    etl, analyst = hdfs(worker, "etl"), hdfs(worker, "analyst")
    path = f"/warehouse/{tag}/part-0.csv"
    assert etl.create(path, b"a,b\n").status == 201
    assert analyst.read(path).body == b"a,b\n"
    assert analyst.list(f"/warehouse/{tag}") == ["part-0.csv"]
    assert analyst.call("GET", path, "GETFILECHECKSUM").status == 200
    assert analyst.call("GET", f"/warehouse/{tag}", "GETCONTENTSUMMARY").json()["ContentSummary"]["length"] == 4

    assert_denied(analyst.create(f"/warehouse/{tag}/new.csv", b"x"), "analyst", "WRITE", f"/warehouse/{tag}/new.csv")
    assert_denied(analyst.delete(path), "analyst", "WRITE", path)
    assert_denied(analyst.mkdirs(f"/warehouse/{tag}/d"), "analyst", "WRITE", f"/warehouse/{tag}/d")
    assert_denied(analyst.call("POST", path, "APPEND"), "analyst", "WRITE", path)
    assert_denied(analyst.call("POST", path, "TRUNCATE", newlength=1), "analyst", "WRITE", path)
    assert_denied(analyst.call("PUT", path, "SETTIMES", modificationtime=1), "analyst", "WRITE", path)
    assert s3_client.get_object(Bucket=lake, Key=f"warehouse/{tag}/part-0.csv")["Body"].read() == b"a,b\n"
    assert not _exists(s3_client, lake, f"warehouse/{tag}/new.csv")
    assert not _exists(s3_client, lake, f"warehouse/{tag}/d")


def test_a_user_not_in_the_table_and_an_anonymous_caller_get_nothing(worker, tag: str) -> None:
    path = f"/warehouse/{tag}/x"
    assert hdfs(worker, "etl").create(path, b"x").status == 201
    assert_denied(hdfs(worker, "mallory").read(path), "mallory", "READ", path)
    assert_denied(hdfs(worker, "mallory").status(path), "mallory", "READ", path)
    anonymous = hdfs(worker, "").request("GET", f"/webhdfs/v1{path}?op=GETFILESTATUS")
    assert_denied(anonymous, "dr.who", "READ", path)
    # doas is the effective user, as in HDFS: etl acting as mallory has mallory's rights.
    assert_denied(hdfs(worker, "etl").call("GET", path, "OPEN", doas="mallory"), "mallory", "READ", path)


def test_a_warm_read_answered_from_memory_is_still_refused_to_a_user_without_read(worker, tag: str) -> None:
    path = f"/warehouse/{tag}/warm.bin"
    assert hdfs(worker, "etl").create(path, b"w" * 5000).status == 201
    before = scrape(worker.webhdfs_url).get('lakecache_warm_requests_total{op="OPEN"}', 0)
    conn = RawConnection(worker)  # one idle keep-alive connection, as the fast path wants
    try:
        for _ in range(50):  # until the fast path answers one (on a loaded machine the first few may miss it)
            conn.send(get(f"/webhdfs/v1{path}?op=OPEN&user.name=etl"))
            assert conn.answer().body == b"w" * 5000
            if scrape(worker.webhdfs_url)['lakecache_warm_requests_total{op="OPEN"}'] > before:
                break
            time.sleep(0.02)
        assert scrape(worker.webhdfs_url)['lakecache_warm_requests_total{op="OPEN"}'] > before  # it answered
        for op in ("OPEN", "GETFILESTATUS"):
            conn.send(get(f"/webhdfs/v1{path}?op={op}&user.name=mallory"))
            refused = conn.answer()
            assert refused.status == 403 and b"user=mallory, access=READ" in refused.body, refused
    finally:
        conn.close()


def test_rename_needs_write_on_both_ends(worker, s3_client, lake: str, tag: str) -> None:
    etl, analyst = hdfs(worker, "etl"), hdfs(worker, "analyst")
    assert analyst.create(f"/open/{tag}/a", b"a").status == 201  # /open has no table: everyone writes
    assert etl.create(f"/warehouse/{tag}/b", b"b").status == 201
    into = analyst.rename(f"/open/{tag}/a", f"/warehouse/{tag}/a")
    assert_denied(into, "analyst", "WRITE", f"/warehouse/{tag}/a")
    out_of = analyst.rename(f"/warehouse/{tag}/b", f"/open/{tag}/b")
    assert_denied(out_of, "analyst", "WRITE", f"/warehouse/{tag}/b")
    assert _exists(s3_client, lake, f"open/{tag}/a") and _exists(s3_client, lake, f"warehouse/{tag}/b")
    assert not _exists(s3_client, lake, f"warehouse/{tag}/a") and not _exists(s3_client, lake, f"open/{tag}/b")
    assert etl.rename(f"/open/{tag}/a", f"/warehouse/{tag}/a").json() == {"boolean": True}
    assert _exists(s3_client, lake, f"warehouse/{tag}/a")


def test_concat_needs_write_on_its_sources_too(worker, tag: str) -> None:
    etl, analyst = hdfs(worker, "etl"), hdfs(worker, "analyst")
    assert analyst.create(f"/open/{tag}/target", b"t").status == 201
    assert etl.create(f"/warehouse/{tag}/source", b"s").status == 201
    reply = analyst.call("POST", f"/open/{tag}/target", "CONCAT", sources=f"/warehouse/{tag}/source")
    assert_denied(reply, "analyst", "WRITE", f"/warehouse/{tag}/source")
    assert etl.read(f"/warehouse/{tag}/source").body == b"s"


def test_check_access_answers_as_the_table_does(worker, tag: str) -> None:
    path = f"/warehouse/{tag}/f"
    assert hdfs(worker, "etl").create(path, b"f").status == 201
    answers = {
        (user, action): hdfs(worker, user).call("GET", path, "CHECKACCESS", fsaction=action).status
        for user in ("etl", "analyst", "mallory")
        for action in ("r--", "rw-")
    }
    assert answers == {
        ("etl", "r--"): 200,
        ("etl", "rw-"): 200,
        ("analyst", "r--"): 200,
        ("analyst", "rw-"): 403,
        ("mallory", "r--"): 403,
        ("mallory", "rw-"): 403,
    }


def test_a_read_only_mount_refuses_every_change_to_everyone(worker, s3_client, lake: str, tag: str) -> None:
    s3_client.put_object(Bucket=lake, Key=f"ro/{tag}/ref.csv", Body=b"reference")
    anyone = hdfs(worker, "anyone")
    assert anyone.read(f"/ro/{tag}/ref.csv").body == b"reference"
    assert_denied(anyone.create(f"/ro/{tag}/new", b"x"), "anyone", "WRITE", f"/ro/{tag}/new")
    assert_denied(anyone.delete(f"/ro/{tag}/ref.csv"), "anyone", "WRITE", f"/ro/{tag}/ref.csv")
    assert _exists(s3_client, lake, f"ro/{tag}/ref.csv") and not _exists(s3_client, lake, f"ro/{tag}/new")


def test_fsspecs_client_is_allowed_and_refused_by_its_user(worker, s3_client, lake: str, tag: str) -> None:
    url = URL(worker.webhdfs_url)
    etl = WebHDFS(host=url.host, port=url.port, user="etl", skip_instance_cache=True)
    analyst = WebHDFS(host=url.host, port=url.port, user="analyst", skip_instance_cache=True)
    etl.pipe_file(f"/warehouse/{tag}/nb.txt", b"from a notebook")
    assert analyst.cat(f"/warehouse/{tag}/nb.txt") == b"from a notebook"
    assert analyst.ls(f"/warehouse/{tag}", detail=False) == [f"/warehouse/{tag}/nb.txt"]
    with pytest.raises(PermissionError, match="user=analyst, access=WRITE"):
        analyst.pipe_file(f"/warehouse/{tag}/sneaky.txt", b"no")
    with pytest.raises(PermissionError):
        analyst.rm(f"/warehouse/{tag}/nb.txt")
    assert not _exists(s3_client, lake, f"warehouse/{tag}/sneaky.txt")
    assert _exists(s3_client, lake, f"warehouse/{tag}/nb.txt")


@pytest.mark.timeout(300)
def test_hadoops_fs_shell_is_allowed_and_refused_by_its_login_user(
    worker, s3_client, lake: str, tag: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = URL(worker.webhdfs_url)
    target = f"webhdfs://{url.host}:{url.port}/warehouse/{tag}"
    local = tmp_path / "rows.csv"
    local.write_bytes(b"1,2\n")
    assert hdfs(worker, "etl").mkdirs(f"/warehouse/{tag}").json() == {"boolean": True}
    monkeypatch.setenv("HADOOP_USER_NAME", "analyst")  # simple auth: Hadoop's client sends it as user.name
    refused = fs_shell(tmp_path / "conf", ["-put", str(local), f"{target}/by-analyst.csv"])
    assert refused.returncode != 0
    assert b"Permission denied: user=analyst, access=WRITE" in refused.stderr, refused.stderr[-2000:]
    assert not _exists(s3_client, lake, f"warehouse/{tag}/by-analyst.csv")
    monkeypatch.setenv("HADOOP_USER_NAME", "etl")
    assert fs_shell(tmp_path / "conf", ["-put", str(local), f"{target}/by-etl.csv"]).returncode == 0
    monkeypatch.setenv("HADOOP_USER_NAME", "analyst")
    shown = fs_shell(tmp_path / "conf", ["-cat", f"{target}/by-etl.csv"])
    assert shown.returncode == 0 and shown.stdout == b"1,2\n"


def _batch_names(client: WebHdfsClient, path: str) -> list[str]:
    reply = client.call("GET", path, "LISTSTATUS_BATCH")
    assert reply.status == 200, reply.body
    return [s["pathSuffix"] for s in reply.json()["DirectoryListing"]["partialListing"]["FileStatuses"]["FileStatus"]]


def test_listings_leave_out_the_mounts_a_user_may_not_use_and_asking_for_one_is_refused(worker) -> None:
    seen = {user: hdfs(worker, user).list("/") for user in ("etl", "analyst", "cfo", "mallory")}
    assert seen == {
        "etl": ["open", "ro", "teams", "warehouse"],
        "analyst": ["open", "ro", "warehouse"],  # /teams holds only a mount analyst may not use
        "cfo": ["open", "ro", "teams"],
        "mallory": ["open", "ro"],
    }
    for user, names in seen.items():
        assert _batch_names(hdfs(worker, user), "/") == names
    assert "vault" not in hdfs(worker, "analyst").list("/open")  # a nested mount, inside a mount analyst may use
    assert "vault" in hdfs(worker, "cfo").list("/open")
    assert hdfs(worker, "etl").list("/teams") == ["finance"]

    analyst = hdfs(worker, "analyst")
    for path in ("/teams", "/teams/finance", "/open/vault", "/teams/finance/missing"):
        assert_denied(analyst.status(path), "analyst", "READ", path)
        assert_denied(analyst.call("GET", path, "LISTSTATUS"), "analyst", "READ", path)
    # outside every mount, a path is nobody's: the same answer for all, which says nothing of what /teams holds
    assert analyst.mkdirs("/teams/new").body == hdfs(worker, "etl").mkdirs("/teams/new").body
    assert_denied(hdfs(worker, "cfo").status("/warehouse"), "cfo", "READ", "/warehouse")
    assert hdfs(worker, "mallory").status("/").status == 200  # the root is everyone's, if empty


def test_content_summaries_count_only_the_mounts_the_caller_may_use(worker, s3_client, lake: str, tag: str) -> None:
    s3_client.put_object(Bucket=lake, Key=f"finance/{tag}/ledger.csv", Body=b"f" * 1000)
    s3_client.put_object(Bucket=lake, Key=f"vault/{tag}/keys.txt", Body=b"v" * 500)
    assert hdfs(worker, "etl").create(f"/warehouse/{tag}/_temporary/0/part-0", b"s" * 70).status == 201  # staged
    assert hdfs(worker, "cfo").create(f"/teams/finance/{tag}/_temporary/0/part-0", b"s" * 30).status == 201
    etl, analyst, cfo, mallory = (hdfs(worker, user) for user in ("etl", "analyst", "cfo", "mallory"))

    def added(*summaries: tuple[int, int, int]) -> tuple[int, int]:
        """Lengths and file counts added up."""
        return sum(s[0] for s in summaries), sum(s[1] for s in summaries)

    length, files, dirs = analyst.summary("/")
    # "/" sums its mounts, published and staged files alike; for analyst nothing of /teams or of /open/vault
    assert (length, files) == added(analyst.summary("/open"), analyst.summary("/ro"), analyst.summary("/warehouse"))
    assert dirs == 1 + sum(analyst.summary(p)[2] for p in ("/open", "/ro", "/warehouse"))
    assert added(cfo.summary("/open")) == added(analyst.summary("/open"), (500, 1, 0))
    assert added(etl.summary("/")) == added(analyst.summary("/"), etl.summary("/teams"))
    assert added(etl.summary("/teams")) >= (1030, 2)
    assert added(mallory.summary("/")) == added(mallory.summary("/open"), mallory.summary("/ro"))
    usage = analyst.call("GET", "/", "GETQUOTAUSAGE").json()["QuotaUsage"]
    assert (usage["spaceConsumed"], usage["fileAndDirectoryCount"]) == (length, files + dirs)
    for op in ("GETCONTENTSUMMARY", "GETQUOTAUSAGE"):
        assert_denied(analyst.call("GET", "/teams", op), "analyst", "READ", "/teams")
        assert_denied(analyst.call("GET", "/open/vault", op), "analyst", "READ", "/open/vault")


@pytest.mark.timeout(120)
def test_hadoops_fs_shell_lists_and_sums_only_what_its_user_may_use(
    worker, s3_client, lake: str, tag: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_client.put_object(Bucket=lake, Key=f"finance/{tag}/ledger.csv", Body=b"f" * 1000)
    root = f"webhdfs://{URL(worker.webhdfs_url).authority}"
    monkeypatch.setenv("HADOOP_USER_NAME", "analyst")
    (ls, listed), (du, summed), (count, counted), (refused, _) = fs_shell_batch(
        tmp_path / "conf", [["-ls", f"{root}/"], ["-du", f"{root}/"], ["-count", f"{root}/"], ["-ls", f"{root}/teams"]]
    )
    assert ls == 0 and [line.rsplit("/", 1)[-1] for line in listed.splitlines()[1:]] == ["open", "ro", "warehouse"]
    assert du == 0 and [line.rsplit("/", 1)[-1] for line in summed.splitlines()] == ["open", "ro", "warehouse"]
    length, files, dirs = hdfs(worker, "analyst").summary("/")
    assert count == 0 and counted.split()[:3] == [str(dirs), str(files), str(length)]
    assert refused != 0


def test_requests_are_counted_by_configured_user_and_anyone_else_as_other(worker, tag: str) -> None:
    path = f"/warehouse/{tag}/counted"
    assert hdfs(worker, "etl").create(path, b"c").status == 201
    before = requests_by_user(worker.webhdfs_url, "webhdfs")
    assert hdfs(worker, "etl").read(path).status == 200
    assert hdfs(worker, "analyst").read(path).status == 200
    assert hdfs(worker, "analyst").delete(path).status == 403
    invented = f"someone-{tag}"  # user.name is free text: it never becomes a label of its own
    assert hdfs(worker, invented).read(path).status == 403
    assert hdfs(worker, "").request("GET", f"/webhdfs/v1{path}?op=GETFILESTATUS").status == 403  # dr.who
    assert hdfs(worker, invented).list("/open") is not None  # a mount without a table: allowed, still counted
    after = requests_by_user(worker.webhdfs_url, "webhdfs")
    assert added(before, after) == {
        ("etl", "allowed"): 1,
        ("analyst", "allowed"): 1,
        ("analyst", "denied"): 1,
        ("other", "denied"): 2,
        ("other", "allowed"): 1,
    }
    assert {user for user, _ in after} <= {"etl", "analyst", "cfo", "other"}
