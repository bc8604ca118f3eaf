"""WebHDFS ops that change a file's bytes after it was written: APPEND, TRUNCATE and CONCAT.

APPEND is a two-step write like CREATE: the request without data is answered with a 307 to the same URL with
``data=true``, where the client sends the bytes. The changes themselves are ``FileChanges``'s: a published file
becomes a new S3 object version, written through; a staged file changes on the cache's disk.
"""

from __future__ import annotations

from aiohttp import web

from cache_service.api.webhdfs.errors import JsonBody
from cache_service.api.webhdfs.request import Routes, WebHdfsRequest, redirect_to_data
from cache_service.namespace.changes import FileChanges
from cache_service.namespace.paths import normalize


class FileChangesApi:
    """Handlers of APPEND, TRUNCATE and CONCAT (all POST)."""

    def __init__(self, changes: FileChanges) -> None:
        self._changes = changes

    def routes(self) -> Routes:
        """Handlers by HTTP method and op."""
        return {"POST": {"APPEND": self._append, "TRUNCATE": self._truncate, "CONCAT": self._concat}}

    async def _append(self, req: WebHdfsRequest) -> web.StreamResponse:
        req.long("buffersize", None)
        if not req.has_data():
            # Fail now for a missing file or a directory, as a NameNode does; the data step asks S3 for the rest.
            await self._changes.file(req.path, current=False)
            return redirect_to_data(req)
        await self._changes.append(req.path, req.body())
        return web.Response(status=200, headers={"Content-Length": "0"})

    async def _truncate(self, req: WebHdfsRequest) -> web.StreamResponse:
        if req.params.get("newlength", "") == "":
            raise ValueError('Missing webhdfs parameter "newlength"')
        new_length = req.long("newlength", None)
        assert new_length is not None
        await self._changes.truncate(req.path, new_length)
        return JsonBody({"boolean": True})

    async def _concat(self, req: WebHdfsRequest) -> web.StreamResponse:
        text = req.params.get("sources", "")
        sources = [s for s in text.split(",") if s]
        for source in sources:
            if not source.startswith("/"):
                raise ValueError(f'Invalid value for webhdfs parameter "sources": {source!r} is not absolute')
        await self._changes.concat(req.path, [normalize(s) for s in sources])
        return web.Response(status=200, headers={"Content-Length": "0"})
