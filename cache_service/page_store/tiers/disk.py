"""The disk tier: one file per page under ``<path>/pages``, found again after a restart.

Layout: ``pages/<fid[:2]>/<fid>/meta.json`` names the object version (bucket, key, etag, size) and each page is
``<index>.<checksum as 16 hex digits>``. Pages are written to a temporary name and renamed into place, so a crash
leaves either a whole page or none; a page whose bytes rot on disk is caught by its checksum before it is served.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from cache_service.page_store.identity import ObjectIdentity, PageKey
from cache_service.page_store.tiers.base import RecoveredPage

log = logging.getLogger(__name__)
_PAGE_NAME = re.compile(r"^(\d+)\.([0-9a-f]{16})$")


class DiskTier:
    """Pages as files on a local disk. Safe to call from several threads: every change holds one lock."""

    medium = "disk"

    def __init__(self, root: Path, capacity: int) -> None:
        self.capacity = capacity
        self.root = root
        self._pages_dir = root / "pages"
        self._pages_dir.mkdir(parents=True, exist_ok=True)
        self._pages: dict[PageKey, tuple[str, int]] = {}
        self._by_file: dict[str, set[int]] = {}
        self._used = 0
        # The page store writes from its I/O threads; a page write is a page-cache copy, so one lock costs little.
        self._lock = threading.RLock()

    @property
    def used_bytes(self) -> int:
        """Bytes of pages held."""
        return self._used

    def _dir(self, file_id: str) -> Path:
        return self._pages_dir / file_id[:2] / file_id

    def _write_meta(self, owner: ObjectIdentity, directory: Path) -> None:
        meta = directory / "meta.json"
        tmp = directory / ".meta.json.tmp"
        tmp.write_text(json.dumps({"bucket": owner.bucket, "key": owner.key, "etag": owner.etag, "size": owner.size}))
        os.replace(tmp, meta)

    def write(self, owner: ObjectIdentity, index: int, data: bytes, checksum: int) -> None:
        """Store the page atomically (temporary file, then rename), replacing any copy. Raises ``OSError``."""
        key = (owner.file_id, index)
        directory = self._dir(owner.file_id)
        with self._lock:
            if not (directory / "meta.json").exists():
                directory.mkdir(parents=True, exist_ok=True)
                self._write_meta(owner, directory)
            final = directory / f"{index}.{checksum:016x}"
            tmp = directory / f".{index}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
            except OSError:
                tmp.unlink(missing_ok=True)  # a full disk must not keep the part that fitted
                raise
            os.replace(tmp, final)
            old = self._pages.get(key)
            if old is not None:
                # a rewrite replaces the page file only; the object's directory and meta stay
                if old[0] != str(final):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(old[0])
                self._used -= old[1]
                self._by_file[key[0]].discard(index)
            self._add(key, str(final), len(data))

    def _add(self, key: PageKey, path: str, size: int) -> None:
        self._pages[key] = (path, size)
        self._by_file.setdefault(key[0], set()).add(key[1])
        self._used += size

    def read(self, key: PageKey, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of the page, read with one ``pread``. Raises ``KeyError`` if not held."""
        path, size = self._pages[key]
        stop = size if end is None else min(end, size)
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.pread(fd, stop - start, start)
        finally:
            os.close(fd)

    def path_of(self, key: PageKey) -> str:
        """The file holding the page (for zero-copy sends). Raises ``KeyError`` if not held."""
        return self._pages[key][0]

    def remove(self, key: PageKey) -> int:
        """Delete the page's file; returns the bytes freed."""
        with self._lock:
            return self._remove(key)

    def _remove(self, key: PageKey) -> int:
        entry = self._pages.pop(key, None)
        if entry is None:
            return 0
        path, size = entry
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._used -= size
        indexes = self._by_file[key[0]]
        indexes.discard(key[1])
        if not indexes:
            del self._by_file[key[0]]
            shutil.rmtree(self._dir(key[0]), ignore_errors=True)
        return size

    def rekey(self, old: ObjectIdentity, new: ObjectIdentity) -> None:
        """Rename ``old``'s page directory to ``new``'s: no page bytes are copied."""
        with self._lock:
            self._rekey(old, new)

    def _rekey(self, old: ObjectIdentity, new: ObjectIdentity) -> None:
        src, dst = self._dir(old.file_id), self._dir(new.file_id)
        if not src.exists() or src == dst:
            return
        for index in list(self._by_file.get(new.file_id, ())):
            self._remove((new.file_id, index))
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dst, ignore_errors=True)
        os.replace(src, dst)
        self._write_meta(new, dst)
        for index in self._by_file.pop(old.file_id, set()):
            path, size = self._pages.pop((old.file_id, index))
            self._used -= size
            self._add((new.file_id, index), str(dst / os.path.basename(path)), size)

    def recover(self) -> Iterator[RecoveredPage]:
        """Index every whole page left by an earlier run; drop temporary files and directories without metadata."""
        for shard in sorted(self._pages_dir.iterdir()):
            for directory in sorted(shard.iterdir()) if shard.is_dir() else []:
                try:
                    meta = json.loads((directory / "meta.json").read_text())
                    owner = ObjectIdentity(meta["bucket"], meta["key"], meta["etag"], int(meta["size"]))
                except (OSError, ValueError, KeyError):
                    log.warning("disk tier: dropping %s (no readable meta.json)", directory)
                    shutil.rmtree(directory, ignore_errors=True)
                    continue
                if owner.file_id != directory.name:
                    log.warning("disk tier: dropping %s (meta.json names another object)", directory)
                    shutil.rmtree(directory, ignore_errors=True)
                    continue
                for entry in os.scandir(directory):
                    match = _PAGE_NAME.match(entry.name)
                    if not match:
                        if entry.name != "meta.json":
                            os.unlink(entry.path)
                        continue
                    size = entry.stat().st_size
                    key = (owner.file_id, int(match.group(1)))
                    self._add(key, entry.path, size)
                    yield RecoveredPage(owner=owner, index=key[1], size=size, checksum=int(match.group(2), 16))
