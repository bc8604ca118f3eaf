"""WebHDFS ops about the file system rather than a file's bytes: server defaults, capacity, access checks, quota
usage, and the HDFS features S3 has no counterpart for (extended attributes, ACLs, storage policies, snapshots,
symlinks, quotas, erasure coding, delegation tokens).

Queries of those features answer as HDFS answers for a file system that uses none of them: empty, not an error
(Hadoop's FsShell and fsspec ask them in passing). Changes to them answer ``UnsupportedOperationException`` with a
line that says what to do instead.
"""

from __future__ import annotations

import json
import re

from aiohttp import web

from cache_service.api.webhdfs.access import MountAccess
from cache_service.api.webhdfs.errors import JsonBody
from cache_service.api.webhdfs.file_status import BLOCK_SIZE
from cache_service.api.webhdfs.request import Handler, Routes, WebHdfsRequest
from cache_service.errors import UnsupportedOperationError
from cache_service.namespace.filesystem import CacheFileSystem

CRC32C = 2
"""``DataChecksum.Type.CRC32C``'s id, as ``FsServerDefaults.checksumType`` carries it."""
HOT_POLICY = 7
"""HDFS's default storage policy (HOT: every replica on DISK): the only one the cache has."""
_FSACTION = re.compile(r"[r-][w-][x-]")

_INSTEAD = {
    "SETXATTR": "S3 objects carry no extended attributes; keep such data in a file beside it instead (or as S3 "
    "metadata through the S3 API)",
    "REMOVEXATTR": "S3 objects carry no extended attributes: there is none to remove",
    "SETACL": "the cache has no ACLs; grant access per mount (`[[mounts]] users`) and per S3 user instead",
    "MODIFYACLENTRIES": "the cache has no ACLs; grant access per mount (`[[mounts]] users`) instead",
    "REMOVEACLENTRIES": "the cache has no ACLs: there are none to remove",
    "REMOVEDEFAULTACL": "the cache has no ACLs: there are none to remove",
    "REMOVEACL": "the cache has no ACLs: there are none to remove",
    "SETSTORAGEPOLICY": "the cache places data itself; pin hot paths with `cachectl pin` instead",
    "UNSETSTORAGEPOLICY": "the cache places data itself: there is no policy to unset",
    "SATISFYSTORAGEPOLICY": "the cache places data itself; warm a path with `cachectl load` instead",
    "CREATESYMLINK": "S3 has no symbolic links; write the target's path into a small file, or mount the prefix",
    "ALLOWSNAPSHOT": "S3 has no snapshots; enable S3 bucket versioning for point-in-time copies",
    "DISALLOWSNAPSHOT": "S3 has no snapshots: there is nothing to disallow",
    "CREATESNAPSHOT": "S3 has no snapshots; enable S3 bucket versioning for point-in-time copies",
    "RENAMESNAPSHOT": "S3 has no snapshots",
    "DELETESNAPSHOT": "S3 has no snapshots",
    "GETSNAPSHOTDIFF": "S3 has no snapshots; compare S3 object versions (bucket versioning) instead",
    "GETSNAPSHOTDIFFLISTING": "S3 has no snapshots; compare S3 object versions (bucket versioning) instead",
    "GETSNAPSHOTLIST": "S3 has no snapshots: there are none to list",
    "GETLINKTARGET": "S3 has no symbolic links: every path is a file or a directory",
    "SETQUOTA": "the cache has no quotas; bound what a job writes in the job, or with an S3 bucket policy",
    "SETQUOTABYSTORAGETYPE": "the cache has no quotas; bound what a job writes in the job, or with an S3 bucket policy",
    "GETECPOLICY": "S3 keeps its own redundancy: the cache has no erasure coding policies",
    "GETECPOLICIES": "S3 keeps its own redundancy: the cache has no erasure coding policies",
    "GETECCODECS": "S3 keeps its own redundancy: the cache has no erasure coding codecs",
    "ENABLEECPOLICY": "S3 keeps its own redundancy: the cache has no erasure coding policies",
    "DISABLEECPOLICY": "S3 keeps its own redundancy: the cache has no erasure coding policies",
    "SETECPOLICY": "S3 keeps its own redundancy: the cache has no erasure coding policies",
    "UNSETECPOLICY": "S3 keeps its own redundancy: the cache has no erasure coding policies",
    "GETTRASHROOTS": "the cache keeps no trash (trash interval 0): a delete is final, in S3 too",
    "GET_BLOCK_LOCATIONS": "use GETFILEBLOCKLOCATIONS, which names the workers serving each block",
    "GETDELEGATIONTOKEN": "the cache uses simple authentication (`user.name`): no token is needed, send none",
    "RENEWDELEGATIONTOKEN": "the cache uses simple authentication (`user.name`): no token is needed",
    "CANCELDELEGATIONTOKEN": "the cache uses simple authentication (`user.name`): no token is needed",
}
_METHODS = {
    "UNSETSTORAGEPOLICY": "POST",
    "UNSETECPOLICY": "POST",
    "DELETESNAPSHOT": "DELETE",
}
"""The HTTP method of each op in ``_INSTEAD`` whose name does not say it (``GET...`` ops are GETs, others PUTs)."""


