"""Hadoop's own FsShell (``hadoop fs``), run from pyspark's jars: a WebHDFS client nobody here wrote."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyspark

from cache_service.cluster.client_settings import site_xml


def fs_shell(
    conf_dir: Path, args: Sequence[str], hdfs_site: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Run ``FsShell args`` with ``conf_dir`` (written here: an empty core-site.xml, ``hdfs_site``) first on the class
    path; returns the finished process (stdout and stderr as bytes), whatever its exit code."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "core-site.xml").write_text(site_xml({}))
    (conf_dir / "hdfs-site.xml").write_text(site_xml(hdfs_site or {}))
    jars = Path(pyspark.__file__).parent / "jars"
    argv = ["java", "-cp", f"{conf_dir}:{jars}/*", "org.apache.hadoop.fs.FsShell", *args]
    return subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
