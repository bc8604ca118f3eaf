"""A client history of writes, and what it must leave behind: the judge of the crash consistency campaign.

Every write sends bytes no other write sends (a header naming the client and the write, then random bytes), so the
object a key holds names the one write it came from. Each key is written by one client, one write after the other,
and a client leaves a key alone after a write it did not see acknowledged: a key's valid final states are then its
last acknowledged version or a version sent after it (fully written, its answer lost, as HDFS and S3 allow).

``judge`` compares the history with what S3 holds at the end:

- **lost**: a key whose last acknowledged version is neither in S3 nor superseded by a later write;
- **torn**: an object whose bytes are no version any client sent (half a body, two bodies mixed) or a stray key;
- **unacknowledged visible**: a key holding a version sent after its last acknowledged one (allowed, counted).

Staged files (``StagedFile``) are judged apart: one acknowledged but never seen published must still be readable
from the cache at one of the staged paths it may be at, and publishable from there (``crash_consistency``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def digest(body: bytes) -> str:
    """What the history keeps of a body: its BLAKE2b digest (hex), with which bytes read back are compared."""
    return running_digest(body).hexdigest()


def running_digest(body: bytes) -> Any:
    """A hash object started with ``body``: ``update`` it with more bytes, and its ``hexdigest()`` is ``digest`` of
    them all (an APPEND's object, without keeping the file's bytes)."""
    return hashlib.blake2b(body, digest_size=20)


@dataclass(frozen=True)
class Version:
    """One complete body a client sent for a key, and whether the write was acknowledged."""

    digest: str
    size: int
    op: str
    acknowledged: bool


@dataclass
class KeyHistory:
    """The versions sent for one S3 key, in the order its one client sent them."""

    key: str
    versions: list[Version] = field(default_factory=list)

    @property
    def last_acknowledged(self) -> int:
        """Index of the last acknowledged version, -1 if none."""
        return max((i for i, v in enumerate(self.versions) if v.acknowledged), default=-1)


@dataclass
class StagedFile:
    """A file written under ``_temporary`` to be published at ``published_key`` by a RENAME.

    ``staged_paths`` are the cache paths it may be at (more than one while a task commit's RENAME was not
    acknowledged); ``published`` says whether the publishing RENAME was acknowledged.
    """

    published_key: str
    published_path: str
    staged_paths: list[str]
    digest: str
    size: int
    acknowledged: bool
    published: bool = False


@dataclass
class Verdict:
    """What ``judge`` found: counts for the report, and one line per violation (lost or torn)."""

    lost: list[str] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)
    unacknowledged_visible: int = 0
    checked_keys: int = 0


class History:
    """Every write of a campaign's clients, recorded as it is answered (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.keys: dict[str, KeyHistory] = {}
        self.staged: list[StagedFile] = []
        self.counts: dict[str, int] = {}
        """Writes by outcome and operation, e.g. ``acknowledged`` and ``acknowledged PutObject``."""

    def _count(self, op: str, acknowledged: bool) -> None:
        outcome = "acknowledged" if acknowledged else "unacknowledged"
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.counts[f"{outcome} {op}"] = self.counts.get(f"{outcome} {op}", 0) + 1

    def record(self, key: str, op: str, body_digest: str, size: int, acknowledged: bool) -> None:
        """A write of a whole object version of ``key`` (CREATE, APPEND's resulting object, PutObject, multipart)."""
        with self._lock:
            self.keys.setdefault(key, KeyHistory(key)).versions.append(Version(body_digest, size, op, acknowledged))
            self._count(op, acknowledged)

    def record_staged(self, staged: StagedFile) -> None:
        """A CREATE under ``_temporary``; later changes to ``staged`` (its paths, published) are the caller's."""
        with self._lock:
            self.staged.append(staged)
            self._count("CREATE staged", staged.acknowledged)

    def record_rename(self, op: str, acknowledged: bool) -> None:
        """A RENAME whose effect the caller records on its ``StagedFile``s (a task commit, a publish)."""
        with self._lock:
            self._count(op, acknowledged)

    def publish(self, staged: StagedFile, acknowledged: bool) -> None:
        """The RENAME publishing ``staged`` was answered: its key gets the staged version (acknowledged or not)."""
        with self._lock:
            staged.published = staged.published or acknowledged
            versions = self.keys.setdefault(staged.published_key, KeyHistory(staged.published_key)).versions
            versions.append(Version(staged.digest, staged.size, "RENAME publish", acknowledged))
            self._count("RENAME publish", acknowledged)

    @property
    def acknowledged(self) -> int:
        """Acknowledged writes so far."""
        return self.counts.get("acknowledged", 0)


def judge(history: History, objects: Mapping[str, str]) -> Verdict:
    """Compare ``history`` with ``objects`` (every key in the campaign's bucket and its body's ``digest``)."""
    verdict = Verdict()
    for key, body in objects.items():
        if key.endswith("/") and body == digest(b""):
            continue  # a directory marker
        if key not in history.keys:
            verdict.torn.append(f"{key}: in S3, but no client wrote it")
    for key, kept in history.keys.items():
        verdict.checked_keys += 1
        last = kept.last_acknowledged
        found = objects.get(key)
        if found is None:
            if last >= 0:
                verdict.lost.append(f"{key}: acknowledged {kept.versions[last].op}, not in S3")
            continue
        index = next((i for i in range(len(kept.versions) - 1, -1, -1) if kept.versions[i].digest == found), None)
        if index is None:
            verdict.torn.append(f"{key}: S3 holds bytes no client sent for it ({len(kept.versions)} versions sent)")
        elif index < last:
            verdict.lost.append(f"{key}: S3 holds version {index + 1}, acknowledged version {last + 1} is gone")
        elif not kept.versions[index].acknowledged:
            verdict.unacknowledged_visible += 1
    return verdict
