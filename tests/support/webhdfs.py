"""A raw WebHDFS client for tests: paths go on the wire exactly as given, so traversal attempts reach the server."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit


@dataclass
class Reply:
    """One HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def exception(self) -> str | None:
        """The RemoteException's simple class name, if this is a WebHDFS error."""
        try:
            return self.json()["RemoteException"]["exception"]
        except (ValueError, KeyError, TypeError):
            return None


class WebHdfsClient:
    """Speaks WebHDFS to the cache at ``base_url`` over plain ``http.client``."""

    def __init__(self, base_url: str, user: str = "tester") -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.user = user

    def request(
        self, method: str, raw_path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """Send ``raw_path`` (path and query, unencoded by us) verbatim."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, raw_path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def call(self, method: str, path: str, op: str, body: bytes | None = None, **params: Any) -> Reply:
        """``method /webhdfs/v1<path>?op=<op>&user.name=...&<params>`` (params URL-encoded, path verbatim)."""
        query = urlencode({"op": op, "user.name": self.user, **{k: _text(v) for k, v in params.items()}})
        return self.request(method, f"/webhdfs/v1{path}?{query}", body=body)

    def status(self, path: str) -> Reply:
        return self.call("GET", path, "GETFILESTATUS")

    def list(self, path: str) -> list[str]:
        reply = self.call("GET", path, "LISTSTATUS")
        assert reply.status == 200, reply.body
        return [s["pathSuffix"] for s in reply.json()["FileStatuses"]["FileStatus"]]

    def summary(self, path: str) -> tuple[int, int, int]:
        """GETCONTENTSUMMARY of ``path``: its length, file count and directory count."""
        reply = self.call("GET", path, "GETCONTENTSUMMARY")
        assert reply.status == 200, reply.body
        found = reply.json()["ContentSummary"]
        return found["length"], found["fileCount"], found["directoryCount"]

    def create(self, path: str, data: bytes, overwrite: bool = False) -> Reply:
        """The two-step CREATE every Hadoop client does: a 307 to the data URL, then the bytes."""
        first = self.call("PUT", path, "CREATE", overwrite=overwrite)
        if first.status != 307:
            return first
        location = urlsplit(first.headers["location"])
        return self.request("PUT", f"{location.path}?{location.query}", body=data)

    def read(self, path: str, **params: Any) -> Reply:
        return self.call("GET", path, "OPEN", **params)

    def mkdirs(self, path: str) -> Reply:
        return self.call("PUT", path, "MKDIRS")

    def rename(self, src: str, dst: str) -> Reply:
        return self.call("PUT", src, "RENAME", destination=dst)

    def delete(self, path: str, recursive: bool = False) -> Reply:
        return self.call("DELETE", path, "DELETE", recursive=recursive)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
