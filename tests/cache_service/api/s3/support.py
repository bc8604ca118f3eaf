"""Clients of the cache's S3 API for tests: boto3 (path- and virtual-host-style) and raw signed HTTP requests.

Raw requests are signed by botocore's own SigV4 signer, independent of the cache's, and sent with ``http.client``
so that whatever a test builds (bad XML, odd keys, tampered signatures) reaches the server byte for byte.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from unittest import mock
from urllib.parse import urlsplit, urlunsplit
from xml.etree import ElementTree

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def s3_client(
    endpoint: str,
    *,
    virtual: bool = False,
    region: str = "us-east-1",
    access_key: str = "test",
    secret: str = "test",
    **config: Any,
) -> S3Client:
    """A boto3 client of the cache's S3 API at ``endpoint`` (``http://127.0.0.1:<port>``).

    ``virtual`` addresses buckets as ``<bucket>.localhost:<port>``; nothing here resolves ``*.localhost``, so such
    requests are sent to 127.0.0.1 with their ``Host`` header (and signature) left as they are.
    """
    if virtual:
        endpoint = endpoint.replace("127.0.0.1", "localhost")
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        config=Config(
            s3={"addressing_style": "virtual" if virtual else "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            **config,
        ),
    )
    if virtual:
        client.meta.events.register("before-send.s3", _send_to_loopback)
    return client


def _send_to_loopback(request: Any, **_: Any) -> None:
    url = urlsplit(request.url)
    if url.hostname and url.hostname.endswith(".localhost"):
        request.headers["Host"] = url.netloc
        request.url = urlunsplit(url._replace(netloc=f"127.0.0.1:{url.port}"))


@dataclass
class Reply:
    """One HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        """The S3 error code of an XML error body."""
        try:
            return ElementTree.fromstring(self.body).findtext("Code")
        except ElementTree.ParseError:
            return None

    def text(self, tag: str) -> str | None:
        """The text of the first element ``tag`` of the XML body (namespaces ignored)."""
        root = ElementTree.fromstring(self.body)
        for node in root.iter():
            if node.tag.rsplit("}", 1)[-1] == tag:
                return node.text
        return None


def send(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
    """Send exactly this request (path and query verbatim)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        all_headers = {"Host": parts.netloc, **(headers or {})}
        if body or method in ("PUT", "POST"):
            all_headers.setdefault("Content-Length", str(len(body)))
        for name, value in all_headers.items():
            connection.putheader(name, value)
        connection.endheaders(body or None)
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


class _S3Signer(SigV4Auth):
    def _normalize_url_path(self, path: str) -> str:
        return path  # S3 signs the path exactly as sent: "a/../b" is a key, not a path to resolve


def sign(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    access_key: str = "test",
    secret: str = "test",
    region: str = "us-east-1",
    content_sha256: str | None = None,
    at: datetime.datetime | None = None,
) -> dict[str, str]:
    """Headers (``headers`` plus Host, X-Amz-Date, X-Amz-Content-SHA256, Authorization) signing the request."""
    all_headers = {"Host": urlsplit(url).netloc, **(headers or {})}
    all_headers["X-Amz-Content-SHA256"] = content_sha256 or hashlib.sha256(body).hexdigest()
    request = AWSRequest(method=method, url=url, data=body, headers=all_headers)
    signer = _S3Signer(Credentials(access_key, secret), "s3", region)
    if at is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=at):
            signer.add_auth(request)
    return dict(request.headers.items())


def signed(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None, **how: Any) -> Reply:
    """Sign (see ``sign``) and send the request."""
    return send(method, url, body, sign(method, url, body, headers, **how))


def signing_key(secret: str, date: str, region: str = "us-east-1") -> bytes:
    """SigV4's derived key, computed here independently of the cache's code."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def aws_chunked(data: bytes, chunk: int, seed: str, amz_date: str, secret: str = "test") -> bytes:
    """``data`` framed as a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body, each chunk signed after ``seed``."""
    key = signing_key(secret, amz_date[:8])
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    empty = hashlib.sha256(b"").hexdigest()
    out, previous = [], seed
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for piece in pieces:
        text = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, empty, hashlib.sha256(piece).hexdigest()]
        )
        previous = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
        out.append(f"{len(piece):x};chunk-signature={previous}\r\n".encode() + piece + b"\r\n")
    return b"".join(out)


def streaming_put(
    url: str, data: bytes, *, tamper: bool = False, access_key: str = "test", secret: str = "test"
) -> Reply:
    """A PutObject of ``data`` as a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body in 8 KiB chunks (one byte run changed
    after signing if ``tamper``)."""
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    # The framed length depends only on the chunk sizes, so it is known before the seed signature exists.
    headers["Content-Length"] = str(len(aws_chunked(data, 8192, "0" * 64, "20000101T000000Z")))
    streaming = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    signed_headers = sign("PUT", url, b"", headers, access_key=access_key, secret=secret, content_sha256=streaming)
    seed = signed_headers["Authorization"].rsplit("Signature=", 1)[1]
    chunked = aws_chunked(data, 8192, seed, signed_headers["X-Amz-Date"], secret=secret)
    if tamper:
        chunked = chunked.replace(data[9000:9010], b"X" * 10, 1)
    return send("PUT", url, chunked, signed_headers)
