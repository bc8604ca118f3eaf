"""Users and their grants on the S3 API: two users, ``etl`` (write on ``warehouse/`` and ``scratch/``) and
``analyst`` (read on ``warehouse/``), each allowed and refused as configured, with S3 showing that a refused request
wrote nothing."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from infra.cache_process import CacheProcess
from infra.s3_emulator import EMULATOR_CREDENTIALS, S3Emulator
from tests.cache_service.api.s3.support import s3_client, send, streaming_put
from tests.support.caches import CacheFactory
from tests.support.metrics import added, requests_by_user

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ETL_SECRET = "etl-s3cr3t-7f1c9a"
ANALYST_SECRET = "analyst-s3cr3t-44b2e0"
ADMIN_SECRET = "admin-s3cr3t-0d93aa"


def users_config(bucket: str) -> dict[str, Any]:
    """``etl`` (its secret from the environment) and ``analyst``, as the issue's example has them."""
    return {
        "s3_api": {
            "access_key": "lake-admin",
            "secret_key": ADMIN_SECRET,
            "users": [
                {
                    "access_key": "etl",
                    "secret_key_env": "LAKECACHE_ETL_SECRET",
                    "grants": [
                        {"bucket": bucket, "prefix": "warehouse/", "access": "write"},
                        {"bucket": bucket, "prefix": "scratch/", "access": "write"},
                        {"bucket": bucket, "prefix": "ro/", "access": "write"},
                    ],
                },
                {
                    "access_key": "analyst",
                    "secret_key": ANALYST_SECRET,
                    "grants": [{"bucket": bucket, "prefix": "warehouse/", "access": "read"}],
                },
            ],
        },
        "mounts": [
            {"path": "/warehouse", "uri": f"s3://{bucket}/warehouse", "users": {"etl": "write", "analyst": "read"}},
            {"path": "/ro", "uri": f"s3://{bucket}/ro", "read_only": True},
        ],
        "server": {"log_level": "debug"},
    }


@pytest.fixture(scope="module")
def lake(s3_bucket: str) -> str:
    """The package's bucket: its ``warehouse/`` mounted with users, ``ro/`` read-only, the rest outside mounts."""
    return s3_bucket


@pytest.fixture(scope="module")
def worker(s3_emulator: S3Emulator, lake: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CacheProcess]:
    factory = CacheFactory(tmp_path_factory.mktemp("grants"), s3_emulator.endpoint_url)
    env = {**EMULATOR_CREDENTIALS, "LAKECACHE_ETL_SECRET": ETL_SECRET}
    yield factory({}, users_config(lake), aws_credentials=env)
    factory.stop_all()


def s3_client_of(worker: CacheProcess, access_key: str, secret: str) -> S3Client:
    return s3_client(worker.s3_url, access_key=access_key, secret=secret, signature_version="s3v4")


@pytest.fixture
def etl(worker: CacheProcess) -> S3Client:
    return s3_client_of(worker, "etl", ETL_SECRET)


@pytest.fixture
def analyst(worker: CacheProcess) -> S3Client:
    return s3_client_of(worker, "analyst", ANALYST_SECRET)


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error.get("Message", "")


def _exists(s3_client: S3Client, bucket: str, key: str) -> bool:
    try:
        s3_client.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


def test_a_writer_writes_and_reads_its_prefixes_inside_and_outside_mounts(etl, s3_client, lake: str, tag: str) -> None:
    for key in (f"warehouse/{tag}/a.csv", f"scratch/{tag}/b.csv"):  # cached, and forwarded to S3
        etl.put_object(Bucket=lake, Key=key, Body=b"rows")
        assert etl.get_object(Bucket=lake, Key=key)["Body"].read() == b"rows"
        assert s3_client.get_object(Bucket=lake, Key=key)["Body"].read() == b"rows"


