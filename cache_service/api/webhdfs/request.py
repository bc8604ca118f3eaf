"""A WebHDFS request as the handlers see it: its cache path, its caller and its typed, validated parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from aiohttp import web

from cache_service.api.webhdfs.errors import JsonBody

PREFIX = "/webhdfs/v1"

Handler = Callable[["WebHdfsRequest"], Awaitable[web.StreamResponse]]
Routes = dict[str, dict[str, Handler]]
"""Handlers by HTTP method, then by op."""


def caller(params: Mapping[str, str], anonymous: str = "lakecache") -> str:
    """Whom a request acts as (HDFS simple auth): ``doas`` when given (HDFS's effective user), else ``user.name``,
    else ``anonymous``."""
    return params.get("doas") or params.get("user.name") or anonymous


class WebHdfsRequest:
    """One request: its cache path and typed, validated parameters."""

    def __init__(self, request: web.Request, path: str) -> None:
        self.http = request
        self.path = path
        self.params = request.query

    def user(self) -> str:
        """The caller's ``user.name`` (HDFS simple auth)."""
        return caller(self.params)

    def long(self, name: str, default: int | None) -> int | None:
        """A non-negative integer parameter. Raises ``ValueError`` naming it."""
        text = self.params.get(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f'Invalid value for webhdfs parameter "{name}": {text!r} is not a number') from None
        if value < 0:
            raise ValueError(f'Invalid value for webhdfs parameter "{name}": {value} is negative')
        return value

    def flag(self, name: str, default: bool) -> bool:
        """A boolean parameter ("true"/"false", any case). Raises ``ValueError`` naming it."""
        text = self.params.get(name)
        if text is None or text == "":
            return default
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ValueError(f'Invalid value for webhdfs parameter "{name}": {text!r} is not true or false')

    def has_data(self) -> bool:
        """True for the data step of a two-step write (CREATE, APPEND): a body, or ``data=true``."""
        http = self.http
        has_body = (http.can_read_body and (http.content_length or 0) > 0) or self.flag("data", False)
        return has_body or http.headers.get("Transfer-Encoding", "").lower() == "chunked"

    def data_location(self) -> str:
        """The URL of a two-step write's data step: this request's with ``data=true``."""
        url = self.http.url.update_query({"data": "true"})
        return f"http://{self.http.host or 'localhost'}{url.raw_path_qs}"

    async def body(self) -> AsyncIterator[bytes]:
        """The request's body, as it arrives."""
        async for chunk in self.http.content.iter_chunked(1 << 20):
            yield chunk

    def octal(self, name: str) -> None:
        """Validate an octal permission parameter (accepted and ignored: S3 has no modes)."""
        text = self.params.get(name)
        if text is not None and text != "":
            try:
                value = int(text, 8)
            except ValueError:
                raise ValueError(f'Invalid value for webhdfs parameter "{name}": {text!r} is not octal') from None
            if not 0 <= value <= 0o1777:
                raise ValueError(f'Invalid value for webhdfs parameter "{name}": {text!r} is out of range')


def redirect_to_data(req: WebHdfsRequest) -> web.Response:
    """The first step of a two-step write (CREATE, APPEND): where to send the bytes (a 307, or JSON for
    ``noredirect=true``), as a NameNode names the DataNode to write to."""
    location = req.data_location()
    if req.flag("noredirect", False):
        return JsonBody({"Location": location})
    return web.Response(status=307, headers={"Location": location, "Content-Length": "0"})
