"""The clients of the crash consistency campaign: each writes its own keys, as fast as it is answered.

A writer mixes what jobs do to the cache: WebHDFS CREATE (two steps) of new and existing files, APPEND, jobs that
stage files under ``_temporary`` and publish them by RENAME as Spark's committer does, S3 PutObject and multipart
uploads (boto3 on the S3 port). A write is acknowledged when its answer is a success (2xx, and ``true`` for a
RENAME); an exception, a timeout or any other answer leaves it unacknowledged, and the writer leaves that key (or
that job) alone from then on. Every write goes to a worker picked at random (a multipart upload to one worker
throughout): a dead worker's writes fail at once and count as unacknowledged. boto3 makes one attempt of each
request: one attempt is one write.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from bench.reliability.history import History, StagedFile, digest, running_digest
from infra.s3_emulator import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MOUNT = "/lake"
"""The cache path every writer writes under, mounted on the bucket's ``lake/`` prefix."""
MIN_PART = 5 * 1024**2
TIMEOUT = 30.0


class UnavailableError(RuntimeError):
    """A worker answered 503: the request may succeed if sent again."""


@dataclass(frozen=True)
class Endpoint:
    """One worker as the writers see it: its WebHDFS and S3 URLs."""

    webhdfs_url: str
    s3_url: str


def s3_key(path: str) -> str:
    """The S3 key (in the campaign's bucket) of cache path ``path``."""
    return "lake" + path.removeprefix(MOUNT)


def webhdfs(url: str, method: str, path: str, op: str, body: bytes | None = None, **params: str) -> tuple[int, Any]:
    """One WebHDFS request to the worker at ``url``, following a two-step write's redirect with ``body``.

    Returns the final status and its JSON answer (None if empty). Raises ``OSError`` and ``http.client`` errors.
    """
    query = urlencode({"op": op, "user.name": "chaos", **params})
    status, headers, text = http_request(url, method, f"/webhdfs/v1{path}?{query}", None)
    if status == 307 and body is not None:
        location = urlsplit(headers["location"])
        status, headers, text = http_request(
            f"http://{location.netloc}", method, f"{location.path}?{location.query}", body
        )
    return status, (json.loads(text) if text else None)


def read_file(url: str, path: str) -> bytes | None:
    """The bytes of cache path ``path`` read through the worker at ``url`` (redirects followed); None if absent.

    Raises ``UnavailableError`` on a 503, ``RuntimeError`` on any other answer than 200 or 404.
    """
    target = f"/webhdfs/v1{path}?op=OPEN&user.name=chaos"
    for _ in range(4):
        status, headers, body = http_request(url, "GET", target, None)
        if status == 307:
            location = urlsplit(headers["location"])
            url, target = f"http://{location.netloc}", f"{location.path}?{location.query}"
        elif status == 404:
            return None
        elif status == 503:
            raise UnavailableError(f"OPEN {path} through {url} answered 503: {body[:300]!r}")
        elif status != 200:
            raise RuntimeError(f"OPEN {path} through {url} answered {status}: {body[:300]!r}")
        else:
            return body
    raise RuntimeError(f"OPEN {path}: too many redirects")


def http_request(url: str, method: str, target: str, body: bytes | None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to ``url`` (scheme and authority) for ``target`` (path and query); status, headers, body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=TIMEOUT)
    try:
        conn.request(method, target, body=body)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@dataclass
class _Published:
    """A file of this writer's in S3 it may still write: its path and the running digest of its bytes."""

    path: str
    hasher: Any
    size: int