def test_a_reader_reads_but_every_write_is_access_denied_naming_it_and_nothing_is_written(
    etl, analyst, s3_client, lake: str, tag: str
) -> None:
    key = f"warehouse/{tag}/table.csv"
    etl.put_object(Bucket=lake, Key=key, Body=b"v1")
    assert analyst.get_object(Bucket=lake, Key=key)["Body"].read() == b"v1"
    assert analyst.head_object(Bucket=lake, Key=key)["ContentLength"] == 2
    writes = {
        "put": lambda k: analyst.put_object(Bucket=lake, Key=k, Body=b"v2"),
        "delete": lambda k: analyst.delete_object(Bucket=lake, Key=k),
        "multipart": lambda k: analyst.create_multipart_upload(Bucket=lake, Key=k),
        "tagging": lambda k: analyst.put_object_tagging(Bucket=lake, Key=k, Tagging={"TagSet": []}),
    }
    for name, write in writes.items():
        with pytest.raises(ClientError) as excinfo:
            write(key)
        code, message = _error(excinfo)
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, name
        assert code == "AccessDenied" and "analyst" in message and key in message, (name, message)
    assert s3_client.get_object(Bucket=lake, Key=key)["Body"].read() == b"v1"


def test_keys_outside_every_grant_are_refused_for_reads_and_writes(
    etl, analyst, s3_client, lake: str, tag: str
) -> None:
    s3_client.put_object(Bucket=lake, Key=f"other/{tag}", Body=b"private")
    for client, name in ((etl, "etl"), (analyst, "analyst")):
        with pytest.raises(ClientError) as excinfo:
            client.get_object(Bucket=lake, Key=f"other/{tag}")
        assert _error(excinfo)[0] == "AccessDenied" and name in _error(excinfo)[1]
        with pytest.raises(ClientError) as excinfo:
            client.put_object(Bucket=lake, Key=f"other/{tag}-new", Body=b"x")
        assert _error(excinfo)[0] == "AccessDenied"
    with pytest.raises(ClientError) as excinfo:
        analyst.get_object(Bucket=lake, Key=f"scratch/{tag}")
    assert _error(excinfo)[0] == "AccessDenied"
    assert not _exists(s3_client, lake, f"other/{tag}-new")