def _policy() -> dict[str, object]:
    return {
        "id": HOT_POLICY,
        "name": "HOT",
        "storageTypes": ["DISK"],
        "creationFallbacks": [],
        "replicationFallbacks": ["ARCHIVE"],
        "copyOnCreateFile": False,
    }


class ServerInfoApi:
    """Handlers of the ops this module's docstring lists."""

    def __init__(self, fs: CacheFileSystem, access: MountAccess) -> None:
        self._fs = fs
        self._access = access

    def routes(self) -> Routes:
        """Handlers by HTTP method and op."""
        routes: Routes = {
            "GET": {
                "GETSERVERDEFAULTS": self._server_defaults,
                "GETSTATUS": self._fs_status,
                "CHECKACCESS": self._check_access,
                "GETQUOTAUSAGE": self._quota_usage,
                "GETTRASHROOT": self._trash_root,
                "GETXATTRS": self._xattrs,
                "LISTXATTRS": self._xattr_names,
                "GETACLSTATUS": self._acl_status,
                "GETSTORAGEPOLICY": self._storage_policy,
                "GETALLSTORAGEPOLICY": self._all_storage_policies,
                "GETSNAPSHOTTABLEDIRECTORYLIST": self._snapshottable_directories,
            },
            "PUT": {},
            "POST": {},
            "DELETE": {},
        }
        for op in _INSTEAD:
            routes[_METHODS.get(op, "GET" if op.startswith("GET") else "PUT")][op] = _unsupported(op)
        return routes

    async def _server_defaults(self, req: WebHdfsRequest) -> web.StreamResponse:
        return JsonBody(
            {
                "FsServerDefaults": {
                    "blockSize": BLOCK_SIZE,
                    "bytesPerChecksum": 512,
                    "writePacketSize": 65536,
                    "replication": 1,
                    "fileBufferSize": 4096,
                    "encryptDataTransfer": False,
                    "trashInterval": 0,  # no trash: a delete is a delete, in S3 too
                    "checksumType": CRC32C,
                    "keyProviderUri": "",
                    "defaultStoragePolicyId": HOT_POLICY,
                }
            }
        )

    async def _fs_status(self, req: WebHdfsRequest) -> web.StreamResponse:
        """The cache's own capacity: its disk tier (where pages and staged files live), or every tier without one."""
        pages = self._fs.pages
        media = ["disk"] if "disk" in pages.media() else pages.media()
        capacity = sum(pages.capacity(m) for m in media)
        used = sum(pages.used(m) for m in media)
        return JsonBody({"FsStatus": {"capacity": capacity, "used": used, "remaining": max(0, capacity - used)}})

    async def _check_access(self, req: WebHdfsRequest) -> web.StreamResponse:
        action = req.params.get("fsaction", "")
        if not _FSACTION.fullmatch(action):
            raise ValueError(f'Invalid value for webhdfs parameter "fsaction": {action!r} is not like "rwx" or "r--"')
        await self._fs.status(req.path)
        return web.Response(status=200, headers={"Content-Length": "0"})

    async def _quota_usage(self, req: WebHdfsRequest) -> web.StreamResponse:
        summary = await self._fs.content_summary(req.path, hidden=self._access.hidden(req.params))
        return JsonBody(
            {
                "QuotaUsage": {
                    "fileAndDirectoryCount": summary.files + summary.directories,
                    "quota": -1,
                    "spaceConsumed": summary.length,
                    "spaceQuota": -1,
                    "typeQuota": {},
                }
            }
        )

    async def _trash_root(self, req: WebHdfsRequest) -> web.StreamResponse:
        return JsonBody({"Path": f"/user/{req.user()}/.Trash"})

    async def _xattrs(self, req: WebHdfsRequest) -> web.StreamResponse:
        encoding = req.params.get("encoding", "")
        if encoding and encoding.lower() not in ("text", "hex", "base64"):
            raise ValueError(f'Invalid value for webhdfs parameter "encoding": {encoding!r}')
        await self._fs.status(req.path)
        return JsonBody({"XAttrs": []})

    async def _xattr_names(self, req: WebHdfsRequest) -> web.StreamResponse:
        await self._fs.status(req.path)
        return JsonBody({"XAttrNames": json.dumps([])})  # a JSON list inside a string, as HDFS sends it

    async def _acl_status(self, req: WebHdfsRequest) -> web.StreamResponse:
        st = await self._fs.status(req.path)
        return JsonBody(
            {
                "AclStatus": {
                    "entries": [],
                    "owner": req.user(),
                    "group": "supergroup",
                    "permission": "755" if st.is_dir else "644",
                    "stickyBit": False,
                }
            }
        )

    async def _storage_policy(self, req: WebHdfsRequest) -> web.StreamResponse:
        await self._fs.status(req.path)
        return JsonBody({"BlockStoragePolicy": _policy()})

    async def _all_storage_policies(self, req: WebHdfsRequest) -> web.StreamResponse:
        return JsonBody({"BlockStoragePolicies": {"BlockStoragePolicy": [_policy()]}})

    async def _snapshottable_directories(self, req: WebHdfsRequest) -> web.StreamResponse:
        return JsonBody({"SnapshottableDirectoryList": []})


def _unsupported(op: str) -> Handler:
    async def refuse(req: WebHdfsRequest) -> web.StreamResponse:
        raise UnsupportedOperationError(f"{op} is not supported by this cache: {_INSTEAD[op]}")

    return refuse
