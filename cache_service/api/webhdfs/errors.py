"""HDFS-shaped errors: the ``RemoteException`` JSON that Hadoop's WebHDFS client turns back into Java exceptions."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from cache_service.errors import (
    DirectoryNotEmptyError,
    DiskFullError,
    StagedDataError,
    StaleObjectError,
    UnderStoreUnavailableError,
    UnsupportedOperationError,
)

log = logging.getLogger(__name__)

_JAVA_CLASSES = {
    "FileNotFoundException": "java.io.FileNotFoundException",
    "FileAlreadyExistsException": "org.apache.hadoop.fs.FileAlreadyExistsException",
    "ParentNotDirectoryException": "org.apache.hadoop.fs.ParentNotDirectoryException",
    "PathIsNotEmptyDirectoryException": "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException",
    "AccessControlException": "org.apache.hadoop.security.AccessControlException",
    "IllegalArgumentException": "java.lang.IllegalArgumentException",
    "UnsupportedOperationException": "java.lang.UnsupportedOperationException",
    "IOException": "java.io.IOException",
    "RetriableException": "org.apache.hadoop.ipc.RetriableException",
}


def json_payload(payload: object) -> bytes:
    """A WebHDFS JSON body: compact, UTF-8."""
    return json.dumps(payload, separators=(",", ":")).encode()


class JsonBody(web.Response):
    """A JSON response with no Content-Type header.

    The Hadoop client shaded into pyspark lacks Jersey's ``RuntimeDelegateImpl`` and throws while parsing any
    WebHDFS JSON response that carries a Content-Type; aiohttp would add one, so this class removes it again.
    """

    def __init__(self, payload: object, status: int = 200) -> None:
        super().__init__(body=json_payload(payload), status=status)

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self._headers.popall("Content-Type", None)


def remote_exception(status: int, exception: str, message: str) -> JsonBody:
    """A WebHDFS error response for Java exception ``exception`` (simple name)."""
    body = {
        "RemoteException": {
            "exception": exception,
            "javaClassName": _JAVA_CLASSES.get(exception, "java.io.IOException"),
            "message": message,
        }
    }
    return JsonBody(body, status=status)


def error_response(exc: BaseException) -> JsonBody:
    """Map an error raised inside the service to its WebHDFS answer; unexpected ones are logged, not shown."""
    match exc:
        case FileNotFoundError() | IsADirectoryError():
            return remote_exception(404, "FileNotFoundException", str(exc))
        case FileExistsError():
            return remote_exception(403, "FileAlreadyExistsException", str(exc))
        case NotADirectoryError():
            return remote_exception(403, "ParentNotDirectoryException", str(exc))
        case DirectoryNotEmptyError():
            return remote_exception(403, "PathIsNotEmptyDirectoryException", str(exc))
        case StagedDataError() | PermissionError():
            return remote_exception(403, "AccessControlException", str(exc))
        case UnsupportedOperationError():
            return remote_exception(400, "UnsupportedOperationException", str(exc))
        case ValueError():
            return remote_exception(400, "IllegalArgumentException", str(exc))
        case UnderStoreUnavailableError():
            return remote_exception(503, "RetriableException", str(exc))
        case DiskFullError():  # Hadoop's client (and its failover policy) retries a RetriableException
            return remote_exception(503, "RetriableException", exc.strerror or str(exc))
        case StaleObjectError():
            return remote_exception(503, "RetriableException", f"{exc}; retry the read")
        case ConnectionError():  # another worker of the cluster did not answer
            return remote_exception(503, "RetriableException", str(exc))
    log.error("webhdfs: unexpected error", exc_info=exc)
    return remote_exception(500, "IOException", f"internal error ({type(exc).__name__}); see the cache's log")
