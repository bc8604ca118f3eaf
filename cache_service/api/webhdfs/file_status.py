"""WebHDFS's ``FileStatus`` JSON, as every Hadoop client parses it."""

from __future__ import annotations

import zlib
from typing import Any

from cache_service.namespace.status import FileStatus

BLOCK_SIZE = 128 * 1024**2
"""The block size files report (HDFS's default); block locations are cut at it too."""


def status_json(st: FileStatus, suffix: str, user: str) -> dict[str, Any]:
    """A WebHDFS ``FileStatus`` object; ``suffix`` is the name within a listing ("" for the path itself)."""
    mtime = int(st.mtime * 1000)
    return {
        "accessTime": 0 if st.is_dir else mtime,
        "blockSize": 0 if st.is_dir else BLOCK_SIZE,
        "childrenNum": 0,
        "fileId": zlib.crc32(st.path.encode()) + 16386,
        "group": "supergroup",
        "length": 0 if st.is_dir else st.length,
        "modificationTime": mtime,
        "owner": user,
        "pathSuffix": suffix,
        "permission": "755" if st.is_dir else "644",
        "replication": 0 if st.is_dir else 1,
        "storagePolicy": 0,
        "type": "DIRECTORY" if st.is_dir else "FILE",
    }
