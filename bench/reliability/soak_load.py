"""The clients of the soak: threads sending a steady mix of reads and writes through every worker in rotation.

Each ``LoadClient`` picks an operation (weights in ``MIX``) and a worker from the ``Rotation`` for every request:
ranges of warm and cold objects read through WebHDFS ``OPEN`` and S3 ``GetObject``, their bytes checked against
``pattern``; WebHDFS ``CREATE`` and S3 ``PutObject`` over a bounded set of keys of its own (so S3 does not grow
over a long soak), each read back now and then through another worker and compared; and staged jobs (a ``CREATE``
under ``_temporary``, a publishing ``RENAME``, the ``DELETE`` of ``_temporary``).

A request answered ``503`` (a worker joining or draining refuses what it cannot do yet, as ``RetriableException``
or ``SlowDown``) is sent again, after 0.25 s and then longer, up to ``ATTEMPTS`` times, as Hadoop's client and
boto3 do: if it then succeeds it counts as *retried*, not failed. Every other answer than the expected one, an
exception (a connection refused or reset included) or bytes other than those written is a failure, at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from botocore.exceptions import ClientError

from bench.reliability.history import digest
from bench.reliability.writers import MOUNT, Endpoint, http_request, s3_key, webhdfs
from infra.s3_emulator import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ATTEMPTS = 8
MIX: dict[str, int] = {
    "warm OPEN": 25,
    "warm GetObject": 25,
    "cold OPEN": 8,
    "cold GetObject": 8,
    "CREATE": 10,
    "PutObject": 10,
    "read back": 8,
    "staged job": 6,
}
"""Operations by weight: mostly warm reads, as a cache's day is."""
KEYS_PER_CLIENT = 24
"""Keys each client writes over and over (WebHDFS and S3 alike), and staged jobs' output folders."""