class Writer:
    """Client ``index``: writes through ``endpoints`` into ``bucket`` until ``stop`` is set, recording in
    ``history``."""

    def __init__(
        self, index: int, endpoints: Sequence[Endpoint], bucket: str, history: History, stop: threading.Event
    ) -> None:
        self.index = index
        self.endpoints = list(endpoints)
        self.bucket = bucket
        self.history = history
        self.stop = stop
        self.rng = random.Random(index)
        self._seq = 0
        self._files: list[_Published] = []
        self._objects: list[str] = []
        self._s3 = {e.s3_url: s3_client(e.s3_url, attempts=1) for e in self.endpoints}
        self._ops: list[tuple[int, Callable[[], None]]] = [
            (25, self.create),
            (10, self.overwrite),
            (15, self.append),
            (20, self.put_object),
            (8, self.multipart),
            (22, self.staged_job),
        ]

    def run(self) -> None:
        """Write until ``stop`` is set."""
        weights = [w for w, _ in self._ops]
        while not self.stop.is_set():
            self.rng.choices([op for _, op in self._ops], weights)[0]()

    # --- bodies -------------------------------------------------------------------------------------------------

    def _body(self, size: int | None = None) -> bytes:
        """Bytes no other write sends: this write's name, then random bytes."""
        self._seq += 1
        if size is None:
            roll = self.rng.random()
            size = self.rng.randrange(1, 64 << 10) if roll < 0.7 else self.rng.randrange(64 << 10, 1 << 20)
            size = self.rng.randrange(1 << 20, 3 << 20) if roll > 0.97 else size
        return f"writer {self.index} write {self._seq}\n".encode() + self.rng.randbytes(size)

    def _endpoint(self) -> Endpoint:
        return self.rng.choice(self.endpoints)

    def _failed(self) -> None:
        time.sleep(self.rng.uniform(0.05, 0.2))  # a dead worker answers at once: do not spin on it

    def _attempt(self, send: Callable[..., bool], *args: Any, **params: str) -> bool:
        """Run one write, ``send(*args, **params)``; True if it was acknowledged."""
        try:
            acknowledged = send(*args, **params)
        except Exception:  # any failure, whatever it is, leaves the write unacknowledged
            acknowledged = False
        if not acknowledged:
            self._failed()
        return acknowledged

    # --- WebHDFS writes of published files -------------------------------------------------------------------

    def create(self) -> None:
        """CREATE a new file (write-through)."""
        path = f"{MOUNT}/webhdfs/w{self.index}/f{self._seq + 1}.bin"
        body = self._body()
        ok = self._attempt(_answered, 201, self._endpoint().webhdfs_url, "PUT", path, "CREATE", body)
        self.history.record(s3_key(path), "CREATE", digest(body), len(body), ok)
        if ok:
            self._files.append(_Published(path, running_digest(body), len(body)))

    def overwrite(self) -> None:
        """CREATE with ``overwrite=true`` over one of this writer's files."""
        if not self._files:
            return self.create()
        file = self._files.pop(self.rng.randrange(len(self._files)))
        body = self._body()
        url = self._endpoint().webhdfs_url
        ok = self._attempt(_answered, 201, url, "PUT", file.path, "CREATE", body, overwrite="true")
        self.history.record(s3_key(file.path), "CREATE overwrite", digest(body), len(body), ok)
        if ok:
            self._files.append(_Published(file.path, running_digest(body), len(body)))
        return None

    def append(self) -> None:
        """APPEND to one of this writer's files: the object becomes its old bytes and the new ones."""
        if not self._files:
            return self.create()
        file = self._files.pop(self.rng.randrange(len(self._files)))
        body = self._body(self.rng.randrange(1, 32 << 10))
        hasher = file.hasher.copy()
        hasher.update(body)
        url = self._endpoint().webhdfs_url
        ok = self._attempt(_answered, 200, url, "POST", file.path, "APPEND", body)
        self.history.record(s3_key(file.path), "APPEND", hasher.hexdigest(), file.size + len(body), ok)
        if ok:
            self._files.append(_Published(file.path, hasher, file.size + len(body)))
        return None

    # --- S3 writes ----------------------------------------------------------------------------------------------

    def put_object(self) -> None:
        """PutObject of a new key, or over one of this writer's objects."""
        reuse = self._objects and self.rng.random() < 0.3
        key = self._objects.pop(self.rng.randrange(len(self._objects))) if reuse else self._new_key()
        body = self._body()
        client = self._s3[self._endpoint().s3_url]
        ok = self._attempt(lambda: _ok(client.put_object(Bucket=self.bucket, Key=key, Body=body)))
        self.history.record(key, "PutObject", digest(body), len(body), ok)
        if ok:
            self._objects.append(key)

    def multipart(self) -> None:
        """A multipart upload of one part, or of a 5 MiB part and a small last one, all through one worker."""
        key = self._new_key()
        parts = [self._body(self.rng.randrange(1, 512 << 10))]
        if self.rng.random() < 0.25:
            parts = [self._body(MIN_PART), self._body(self.rng.randrange(1, 256 << 10))]
        client = self._s3[self._endpoint().s3_url]

        def send() -> bool:
            upload = client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            done: list[CompletedPartTypeDef] = []
            for number, part in enumerate(parts, 1):
                answer = client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=number, Body=part)
                done.append({"PartNumber": number, "ETag": answer["ETag"]})
            finished = client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
            )
            return _ok(finished)

        ok = self._attempt(send)
        body = b"".join(parts)
        self.history.record(key, "CompleteMultipartUpload", digest(body), len(body), ok)
        if ok:
            self._objects.append(key)

    def _new_key(self) -> str:
        return f"lake/s3/w{self.index}/o{self._seq + 1}.bin"

    # --- staged output, published by RENAME ---------------------------------------------------------------------

    def staged_job(self) -> None:
        """A job's output as Spark's committer writes it: files under the task attempt's ``_temporary`` folder, the
        task commit (a RENAME within staging), the job commit (a RENAME of each file to the output folder, which
        publishes it), then ``_temporary`` deleted and ``_SUCCESS`` written. A step not acknowledged ends the job."""
        out = f"{MOUNT}/jobs/w{self.index}-j{self._seq + 1}"
        attempt, task = f"{out}/_temporary/0/_temporary/attempt_0", f"{out}/_temporary/0/task_0"
        files = []
        for n in range(self.rng.randint(1, 3)):
            body = self._body()
            name = f"part-{n:05d}.bin"
            url = self._endpoint().webhdfs_url
            ok = self._attempt(_answered, 201, url, "PUT", f"{attempt}/{name}", "CREATE", body)
            staged = StagedFile(
                s3_key(f"{out}/{name}"), f"{out}/{name}", [f"{attempt}/{name}"], digest(body), len(body), ok
            )
            self.history.record_staged(staged)
            if not ok:
                return
            files.append((name, staged))
        ok = self._attempt(_renamed, self._endpoint().webhdfs_url, attempt, task)
        self.history.record_rename("RENAME task commit", ok)
        for name, staged in files:
            staged.staged_paths.append(f"{task}/{name}")
        if not ok:
            return
        for name, staged in files:
            ok = self._attempt(_renamed, self._endpoint().webhdfs_url, f"{task}/{name}", staged.published_path)
            self.history.publish(staged, ok)
            if not ok:
                return
        url = self._endpoint().webhdfs_url
        if not self._attempt(_answered, 200, url, "DELETE", f"{out}/_temporary", "DELETE", recursive="true"):
            return
        ok = self._attempt(_answered, 201, self._endpoint().webhdfs_url, "PUT", f"{out}/_SUCCESS", "CREATE", b"")
        self.history.record(s3_key(f"{out}/_SUCCESS"), "CREATE", digest(b""), 0, ok)


def _answered(
    expected: int, url: str, method: str, path: str, op: str, body: bytes | None = None, **params: str
) -> bool:
    return webhdfs(url, method, path, op, body, **params)[0] == expected


def _renamed(url: str, source: str, destination: str) -> bool:
    status, answer = webhdfs(url, "PUT", source, "RENAME", destination=destination)
    return status == 200 and bool(answer and answer.get("boolean"))


def _ok(answer: Any) -> bool:
    return 200 <= int(answer["ResponseMetadata"]["HTTPStatusCode"]) < 300
