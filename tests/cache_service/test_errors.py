"""A full disk is a retriable failure in both APIs, named with the path being written; other errors stay as they are."""

from __future__ import annotations

import errno
import json

import pytest

from cache_service.api.s3.errors import as_s3_error
from cache_service.api.webhdfs.errors import error_response
from cache_service.errors import DiskFullError, disk_full_as


def test_a_full_disk_while_writing_becomes_a_disk_full_error_naming_the_path():
    with pytest.raises(DiskFullError) as full, disk_full_as("/warehouse/_temporary/0/part-0"):
        raise OSError(errno.ENOSPC, "No space left on device")

    assert full.value.errno == errno.ENOSPC
    assert full.value.strerror == (
        "no room left on the cache's disk to write /warehouse/_temporary/0/part-0 (No space left on device); "
        "retry once room is freed"
    )
    with pytest.raises(PermissionError), disk_full_as("/x"):
        raise PermissionError(errno.EACCES, "Permission denied")


def test_webhdfs_answers_a_full_disk_with_a_retriable_exception_not_a_500():
    answer = error_response(DiskFullError(errno.ENOSPC, "no room left on the cache's disk to write /a"))

    assert answer.status == 503
    assert answer.body is not None
    assert json.loads(bytes(answer.body)) == {  # type: ignore[arg-type]
        "RemoteException": {
            "exception": "RetriableException",
            "javaClassName": "org.apache.hadoop.ipc.RetriableException",
            "message": "no room left on the cache's disk to write /a",
        }
    }


def test_the_s3_api_answers_a_full_disk_with_slow_down():
    message = "no room left on the cache's disk to write /a"
    error = as_s3_error(DiskFullError(errno.ENOSPC, message))

    assert (error.status, error.code, error.message) == (503, "SlowDown", message)