def pattern(index: int, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of data set object ``index``: big-endian 8-byte words ``index << 40 | word``, so any
    range of any object can be checked without keeping the object."""
    first, last = start // 8, (end + 7) // 8
    words = np.arange(first, last, dtype=np.uint64) | np.uint64(index << 40)
    return words.astype(">u8").tobytes()[start - first * 8 : end - first * 8]


@dataclass(frozen=True)
class DataSet:
    """The objects the readers read: ``warm`` of them read from the start (and kept warm by the load), ``cold`` more
    read now and then (more than the cluster's tiers hold), each ``size`` bytes of ``pattern``, at ``path(i)``."""

    warm: int
    cold: int
    size: int

    def folder(self, *, warm: bool) -> str:
        """The cache path of the folder of the warm objects, or of the cold ones."""
        return f"{MOUNT}/data/{'warm' if warm else 'cold'}"

    def path(self, index: int) -> str:
        """The cache path of object ``index`` (warm objects first)."""
        return f"{self.folder(warm=index < self.warm)}/part-{index:04d}.bin"

    def body(self, index: int) -> bytes:
        """The whole of object ``index``."""
        return pattern(index, 0, self.size)


class Rotation:
    """The workers clients send requests to, like a load balancer's pool: ``remove`` takes one out (it gets no new
    request) and ``idle`` says when its requests in flight have ended; ``add`` puts it back."""

    def __init__(self, endpoints: list[Endpoint]) -> None:
        self._lock = threading.Lock()
        self._endpoints = list(endpoints)
        self._in_flight: dict[str, int] = {e.webhdfs_url: 0 for e in endpoints}

    @contextmanager
    def pick(self, rng: random.Random) -> Iterator[Endpoint]:
        """A worker in rotation, counted in flight until the block ends."""
        with self._lock:
            endpoint = rng.choice(self._endpoints)
            self._in_flight[endpoint.webhdfs_url] += 1
        try:
            yield endpoint
        finally:
            with self._lock:
                self._in_flight[endpoint.webhdfs_url] -= 1

    def remove(self, endpoint: Endpoint) -> None:
        """Send ``endpoint`` no new request."""
        with self._lock:
            self._endpoints.remove(endpoint)

    def add(self, endpoint: Endpoint) -> None:
        """Send ``endpoint`` requests again."""
        with self._lock:
            self._endpoints.append(endpoint)
            self._in_flight.setdefault(endpoint.webhdfs_url, 0)

    def idle(self, endpoint: Endpoint) -> bool:
        """True when no request to ``endpoint`` is in flight."""
        with self._lock:
            return self._in_flight[endpoint.webhdfs_url] == 0


@dataclass
class Timeline:
    """Every request's end (seconds since ``started``), latency (s, retries included), operation and outcome, and
    one example per kind of failure (thread-safe)."""

    started: float = field(default_factory=time.monotonic)
    requests: list[tuple[float, float, str, bool]] = field(default_factory=list)
    retried: int = 0
    retried_by_op: dict[str, int] = field(default_factory=dict)
    wrong: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        """Seconds since the soak started."""
        return time.monotonic() - self.started

    def record(self, op: str, began: float, ok: bool, retried: bool, failure: str = "", wrong: bool = False) -> None:
        """A request of ``op`` sent at ``began`` (``time.monotonic()``) has ended."""
        ended = time.monotonic()
        with self.lock:
            self.requests.append((ended - self.started, ended - began, op, ok))
            self.retried += retried
            if retried:
                self.retried_by_op[op] = self.retried_by_op.get(op, 0) + 1
            self.wrong += wrong
            if failure and len(self.failures) < 20:
                self.failures.append(f"{op} at {ended - self.started:.1f} s: {failure}"[:500])


class RetriableError(Exception):
    """The worker answered 503: the request may succeed if sent again."""


class WrongBytesError(Exception):
    """A read returned bytes other than those written."""


class LoadClient:
    """Client ``index``: sends requests through ``rotation`` until ``stop`` is set, recording them in
    ``timeline``."""

    def __init__(
        self, index: int, data: DataSet, bucket: str, rotation: Rotation, timeline: Timeline, stop: threading.Event
    ) -> None:
        self.index, self.data, self.bucket = index, data, bucket
        self.rotation, self.timeline, self.stop = rotation, timeline, stop
        self.rng = random.Random(index)
        self._s3: dict[str, S3Client] = {}
        self._written: dict[str, str] = {}  # cache path -> digest of its last acknowledged body
        self._seq = 0
        self._ops: dict[str, Callable[[Endpoint], None]] = {
            "warm OPEN": lambda e: self._read_range(e, self.rng.randrange(data.warm), webhdfs=True),
            "warm GetObject": lambda e: self._read_range(e, self.rng.randrange(data.warm), webhdfs=False),
            "cold OPEN": lambda e: self._read_range(e, data.warm + self.rng.randrange(data.cold), webhdfs=True),
            "cold GetObject": lambda e: self._read_range(e, data.warm + self.rng.randrange(data.cold), webhdfs=False),
            "CREATE": self._create,
            "PutObject": self._put_object,
            "read back": self._read_back,
        }

    def run(self) -> None:
        """Send requests until ``stop`` is set."""
        names, weights = list(MIX), list(MIX.values())
        while not self.stop.is_set():
            op = self.rng.choices(names, weights)[0]
            if op == "staged job":
                self._staged_job()
            else:
                self._send(op, self._ops[op])

    def _send(self, op: str, request: Callable[[Endpoint], None]) -> bool:
        """Send ``request`` to a worker in rotation (a new pick for each attempt), 503s sent again; True if done."""
        began, retried = time.monotonic(), False
        for attempt in range(ATTEMPTS):
            try:
                with self.rotation.pick(self.rng) as endpoint:
                    request(endpoint)
            except RetriableError as exc:
                if attempt == ATTEMPTS - 1:
                    self.timeline.record(op, began, False, retried, f"503 {ATTEMPTS} times: {exc}")
                    return False
                retried = True
                time.sleep(0.25 * (attempt + 1))
                continue
            except Exception as exc:  # any other failure, whatever it is, is one
                wrong = isinstance(exc, WrongBytesError)
                self.timeline.record(op, began, False, retried, f"{type(exc).__name__}: {exc}", wrong)
                return False
            self.timeline.record(op, began, True, retried)
            return True
        raise AssertionError("unreachable")

    # --- reads --------------------------------------------------------------------------------------------------

    def _read_range(self, endpoint: Endpoint, index: int, *, webhdfs: bool) -> None:
        start = self.rng.randrange(self.data.size - 1)
        end = min(self.data.size, start + self.rng.randrange(1, 1 << 20))
        path = self.data.path(index)
        if webhdfs:
            got = _open(endpoint.webhdfs_url, path, start, end - start)
        else:
            got = self._get(endpoint, s3_key(path), f"bytes={start}-{end - 1}")
        if got != pattern(index, start, end):
            raise WrongBytesError(f"{path} [{start}, {end}) through {endpoint.webhdfs_url}: {len(got)} bytes differ")

    def _read_back(self, endpoint: Endpoint) -> None:
        if not self._written:
            return
        path = self.rng.choice(sorted(self._written))
        got = self._get(endpoint, s3_key(path), None)
        if digest(got) != self._written[path]:
            first = got.split(b"\n", 1)[0][:60].decode(errors="replace")
            raise WrongBytesError(
                f"{path} through {endpoint.webhdfs_url}: {first!r}, not the last body acknowledged "
                f"(client {self.index}'s last write was {self._seq})"
            )

    def _get(self, endpoint: Endpoint, key: str, byte_range: str | None) -> bytes:
        client = self._client(endpoint)
        try:
            if byte_range is None:
                answer = client.get_object(Bucket=self.bucket, Key=key)
            else:
                answer = client.get_object(Bucket=self.bucket, Key=key, Range=byte_range)
        except ClientError as exc:
            _raise_if_retriable(exc)
            raise
        body: bytes = answer["Body"].read()
        return body

    # --- writes -------------------------------------------------------------------------------------------------

    def _body(self) -> bytes:
        self._seq += 1
        return f"client {self.index} write {self._seq}\n".encode() + self.rng.randbytes(
            self.rng.randrange(1, 256 << 10)
        )

    def _key_path(self, kind: str) -> str:
        return f"{MOUNT}/soak/c{self.index}/{kind}-{self.rng.randrange(KEYS_PER_CLIENT):02d}.bin"

    def _create(self, endpoint: Endpoint) -> None:
        path, body = self._key_path("create"), self._body()
        self._written.pop(path, None)
        _expect(201, *webhdfs(endpoint.webhdfs_url, "PUT", path, "CREATE", body, overwrite="true"))
        self._written[path] = digest(body)

    def _put_object(self, endpoint: Endpoint) -> None:
        path, body = self._key_path("put"), self._body()
        self._written.pop(path, None)  # a write not acknowledged may or may not have replaced the last body
        try:
            self._client(endpoint).put_object(Bucket=self.bucket, Key=s3_key(path), Body=body)
        except ClientError as exc:
            _raise_if_retriable(exc)
            raise
        self._written[path] = digest(body)

    def _staged_job(self) -> None:
        """A job's output as Spark's committer leaves it: the folder of an earlier run deleted, a file staged under
        ``_temporary``, published by a RENAME, and ``_temporary`` deleted. A step that fails ends the job."""
        out = f"{MOUNT}/jobs/c{self.index}-j{self.rng.randrange(KEYS_PER_CLIENT):02d}"
        staged, body = f"{out}/_temporary/0/task_0/part-00000.bin", self._body()
        self._written.pop(f"{out}/part-00000.bin", None)

        def delete(path: str) -> Callable[[Endpoint], None]:
            return lambda e: _expect(200, *webhdfs(e.webhdfs_url, "DELETE", path, "DELETE", recursive="true"))

        def create(e: Endpoint) -> None:
            _expect(201, *webhdfs(e.webhdfs_url, "PUT", staged, "CREATE", body, overwrite="true"))

        def publish(e: Endpoint) -> None:
            status, answer = webhdfs(e.webhdfs_url, "PUT", staged, "RENAME", destination=f"{out}/part-00000.bin")
            _expect(200, status, answer)
            if not (answer and answer.get("boolean")):
                raise RuntimeError(f"RENAME {staged} answered {answer}")

        steps = [("DELETE", delete(out)), ("staged CREATE", create), ("RENAME publish", publish)]
        for op, step in [*steps, ("DELETE", delete(f"{out}/_temporary"))]:
            if not self._send(op, step):
                return
        self._written[f"{out}/part-00000.bin"] = digest(body)

    def _client(self, endpoint: Endpoint) -> S3Client:
        if endpoint.s3_url not in self._s3:
            self._s3[endpoint.s3_url] = s3_client(endpoint.s3_url, attempts=1)
        return self._s3[endpoint.s3_url]


def _open(url: str, path: str, offset: int, length: int) -> bytes:
    """WebHDFS ``OPEN`` of ``length`` bytes at ``offset``, redirects followed. Raises ``RetriableError`` on a 503."""
    target = f"/webhdfs/v1{path}?op=OPEN&user.name=soak&offset={offset}&length={length}"
    for _ in range(4):
        status, headers, body = http_request(url, "GET", target, None)
        if status == 307:
            location = headers["location"].split("://", 1)[1]
            host, _, rest = location.partition("/")
            url, target = f"http://{host}", f"/{rest}"
            continue
        _expect(200, status, body[:300])
        return body
    raise RuntimeError(f"OPEN {path}: too many redirects")


def _expect(expected: int, status: int, answer: object) -> None:
    if status == 503:
        raise RetriableError(str(answer)[:300])
    if status != expected:
        raise RuntimeError(f"answered {status}, not {expected}: {str(answer)[:300]}")


def _raise_if_retriable(exc: ClientError) -> None:
    if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 503:
        raise RetriableError(str(exc)[:300]) from exc