def test_the_under_stores_own_keys_no_longer_sign_once_users_are_listed(worker: CacheProcess, lake: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        s3_client(worker.s3_url).list_objects_v2(Bucket=lake, Prefix="warehouse/")
    assert _error(excinfo)[0] == "InvalidAccessKeyId"


def test_presigned_urls_carry_their_signers_rights(etl, analyst, s3_client, lake: str, tag: str) -> None:
    key = f"warehouse/{tag}/shared.bin"
    etl.put_object(Bucket=lake, Key=key, Body=b"payload")
    s3_client.put_object(Bucket=lake, Key=f"scratch/{tag}", Body=b"etl only")
    get = analyst.generate_presigned_url("get_object", Params={"Bucket": lake, "Key": key})
    assert send("GET", get).body == b"payload"
    refused = send(
        "GET", analyst.generate_presigned_url("get_object", Params={"Bucket": lake, "Key": f"scratch/{tag}"})
    )
    assert refused.status == 403 and refused.code == "AccessDenied" and b"analyst" in refused.body
    put = analyst.generate_presigned_url("put_object", Params={"Bucket": lake, "Key": f"{key}.new"})
    reply = send("PUT", put, b"sneaked in")
    assert reply.status == 403 and reply.code == "AccessDenied"
    assert not _exists(s3_client, lake, f"{key}.new")


def test_delete_objects_deletes_the_allowed_keys_and_answers_access_denied_for_each_other(
    etl, analyst, s3_client, lake: str, tag: str
) -> None:
    mine, cached, theirs = f"scratch/{tag}/a", f"warehouse/{tag}/b", f"other/{tag}/c"
    for key in (mine, cached, theirs):
        s3_client.put_object(Bucket=lake, Key=key, Body=b"x")
    objects = [{"Key": k} for k in (mine, cached, theirs)]

    answer = analyst.delete_objects(Bucket=lake, Delete={"Objects": objects})
    assert not answer.get("Deleted")
    assert {e["Key"]: e["Code"] for e in answer["Errors"]} == dict.fromkeys((mine, cached, theirs), "AccessDenied")

    answer = etl.delete_objects(Bucket=lake, Delete={"Objects": objects})
    assert {d["Key"] for d in answer["Deleted"]} == {mine, cached}
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [(theirs, "AccessDenied")]
    assert "etl" in answer["Errors"][0]["Message"]
    assert [_exists(s3_client, lake, k) for k in (mine, cached, theirs)] == [False, False, True]


def test_copy_needs_read_on_the_source_and_write_on_the_destination(
    etl, analyst, s3_client, lake: str, tag: str
) -> None:
    s3_client.put_object(Bucket=lake, Key=f"other/{tag}", Body=b"not etl's")
    etl.put_object(Bucket=lake, Key=f"warehouse/{tag}/src", Body=b"etl's")

    etl.copy_object(Bucket=lake, Key=f"scratch/{tag}/copy", CopySource={"Bucket": lake, "Key": f"warehouse/{tag}/src"})
    assert s3_client.get_object(Bucket=lake, Key=f"scratch/{tag}/copy")["Body"].read() == b"etl's"
    refusals = [
        (etl, f"warehouse/{tag}/stolen", f"other/{tag}", "read"),  # no read on the source
        (analyst, f"warehouse/{tag}/dst", f"warehouse/{tag}/src", "write"),  # no write on the destination
    ]
    for client, destination, source, what in refusals:
        with pytest.raises(ClientError) as excinfo:
            client.copy_object(Bucket=lake, Key=destination, CopySource={"Bucket": lake, "Key": source})
        code, message = _error(excinfo)
        assert code == "AccessDenied" and f"may not {what}" in message, message
        assert not _exists(s3_client, lake, destination)


def test_listings_need_read_on_their_prefix_and_list_buckets_shows_only_granted_buckets(
    etl, analyst, s3_client, lake: str, bucket: str, tag: str
) -> None:
    etl.put_object(Bucket=lake, Key=f"warehouse/{tag}/x", Body=b"x")
    listed = analyst.list_objects_v2(Bucket=lake, Prefix=f"warehouse/{tag}/")
    assert [o["Key"] for o in listed["Contents"]] == [f"warehouse/{tag}/x"]
    assert analyst.list_objects(Bucket=lake, Prefix="warehouse/")["Contents"]
    for prefix in ("", "ware", "scratch/"):
        with pytest.raises(ClientError) as excinfo:
            analyst.list_objects_v2(Bucket=lake, Prefix=prefix)
        assert _error(excinfo)[0] == "AccessDenied", prefix
    analyst.head_bucket(Bucket=lake)
    assert bucket in [b["Name"] for b in s3_client.list_buckets()["Buckets"]]  # a bucket nobody has a grant in
    assert [b["Name"] for b in analyst.list_buckets()["Buckets"]] == [lake]
    assert [b["Name"] for b in etl.list_buckets()["Buckets"]] == [lake]
    with pytest.raises(ClientError) as excinfo:
        etl.get_bucket_versioning(Bucket=lake)  # the bucket's settings need a grant on all of it
    assert _error(excinfo)[0] == "AccessDenied"


def test_a_read_only_mount_refuses_writes_even_to_a_user_granted_them(etl, s3_client, lake: str, tag: str) -> None:
    s3_client.put_object(Bucket=lake, Key=f"ro/{tag}", Body=b"reference data")
    assert etl.get_object(Bucket=lake, Key=f"ro/{tag}")["Body"].read() == b"reference data"
    with pytest.raises(ClientError) as excinfo:
        etl.put_object(Bucket=lake, Key=f"ro/{tag}", Body=b"changed")
    code, message = _error(excinfo)
    assert code == "AccessDenied" and "read-only mount /ro" in message
    assert s3_client.get_object(Bucket=lake, Key=f"ro/{tag}")["Body"].read() == b"reference data"


def test_secrets_appear_neither_in_the_log_nor_in_metrics(worker: CacheProcess, etl, analyst, lake: str) -> None:
    etl.put_object(Bucket=lake, Key="warehouse/secret-check", Body=b"x")
    with pytest.raises(ClientError):
        analyst.put_object(Bucket=lake, Key="warehouse/secret-check", Body=b"y")
    wrong = s3_client(worker.s3_url, access_key="analyst", secret="not-" + ANALYST_SECRET)
    with pytest.raises(ClientError):
        wrong.get_object(Bucket=lake, Key="warehouse/secret-check")
    with urllib.request.urlopen(f"{worker.webhdfs_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    log = worker.log_path.read_text()
    assert '"op": "PutObject"' in log or "PutObject" in log  # debug logging is on: the requests were logged
    for secret in (ETL_SECRET, ANALYST_SECRET, ADMIN_SECRET):
        assert secret not in log and secret not in text


def test_streaming_signed_uploads_are_checked_with_the_signers_secret_and_rights(
    worker: CacheProcess, s3_client, lake: str, tag: str
) -> None:
    data = bytes(range(256)) * 100
    url = f"{worker.s3_url}/{lake}/warehouse/{tag}/streamed"
    assert streaming_put(url, data, access_key="etl", secret=ETL_SECRET).status == 200
    assert s3_client.get_object(Bucket=lake, Key=f"warehouse/{tag}/streamed")["Body"].read() == data
    refused = streaming_put(f"{url}-2", data, access_key="analyst", secret=ANALYST_SECRET)
    assert refused.status == 403 and refused.code == "AccessDenied"
    assert not _exists(s3_client, lake, f"warehouse/{tag}/streamed-2")


def test_a_writer_completes_a_multipart_upload_the_reader_may_not_touch(
    etl, analyst, s3_client, lake: str, tag: str
) -> None:
    key = f"warehouse/{tag}/multi.bin"
    upload = etl.create_multipart_upload(Bucket=lake, Key=key)["UploadId"]
    with pytest.raises(ClientError) as excinfo:
        analyst.upload_part(Bucket=lake, Key=key, UploadId=upload, PartNumber=1, Body=b"theirs")
    assert _error(excinfo)[0] == "AccessDenied"
    assert analyst.list_parts(Bucket=lake, Key=key, UploadId=upload).get("Parts", []) == []  # reading is allowed
    etag = etl.upload_part(Bucket=lake, Key=key, UploadId=upload, PartNumber=1, Body=b"ours")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    with pytest.raises(ClientError) as excinfo:
        analyst.complete_multipart_upload(Bucket=lake, Key=key, UploadId=upload, MultipartUpload=parts)
    assert _error(excinfo)[0] == "AccessDenied"
    etl.complete_multipart_upload(Bucket=lake, Key=key, UploadId=upload, MultipartUpload=parts)
    assert s3_client.get_object(Bucket=lake, Key=key)["Body"].read() == b"ours"


def test_the_s3_api_key_pair_beside_users_keeps_every_right(
    worker: CacheProcess, s3_client, lake: str, bucket: str, tag: str
) -> None:
    admin = s3_client_of(worker, "lake-admin", ADMIN_SECRET)
    admin.put_object(Bucket=lake, Key=f"other/{tag}", Body=b"anywhere")
    assert s3_client.get_object(Bucket=lake, Key=f"other/{tag}")["Body"].read() == b"anywhere"
    assert admin.list_objects_v2(Bucket=lake, Prefix="")["KeyCount"] > 0
    assert {lake, bucket} <= {b["Name"] for b in admin.list_buckets()["Buckets"]}


def test_requests_are_counted_by_user_and_the_admin_pair_as_other(
    worker: CacheProcess, etl, analyst, lake: str, tag: str
) -> None:
    before = requests_by_user(worker.webhdfs_url, "s3")
    etl.put_object(Bucket=lake, Key=f"warehouse/{tag}/counted", Body=b"c")
    analyst.get_object(Bucket=lake, Key=f"warehouse/{tag}/counted")["Body"].read()
    with pytest.raises(ClientError):
        analyst.put_object(Bucket=lake, Key=f"warehouse/{tag}/refused", Body=b"r")
    s3_client_of(worker, "lake-admin", ADMIN_SECRET).head_object(Bucket=lake, Key=f"warehouse/{tag}/counted")
    with pytest.raises(ClientError):  # a signature that fails proves no user: not counted by user
        s3_client(worker.s3_url, access_key="etl", secret="not-" + ETL_SECRET).get_object(
            Bucket=lake, Key=f"warehouse/{tag}/counted"
        )
    after = requests_by_user(worker.webhdfs_url, "s3")
    assert added(before, after) == {
        ("etl", "allowed"): 1,
        ("analyst", "allowed"): 1,
        ("analyst", "denied"): 1,
        ("other", "allowed"): 1,
    }
    assert {user for user, _ in after} <= {"etl", "analyst", "other"}
