"""GETSERVERDEFAULTS, GETSTATUS, CHECKACCESS and the xattr/ACL/storage-policy ops, as Hadoop's client parses them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from infra.cache_process import CacheProcess
from tests.support.webhdfs import WebHdfsClient


@pytest.fixture
def cache(cache_factory, bucket: str) -> Iterator[CacheProcess]:
    yield cache_factory({"/warehouse": f"s3://{bucket}/warehouse"})


@pytest.fixture
def hdfs(cache: CacheProcess, s3_client, bucket: str) -> WebHdfsClient:
    s3_client.put_object(Bucket=bucket, Key="warehouse/f", Body=b"abc")
    return WebHdfsClient(cache.webhdfs_url)


def test_server_defaults_have_no_trash(hdfs: WebHdfsClient) -> None:
    reply = hdfs.call("GET", "/", "GETSERVERDEFAULTS")
    assert reply.status == 200 and "content-type" not in reply.headers
    defaults = reply.json()["FsServerDefaults"]
    assert defaults["trashInterval"] == 0 and defaults["checksumType"] == 2
    assert {"blockSize", "bytesPerChecksum", "writePacketSize", "replication", "fileBufferSize"} <= set(defaults)


def test_fs_status_is_the_cache_capacity(hdfs: WebHdfsClient) -> None:
    status = hdfs.call("GET", "/", "GETSTATUS").json()["FsStatus"]
    assert status["capacity"] > 0 and status["used"] >= 0
    assert status["remaining"] == status["capacity"] - status["used"]


def test_check_access(hdfs: WebHdfsClient) -> None:
    assert hdfs.call("GET", "/warehouse/f", "CHECKACCESS", fsaction="r--").status == 200
    assert hdfs.call("GET", "/warehouse/nope", "CHECKACCESS", fsaction="rwx").exception == "FileNotFoundException"
    for action in ("", "rwxr", "abc"):
        reply = hdfs.call("GET", "/warehouse/f", "CHECKACCESS", fsaction=action)
        assert (reply.status, reply.exception) == (400, "IllegalArgumentException")


def test_feature_queries_answer_empty(hdfs: WebHdfsClient) -> None:
    assert hdfs.call("GET", "/warehouse/f", "GETXATTRS").json() == {"XAttrs": []}
    assert json.loads(hdfs.call("GET", "/warehouse/f", "LISTXATTRS").json()["XAttrNames"]) == []
    acl = hdfs.call("GET", "/warehouse", "GETACLSTATUS").json()["AclStatus"]
    assert acl["entries"] == [] and acl["permission"] == "755" and acl["stickyBit"] is False
    assert hdfs.call("GET", "/warehouse/f", "GETSTORAGEPOLICY").json()["BlockStoragePolicy"]["name"] == "HOT"
    policies = hdfs.call("GET", "/", "GETALLSTORAGEPOLICY").json()["BlockStoragePolicies"]["BlockStoragePolicy"]
    assert [p["name"] for p in policies] == ["HOT"]
    assert hdfs.call("GET", "/warehouse/nope", "GETXATTRS").exception == "FileNotFoundException"
    assert hdfs.call("GET", "/", "GETTRASHROOT").json() == {"Path": "/user/tester/.Trash"}


def test_feature_changes_say_what_to_do_instead(hdfs: WebHdfsClient) -> None:
    for method, op in [("PUT", "SETXATTR"), ("PUT", "SETACL"), ("PUT", "SETSTORAGEPOLICY"), ("PUT", "CREATESNAPSHOT")]:
        reply = hdfs.call(method, "/warehouse/f", op)
        assert (reply.status, reply.exception) == (400, "UnsupportedOperationException"), op
        message = reply.json()["RemoteException"]["message"]
        assert message.startswith(f"{op} is not supported by this cache: ")
        assert "instead" in message or "versioning" in message
    reply = hdfs.call("POST", "/warehouse/f", "UNSETSTORAGEPOLICY")
    assert reply.exception == "UnsupportedOperationException"


def test_quota_usage_and_link_status(hdfs: WebHdfsClient) -> None:
    usage = hdfs.call("GET", "/warehouse", "GETQUOTAUSAGE").json()["QuotaUsage"]
    assert usage == {"fileAndDirectoryCount": 2, "quota": -1, "spaceConsumed": 3, "spaceQuota": -1, "typeQuota": {}}
    assert hdfs.call("GET", "/warehouse/f", "GETFILELINKSTATUS").json()["FileStatus"]["length"] == 3


# Every op of Hadoop 3.4's WebHDFS client (GetOpParam, PutOpParam, PostOpParam, DeleteOpParam in pyspark's jars).
HADOOP_OPS = {
    "GET": "OPEN GETFILESTATUS LISTSTATUS GETCONTENTSUMMARY GETQUOTAUSAGE GETFILECHECKSUM GETHOMEDIRECTORY "
    "GETDELEGATIONTOKEN GET_BLOCK_LOCATIONS GETFILEBLOCKLOCATIONS GETACLSTATUS GETXATTRS GETTRASHROOT LISTXATTRS "
    "GETALLSTORAGEPOLICY GETSTORAGEPOLICY GETECPOLICY CHECKACCESS LISTSTATUS_BATCH GETSERVERDEFAULTS GETSNAPSHOTDIFF "
    "GETSNAPSHOTDIFFLISTING GETSNAPSHOTTABLEDIRECTORYLIST GETLINKTARGET GETFILELINKSTATUS GETSTATUS GETECPOLICIES "
    "GETECCODECS GETTRASHROOTS GETSNAPSHOTLIST",
    "PUT": "CREATE MKDIRS CREATESYMLINK RENAME SETREPLICATION SETOWNER SETPERMISSION SETTIMES RENEWDELEGATIONTOKEN "
    "CANCELDELEGATIONTOKEN MODIFYACLENTRIES REMOVEACLENTRIES REMOVEDEFAULTACL REMOVEACL SATISFYSTORAGEPOLICY SETACL "
    "SETXATTR REMOVEXATTR ENABLEECPOLICY DISABLEECPOLICY SETECPOLICY ALLOWSNAPSHOT DISALLOWSNAPSHOT CREATESNAPSHOT "
    "RENAMESNAPSHOT SETSTORAGEPOLICY SETQUOTA SETQUOTABYSTORAGETYPE",
    "POST": "APPEND CONCAT TRUNCATE UNSETECPOLICY UNSETSTORAGEPOLICY",
    "DELETE": "DELETE DELETESNAPSHOT",
}


@pytest.mark.parametrize("method", sorted(HADOOP_OPS))
def test_every_hadoop_op_works_or_says_what_to_do_instead(hdfs: WebHdfsClient, method: str) -> None:
    for op in HADOOP_OPS[method].split():
        reply = hdfs.call(method, "/warehouse/f", op)
        if reply.exception == "UnsupportedOperationException":
            message = reply.json()["RemoteException"]["message"]
            assert message.startswith(f"{op} is not supported by this cache: "), message
        else:  # it is served: at worst it wants parameters this bare call did not send
            assert reply.exception in (None, "IllegalArgumentException", "FileAlreadyExistsException"), (op, reply)
