"""Who may do what over WebHDFS: each mount's ``users`` table, by the caller's HDFS simple-auth name.

The caller is ``doas`` when given, else ``user.name`` (the effective user, as HDFS has it), else HDFS's anonymous
``dr.who``. Ops read with GET and change with PUT, POST and DELETE, so a GET needs read on its path and every other
op write, on each path it names: RENAME its source and ``destination``, CONCAT its target and ``sources``.
CHECKACCESS needs what its ``fsaction`` asks (``w``: write, else read), so it answers as the table does. A path in a
mount without a table (or outside every mount) is everyone's, as before users existed; in a mount with one, a user
not listed gets nothing, and a read-only mount caps everyone at read.

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

    def check(self, method: str, op: str, path: str, params: Mapping[str, str]) -> None:
        """Raise ``PermissionError`` (HDFS's message) unless the caller may do ``op`` on ``path`` and every other
        path the request names. Raises ``ValueError`` for a named path ``normalize`` refuses (the handler would)."""
        if self._open:
            return
        user = caller(params, ANONYMOUS)
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

    def _access(self, user: str, path: str) -> str | None:
        try:
            mount = self._mounts.resolve(path).mount
        except FileNotFoundError:
            return WRITE  # outside every mount: the op itself answers (a missing path, a virtual directory)
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
