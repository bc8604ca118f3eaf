"""The WebHDFS REST API (``/webhdfs/v1/<path>?op=...``): enough of HDFS for Hadoop's ``WebHdfsFileSystem``.

Requests are translated into ``CacheFileSystem`` calls, reads into ``ObjectReader`` ones; errors come back as
``RemoteException`` JSON (no Content-Type, see ``JsonBody``). Data flows as a stream both ways: OPEN never buffers a
whole file, CREATE spools the body to local disk as it arrives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from aiohttp import web
from yarl import URL

from cache_service.api.streaming import DataResponse, stream_body
from cache_service.api.webhdfs.access import MountAccess
from cache_service.api.webhdfs.errors import JsonBody, error_response
from cache_service.api.webhdfs.file_changes import FileChangesApi
from cache_service.api.webhdfs.file_status import BLOCK_SIZE, status_json
from cache_service.api.webhdfs.request import PREFIX, Handler, Routes, WebHdfsRequest, redirect_to_data
from cache_service.api.webhdfs.server_info import ServerInfoApi
from cache_service.api.webhdfs.staging_relay import StagingRelay
from cache_service.errors import UnsupportedOperationError
from cache_service.metrics import CacheMetrics
from cache_service.namespace.changes import FileChanges
from cache_service.namespace.filesystem import CacheFileSystem
from cache_service.namespace.paths import normalize, parse_raw_path
from cache_service.namespace.reads import ObjectReader

log = logging.getLogger(__name__)

LIST_BATCH = 1000
REDIRECTED = "redirected"
"""The parameter a worker adds when it redirects an ``OPEN`` to a block's owner: the owner then serves the read
(fetching blocks it does not own from their owners) instead of redirecting again, even if its ring disagrees."""
_CHANGING = frozenset({"PUT", "POST", "DELETE"})


class WebHdfsApi:
    """Routes and handlers of the WebHDFS API."""

    def __init__(
        self,
        fs: CacheFileSystem,
        reads: ObjectReader,
        metrics: CacheMetrics,
        relay: StagingRelay | None = None,
        access: MountAccess | None = None,
    ) -> None:
        self._fs = fs
        self._access = access or MountAccess(fs.mounts)
        self._relay = relay
        self._reads = reads
        self._metrics = metrics
        self._by_user = metrics.user_requests("webhdfs", self._access.user_names)
        self._ops: Routes = {
            "GET": {
                "GETFILESTATUS": self._get_file_status,
                "GETFILELINKSTATUS": self._get_file_status,  # no symbolic links: every path's own status
                "LISTSTATUS": self._list_status,
                "LISTSTATUS_BATCH": self._list_status_batch,
                "OPEN": self._open,
                "GETFILEBLOCKLOCATIONS": self._block_locations,
                "GETCONTENTSUMMARY": self._content_summary,
                "GETFILECHECKSUM": self._checksum,
                "GETHOMEDIRECTORY": self._home_directory,
            },
            "PUT": {
                "CREATE": self._create,
                "MKDIRS": self._mkdirs,
                "RENAME": self._rename,
                "SETPERMISSION": self._set_attribute,
                "SETOWNER": self._set_attribute,
                "SETTIMES": self._set_attribute,
                "SETREPLICATION": self._set_replication,
            },
            "DELETE": {"DELETE": self._delete},
            "POST": {},
        }
        for routes in (FileChangesApi(FileChanges(fs, reads)).routes(), ServerInfoApi(fs, self._access).routes()):
            for method, handlers in routes.items():
                self._ops[method].update(handlers)

    def add_routes(self, app: web.Application) -> None:
        """Mount the API under ``/webhdfs/v1``."""
        # [\s\S]: a decoded %0A must still reach the handler (and be refused there), not fall through the router.
        app.router.add_route("*", PREFIX + r"{tail:[\s\S]*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Validate the path and op, run the op, and map any error to a ``RemoteException``."""
        started = time.perf_counter()
        op = request.query.get("op", "").upper()
        try:
            raw = request.raw_path.split("?", 1)[0]
            if not raw.startswith(PREFIX):
                raise ValueError(f"Invalid path: {raw!r} is not under {PREFIX}")
            path = parse_raw_path(raw[len(PREFIX) :] or "/")
            handler = self._handler(request.method, op)
            if self._relay is None or not self._relay.from_worker(request):
                self._admit(request.method, op, path, request.query)  # where the request entered the cluster
            if self._relay is None:
                response = await handler(WebHdfsRequest(request, path))
            else:
                response = await self._relay.handle(request, path, op, lambda: handler(WebHdfsRequest(request, path)))
        except Exception as exc:  # every error becomes a RemoteException; none escapes as a stack trace
            response = error_response(exc)
        if request.method in _CHANGING:
            await self._fs.status_cache.settled()  # the other workers hear of a change before its caller does
        self._metrics.observe_request("webhdfs", op or "NONE", response.status, time.perf_counter() - started)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "request",
                extra={
                    "api": "webhdfs",
                    "method": request.method,
                    "op": op,
                    "path": request.path,
                    "status": response.status,
                    "seconds": round(time.perf_counter() - started, 6),
                },
            )
        return response

    def _admit(self, method: str, op: str, path: str, params: Mapping[str, str]) -> None:
        """``MountAccess.check``, each answer counted by user."""
        try:
            self._access.check(method, op, path, params)
        except PermissionError:
            self._by_user.count(self._access.caller(params), allowed=False)
            raise
        self._by_user.count(self._access.caller(params), allowed=True)

    def _handler(self, method: str, op: str) -> Handler:
        if not op:
            raise ValueError('Missing webhdfs parameter "op"')
        by_method = self._ops.get(method)
        if by_method is None:
            raise UnsupportedOperationError(f"HTTP method {method} is not supported by WebHDFS")
        handler = by_method.get(op)
        if handler is None:
            for other, ops in self._ops.items():
                if op in ops:
                    raise ValueError(f'Invalid value for webhdfs parameter "op": {op} is a {other} operation')
            raise UnsupportedOperationError(f"Operation {op} is not supported by this cache")
        return handler

    # --- metadata ----------------------------------------------------------------------------------------------

    async def _get_file_status(self, req: WebHdfsRequest) -> web.StreamResponse:
        st = await self._fs.status(req.path)
        return JsonBody({"FileStatus": status_json(st, "", req.user())})

    async def _list_status(self, req: WebHdfsRequest) -> web.StreamResponse:
        entries = await self._fs.list(req.path, hidden=self._access.hidden(req.params))
        user = req.user()
        items = [status_json(e, e.name if e.path != req.path else "", user) for e in entries]
        return JsonBody({"FileStatuses": {"FileStatus": items}})

    async def _list_status_batch(self, req: WebHdfsRequest) -> web.StreamResponse:
        start_after = req.params.get("startAfter", "")
        listed = await self._fs.list(req.path, hidden=self._access.hidden(req.params))
        entries = [e for e in listed if e.path == req.path or e.name > start_after]
        batch, remaining = entries[:LIST_BATCH], max(0, len(entries) - LIST_BATCH)
        user = req.user()
        items = [status_json(e, e.name if e.path != req.path else "", user) for e in batch]
        return JsonBody(
            {
                "DirectoryListing": {
                    "partialListing": {"FileStatuses": {"FileStatus": items}},
                    "remainingEntries": remaining,
                }
            }
        )

    async def _block_locations(self, req: WebHdfsRequest) -> web.StreamResponse:
        st = await self._fs.status(req.path)
        if st.is_dir:
            raise FileNotFoundError(f"Path is not a file: {req.path}")
        offset = req.long("offset", 0) or 0
        length = req.long("length", st.length)
        assert length is not None
        end = min(st.length, offset + length)
        blocks = self._reads.blocks(st, offset, end) if end > offset else []
        if blocks is None:  # a worker alone (or a staged file): every block is here
            here = req.http.host or "localhost"
            spans = [(start, min(BLOCK_SIZE, st.length - start)) for start in range(0, st.length, BLOCK_SIZE)]
            return JsonBody(
                {
                    "BlockLocations": {
                        "BlockLocation": [
                            _location(start, size, [here])
                            for start, size in spans
                            if start < end and start + size > offset
                        ]
                    }
                }
            )
        return JsonBody(
            {
                "BlockLocations": {
                    "BlockLocation": [
                        _location(b.start, b.end - b.start, [URL(m.webhdfs_url).authority for m in b.owners])
                        for b in blocks
                    ]
                }
            }
        )

    async def _content_summary(self, req: WebHdfsRequest) -> web.StreamResponse:
        summary = await self._fs.content_summary(req.path, hidden=self._access.hidden(req.params))
        return JsonBody(
            {
                "ContentSummary": {
                    "directoryCount": summary.directories,
                    "fileCount": summary.files,
                    "length": summary.length,
                    "quota": -1,
                    "spaceConsumed": summary.length,
                    "spaceQuota": -1,
                    "typeQuota": {},
                }
            }
        )

    async def _checksum(self, req: WebHdfsRequest) -> web.StreamResponse:
        algorithm, raw = await self._fs.checksum(req.path)
        return JsonBody({"FileChecksum": {"algorithm": algorithm, "bytes": raw.hex(), "length": len(raw)}})

    async def _home_directory(self, req: WebHdfsRequest) -> web.StreamResponse:
        return JsonBody({"Path": f"/user/{req.user()}"})

    # --- data --------------------------------------------------------------------------------------------------

    async def _open(self, req: WebHdfsRequest) -> web.StreamResponse:
        offset = req.long("offset", 0) or 0
        length = req.long("length", None)
        req.long("buffersize", None)
        if self._reads.router is not None and REDIRECTED not in req.params:
            # As a NameNode sends a reader to the DataNode holding the block, send it to the block's owner.
            owner = self._reads.owner_elsewhere(await self._fs.status(req.path), offset)
            if owner is not None:
                location = owner.webhdfs_url + str(req.http.rel_url.update_query({REDIRECTED: "true"}))
                return web.Response(status=307, headers={"Location": location, "Content-Length": "0"})
        read = await self._reads.open(req.path, offset, length)
        response = DataResponse(status=200, headers={"Content-Type": "application/octet-stream"})
        response.content_length = read.count
        return await stream_body(req.http, response, read.first, read.rest, what=f"webhdfs: OPEN of {req.path}")

    async def _create(self, req: WebHdfsRequest) -> web.StreamResponse:
        overwrite = req.flag("overwrite", False)
        req.octal("permission")
        req.long("blocksize", None)
        req.long("buffersize", None)
        replication = req.long("replication", None)
        del replication
        if not req.has_data():
            self._fs.mounts.resolve(req.path)  # fail now for paths outside every mount
            return redirect_to_data(req)
        st = await self._fs.create(req.path, req.body(), overwrite=overwrite)
        host = req.http.host or "localhost"
        return web.Response(status=201, headers={"Location": f"webhdfs://{host}{st.path}", "Content-Length": "0"})

    # --- namespace changes -------------------------------------------------------------------------------------

    async def _mkdirs(self, req: WebHdfsRequest) -> web.StreamResponse:
        req.octal("permission")
        return JsonBody({"boolean": await self._fs.mkdirs(req.path)})

    async def _rename(self, req: WebHdfsRequest) -> web.StreamResponse:
        destination = req.params.get("destination")
        if not destination:
            raise ValueError('Missing webhdfs parameter "destination"')
        if not destination.startswith("/"):
            raise ValueError(f'Invalid value for webhdfs parameter "destination": {destination!r} is not absolute')
        return JsonBody({"boolean": await self._fs.rename(req.path, normalize(destination))})

    async def _delete(self, req: WebHdfsRequest) -> web.StreamResponse:
        recursive = req.flag("recursive", False)
        return JsonBody({"boolean": await self._fs.delete(req.path, recursive=recursive)})

    async def _set_attribute(self, req: WebHdfsRequest) -> web.StreamResponse:
        req.octal("permission")
        for name in ("modificationtime", "accesstime"):
            text = req.params.get(name)
            if text not in (None, "", "-1"):
                req.long(name, None)
        await self._fs.status(req.path)
        return web.Response(status=200, headers={"Content-Length": "0"})

    async def _set_replication(self, req: WebHdfsRequest) -> web.StreamResponse:
        req.long("replication", None)
        st = await self._fs.status(req.path)
        return JsonBody({"boolean": not st.is_dir})


def _location(start: int, size: int, names: list[str]) -> dict[str, object]:
    """One ``BlockLocation``: the block at ``start`` and the workers (``host:port``) that serve it, owner first."""
    return {
        "offset": start,
        "length": size,
        "corrupt": False,
        "hosts": [name.rsplit(":", 1)[0] for name in names],
        "names": names,
        "cachedHosts": [],
        "topologyPaths": [f"/default-rack/{name}" for name in names],
        "storageIds": ["lakecache"] * len(names),
        "storageTypes": ["DISK"] * len(names),
    }
