"""What a management request names: paths checked field by field, globs expanded to files, cached objects by path."""

from __future__ import annotations

import re

from cache_service.management.reports import STAGED_REASON, InvalidFieldError, PathNotFoundError, Refusal
from cache_service.namespace.filesystem import CacheFileSystem, FileStatus
from cache_service.namespace.paths import is_within, normalize
from cache_service.page_store import ObjectIdentity, PageStore

_GLOB_CHARS = re.compile(r"[*?\[]")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` stay within one path component, ``**`` crosses them, ``[...]`` is a character class."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"unclosed '[' in glob {pattern!r}")
            out.append(pattern[i : end + 1].replace("[!", "[^"))
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


class PathSelection:
    """Resolves the paths and globs of management requests in the file system, and the cached objects below them."""

    def __init__(self, fs: CacheFileSystem, pages: PageStore) -> None:
        self._fs = fs
        self._pages = pages

    def path_of(self, owner: ObjectIdentity) -> str | None:
        """The cache path of ``owner``, or None when no mount covers it."""
        return self._fs.mounts.to_path(owner.bucket, owner.key)

    def name_of(self, owner: ObjectIdentity) -> str:
        """``owner``'s cache path, or its S3 URI when it has none: how reports name it."""
        return self.path_of(owner) or f"s3://{owner.bucket}/{owner.key}"

    def owners_below(self, path: str) -> list[tuple[str, ObjectIdentity]]:
        """The cached objects at or below cache ``path``, with their paths."""
        found = []
        for owner in self._pages.owners():
            owner_path = self.path_of(owner)
            if owner_path is not None and is_within(owner_path, path):
                found.append((owner_path, owner))
        return found

    def owners_in(self, scope: list[str] | None) -> list[tuple[str | None, ObjectIdentity]]:
        """The cached objects a purge of ``scope`` (None: everything) may take, once each, with their paths."""
        if scope is None:
            return [(self.path_of(o), o) for o in self._pages.owners()]
        found = {o.file_id: (p, o) for path in scope for p, o in self.owners_below(path)}
        return list(found.values())

    @staticmethod
    def field_path(field: str, path: object) -> str:
        """Request field ``field`` as a normalised cache path. Raises ``InvalidFieldError``."""
        if not isinstance(path, str) or not path:
            raise InvalidFieldError(field, f"{field} must be a non-empty path string")
        try:
            return normalize(path)
        except ValueError as exc:
            raise InvalidFieldError(field, f"{field}: {exc}") from None

    async def existing(self, field: str, path: str) -> FileStatus:
        """The status of ``path``, named by request field ``field``. Raises ``PathNotFoundError``."""
        try:
            return await self._fs.status(path)
        except FileNotFoundError:
            raise PathNotFoundError(field, f"{field}: no such path: {path}") from None

    async def files_below(self, status: FileStatus) -> list[FileStatus]:
        """The file itself, or every file below a directory."""
        if not status.is_dir:
            return [status]
        files: list[FileStatus] = []
        for child in await self._fs.list(status.path):
            files.extend(await self.files_below(child))
        return files

    async def expand(self, field: str, pattern: str) -> list[FileStatus]:
        """Files named by a path, a directory (recursively) or a glob. Raises ``PathNotFoundError`` for none."""
        if not _GLOB_CHARS.search(pattern):
            return await self.files_below(await self.existing(field, self.field_path(field, pattern)))
        if not pattern.startswith("/"):
            raise InvalidFieldError(field, f"{field}: the glob must be absolute: {pattern!r}")
        parts = pattern.split("/")
        fixed = "/".join(p for p in parts[: next(i for i, p in enumerate(parts) if _GLOB_CHARS.search(p))])
        try:
            regex = _glob_regex(pattern)
        except ValueError as exc:
            raise InvalidFieldError(field, f"{field}: {exc}") from None
        base = await self.existing(field, self.field_path(field, fixed or "/"))
        matched = [f for f in await self.files_below(base) if regex.match(f.path)]
        if not matched:
            raise PathNotFoundError(field, f"{field}: the glob {pattern!r} matches no file")
        return matched

    async def scope(self, paths: list[str]) -> tuple[list[str], list[Refusal]]:
        """Validated, existing paths, and refusals for the staged data within them."""
        if not isinstance(paths, list) or not paths:
            raise InvalidFieldError("paths", "paths must be a non-empty list of paths")
        resolved, refused = [], []
        for i, raw in enumerate(paths):
            path = self.field_path(f"paths[{i}]", raw)
            await self.existing(f"paths[{i}]", path)
            resolved.append(path)
            refused += [Refusal(e.path, STAGED_REASON) for e in self._fs.staging.walk(path) if not e.is_dir]
        return resolved, refused
