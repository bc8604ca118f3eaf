"""Who may do what over WebHDFS: each mount's ``users`` table, by the caller's HDFS simple-auth name.

The caller is ``doas`` when given, else ``user.name`` (the effective user, as HDFS has it), else HDFS's anonymous
``dr.who``. Ops read with GET and change with PUT, POST and DELETE, so a GET needs read on its path and every other
op write, on each path it names: RENAME its source and ``destination``, CONCAT its target and ``sources``.
CHECKACCESS needs what its ``fsaction`` asks (``w``: write, else read), so it answers as the table does. A path in a
mount without a table (or outside every mount) is everyone's, as before users existed; in a mount with one, a user
not listed gets nothing, and a read-only mount caps everyone at read.

A mount its caller may not use is out of sight (``hidden``): listings of the directories above it leave its name out
and content summaries its files, and a directory above mount points that holds only such mounts is refused like
them. Asked for by name, it is refused, not denied to exist: as S3 answers AccessDenied for a bucket one has no
grant in, and HDFS AccessControlException for a path one may not traverse.

Refusals are HDFS's: ``AccessControlException`` "Permission denied: user=analyst, access=WRITE, path=/warehouse/x".
Requests one worker sends another (staging copies and relays, marked with the cluster's secret) were checked where
they entered the cluster and are not checked again.
"""

from __future__ import annotations

from collections.abc import Mapping

from cache_service.access import READ, WRITE, allows
from cache_service.api.webhdfs.request import caller
from cache_service.namespace.mounts import MountTable
from cache_service.namespace.paths import normalize

ANONYMOUS = "dr.who"
"""HDFS's name for a caller that sent no ``user.name``; a mount's table may list it."""


class MountAccess:
    """Checks a WebHDFS request's caller against the ``users`` table of each mount its paths are in."""

    def __init__(self, mounts: MountTable) -> None:
        self._mounts = mounts
        self._open = all(m.users is None and not m.read_only for m in mounts.mounts)
        self.user_names = frozenset(name for m in mounts.mounts for name, _ in m.users or ())
        """Every name a mount's table lists."""

    def check(self, method: str, op: str, path: str, params: Mapping[str, str]) -> None:
        """Raise ``PermissionError`` (HDFS's message) unless the caller may do ``op`` on ``path`` and every other
        path the request names. Raises ``ValueError`` for a named path ``normalize`` refuses (the handler would)."""
        if self._open:
            return
        user = self.caller(params)
        need = READ if method in ("GET", "HEAD") else WRITE
        if op == "CHECKACCESS":
            need = WRITE if "w" in params.get("fsaction", "") else READ
        for where in (path, *self._other_paths(op, params)):
            granted = self._access(user, where)
            if not allows(granted, need):
                raise PermissionError(f"Permission denied: user={user}, access={need.upper()}, path={where}")

    def allows(self, method: str, op: str, path: str, params: Mapping[str, str]) -> bool:
        """True when ``check`` would pass (for the warm path, which leaves refusals to the handler)."""
        try:
            self.check(method, op, path, params)
        except (PermissionError, ValueError):
            return False
        return True

    @staticmethod
    def caller(params: Mapping[str, str]) -> str:
        """Whom a request with ``params`` acts as, by the name the tables list."""
        return caller(params, ANONYMOUS)

    def hidden(self, params: Mapping[str, str]) -> frozenset[str]:
        """The paths of the mounts the request's caller may not use: out of its sight (see the module docstring)."""
        return frozenset() if self._open else self._hidden_from(self.caller(params))

    def _hidden_from(self, user: str) -> frozenset[str]:
        return frozenset(m.path for m in self._mounts.mounts if m.access_of(user) is None)

    def _access(self, user: str, path: str) -> str | None:
        try:
            mount = self._mounts.resolve(path).mount
        except FileNotFoundError:
            # outside every mount: the op itself answers (a missing path, a virtual directory), unless every mount
            # below is hidden from the caller
            return None if self._mounts.is_hidden(path, self._hidden_from(user)) else WRITE
        return mount.access_of(user)

    @staticmethod
    def _other_paths(op: str, params: Mapping[str, str]) -> list[str]:
        if op == "RENAME":
            names = [params.get("destination", "")]
        elif op == "CONCAT":
            names = params.get("sources", "").split(",")
        else:
            return []
        return [normalize(name) for name in names if name.startswith("/")]
