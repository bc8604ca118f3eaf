"""Access levels, shared by both APIs: ``read``, and ``write``, which implies read.

S3 API users hold them per bucket and key prefix (``[[s3_api.users]] grants``), WebHDFS users per mount (``[[mounts]]
users``); a read-only mount caps everyone at ``read``. A refusal is a ``PermissionError`` whose message names the
user and the path or key, which each API turns into its own 403 (S3 ``AccessDenied``, WebHDFS
``AccessControlException``).
"""

from __future__ import annotations

READ = "read"
WRITE = "write"
LEVELS = (READ, WRITE)


def allows(granted: str | None, need: str) -> bool:
    """True when access ``granted`` (None: none) covers the access ``need``."""
    return granted == WRITE or (granted == READ and need == READ)
