"""What the cache served, checked against S3's own bytes: the check behind "no corrupt or truncated page is served";
and the two ways the fault campaigns talk to a worker, ``webhdfs`` and ``metric_samples``.

``check_read`` reads a byte range of a file through a worker's WebHDFS port (``OPEN`` with ``offset`` and
``length``, redirects followed) and the same range of its object straight from S3 (the emulator, conditioned on the
ETag seen first), and names the outcome:

- ``same``: the cache's bytes are S3's;
- ``different`` or ``short``: a 200 whose body is not S3's bytes, or ends early while the answer looked whole: the
  cache served what S3 does not hold, the one outcome no fault may cause;
- ``refused``: an error answer (a 503 ``RetriableException`` while S3 fails: the client knows to retry);
- ``broken``: the connection broke before the body was whole (the client sees the failure, it is not misled);
- ``changed``: the object changed in S3 meanwhile, so there is nothing to compare.
"""

from __future__ import annotations

import http.client
import json
import urllib.request
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

WRONG = frozenset({"different", "short"})
"""The outcomes that break the guarantee."""
TIMEOUT = 60.0


def webhdfs(url: str, method: str, path: str, op: str, body: bytes | None = None, **params: str) -> tuple[int, bytes]:
    """One WebHDFS request to the worker at ``url``, following redirects (with ``body``, as the second step of a
    two-step write); the final status and body.

    Raises ``OSError`` or ``http.client.HTTPException`` when the connection fails or breaks before the body announced
    is whole.
    """
    target = f"/webhdfs/v1{path}?" + urlencode({"op": op, "user.name": "chaos", **params})
    send = None  # a write's body goes where the first answer redirects it
    for _ in range(4):
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=TIMEOUT)
        try:
            connection.request(method, target, body=send)
            response = connection.getresponse()
            answer = response.read()
        finally:
            connection.close()
        if response.status != 307:
            return response.status, answer
        location = urlsplit(response.headers["Location"])
        url, target, send = f"http://{location.netloc}", f"{location.path}?{location.query}", body
    raise http.client.HTTPException(f"{op} {path}: too many redirects")


def metric_samples(webhdfs_url: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric ``name`` on the worker's ``/metrics``: labels and value of each."""
    with urllib.request.urlopen(f"{webhdfs_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def check_read(
    webhdfs_url: str, s3: S3Client, bucket: str, key: str, path: str, offset: int = 0, length: int | None = None
) -> str:
    """Read ``[offset, offset + length)`` of ``path`` (whose object is ``bucket``/``key``) through the cache and from
    S3; returns the outcome's name (see the module's docstring). ``length`` None reads to the end."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return "changed"
    size = head["ContentLength"]
    length = size - offset if length is None else min(length, size - offset)
    try:
        status, served = webhdfs(webhdfs_url, "GET", path, "OPEN", offset=str(offset), length=str(length))
    except (OSError, http.client.HTTPException):
        return "broken"
    if status != 200:
        return "refused"
    if length <= 0:
        return "same" if not served else "different"
    try:
        expected = s3.get_object(
            Bucket=bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}", IfMatch=head["ETag"]
        )["Body"].read()
    except ClientError:
        return "changed"
    if served == expected:
        return "same"
    if len(served) < len(expected) and expected.startswith(served):
        return "short"
    return "different"


def refusal(status: int, body: bytes) -> tuple[str, str]:
    """The ``(exception, javaClassName)`` of a WebHDFS ``RemoteException`` answer; empty strings when it is none."""
    try:
        remote = json.loads(body)["RemoteException"]
        return str(remote["exception"]), str(remote["javaClassName"])
    except (ValueError, KeyError, TypeError):
        return "", ""


def headline_first(counts: dict[str, int], headline: tuple[str, ...]) -> dict[str, int]:
    """``counts`` with the ``headline`` ones first (0 when missing), in that order: a report's summary shows the
    first few."""
    return {**{name: counts.get(name, 0) for name in headline}, **counts}
