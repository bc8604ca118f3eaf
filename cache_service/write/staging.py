"""The staging area: files under staging paths (``_temporary``, ``.spark-staging-*``) live only on the cache's disk.

They mirror their cache paths under ``<disk tier>/staging``, so a restart finds them as they were, renames among
them are local renames, and nothing here is ever evicted. A rename to a non-staging path publishes them to S3.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cache_service.namespace.paths import join


@dataclass(frozen=True)
class StagedEntry:
    """A file or directory in the staging area."""

    path: str
    is_dir: bool
    size: int
    mtime: float


class StagingArea:
    """Staged files and directories, by cache path, on local disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._root_text = str(root).rstrip("/")
        self.discard_temporaries()
        self._bytes = sum(e.size for e in self.walk("/") if not e.is_dir)

    @property
    def used_bytes(self) -> int:
        """Bytes of staged files (never evictable)."""
        return self._bytes

    def local(self, path: str) -> Path:
        """The local file or directory for normalised cache ``path``."""
        return self.root / path.lstrip("/")

    def stat(self, path: str) -> StagedEntry | None:
        """The staged entry at ``path``, or None."""
        try:
            st = os.stat(self._root_text + path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        is_dir = stat.S_ISDIR(st.st_mode)
        return StagedEntry(path=path, is_dir=is_dir, size=0 if is_dir else st.st_size, mtime=st.st_mtime)

    def children(self, path: str) -> list[StagedEntry]:
        """Entries directly inside directory ``path`` (empty if it is not a staged directory)."""
        try:
            names = os.listdir(self.local(path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        entries = [self.stat(join(path, name)) for name in names if not name.startswith(".lakecache-")]
        return [e for e in entries if e is not None]

    def walk(self, path: str) -> Iterator[StagedEntry]:
        """Every entry at or below ``path``, parents before children."""
        top = self.stat(path)
        if top is None:
            return
        yield top
        if top.is_dir:
            for child in sorted(self.children(path), key=lambda e: e.path):
                yield from self.walk(child.path)

    def mkdirs(self, path: str) -> None:
        """Create directory ``path`` and its parents. Raises ``FileExistsError`` if a file is in the way."""
        try:
            self.local(path).mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise FileExistsError(f"Parent path is not a directory: {path}") from None

    def new_file(self, path: str) -> Path:
        """A temporary local file to write ``path``'s bytes into; ``commit`` moves it into place."""
        target = self.local(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.parent / f".lakecache-{os.getpid()}-{id(target)}-{target.name}"

    def commit(self, tmp: Path, path: str) -> int:
        """Make the written temporary file the file at ``path`` (durably); returns its size."""
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        target = self.local(path)
        old = target.stat().st_size if target.is_file() else 0
        os.replace(tmp, target)
        size = target.stat().st_size
        self._bytes += size - old
        return size

    def rename(self, src: str, dst: str) -> None:
        """Move a staged file or directory to another staging path (local, atomic)."""
        target = self.local(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.local(src), target)

    def adopt(self, local_file: Path, path: str) -> None:
        """Take ownership of ``local_file`` (e.g. a download) as staged file ``path``."""
        target = self.local(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local_file, target)
        self._bytes += target.stat().st_size

    def remove(self, path: str) -> int:
        """Delete the staged file or directory tree at ``path``; returns the bytes freed."""
        freed = sum(e.size for e in self.walk(path) if not e.is_dir)
        local = self.local(path)
        if local.is_dir():
            shutil.rmtree(local)
        elif local.exists():
            local.unlink()
        self._bytes -= freed
        return freed

    def prune_empty_parents(self, path: str, keep: Callable[[str], bool]) -> None:
        """Remove the empty local directories above ``path`` that only held it up, stopping at one ``keep`` wants.

        Staging directories are real directories (HDFS keeps ``_temporary`` after its children move); directories
        of non-staging paths here are mere scaffolding for staged data below them.
        """
        current = path
        while current.count("/") > 1:
            current = current.rsplit("/", 1)[0]
            local = self.local(current)
            if keep(current) or not local.is_dir() or any(local.iterdir()):
                return
            local.rmdir()

    def discard_temporaries(self) -> None:
        """Drop half-written temporary files left by a crash (never acknowledged, so nothing is lost)."""
        for dirpath, _, files in os.walk(self.root):
            for name in files:
                if name.startswith(".lakecache-"):
                    os.unlink(os.path.join(dirpath, name))
