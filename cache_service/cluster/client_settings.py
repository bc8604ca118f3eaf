"""Hadoop's own client settings for a cache cluster: an HA nameservice that lists every active worker.

Hadoop's WebHDFS client (and Spark, which takes the same keys as ``spark.hadoop.*``) talks to the first worker that
answers and fails over to the next when it does not: losing a worker costs a retry, not the job, and no jar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

DEFAULT_NAMESERVICE = "lakecache"
_FAILOVER = "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider"


def ha_settings(members: Sequence[Mapping[str, Any]], nameservice: str = DEFAULT_NAMESERVICE) -> dict[str, str]:
    """The ``hdfs-site`` keys that make ``webhdfs://<nameservice>/`` address the active ``members`` (members as
    ``GET /admin/v1/cluster`` lists them). Raises ``ValueError`` when none is active."""
    active = sorted((m for m in members if m.get("state") == "active"), key=lambda m: str(m["id"]))
    if not active:
        raise ValueError("no worker of the cluster is active")
    settings = {
        "dfs.nameservices": nameservice,
        f"dfs.ha.namenodes.{nameservice}": ",".join(str(m["id"]) for m in active),
        f"dfs.client.failover.proxy.provider.{nameservice}": _FAILOVER,
    }
    for member in active:
        settings[f"dfs.namenode.http-address.{nameservice}.{member['id']}"] = urlsplit(member["webhdfs_url"]).netloc
    return settings


def spark_defaults(settings: Mapping[str, str]) -> str:
    """``settings`` as ``spark-defaults.conf`` lines (``spark.hadoop.<key> <value>``)."""
    return "".join(f"spark.hadoop.{key} {value}\n" for key, value in settings.items())


def site_xml(settings: Mapping[str, str]) -> str:
    """``settings`` as a Hadoop ``*-site.xml`` document."""
    body = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n" for k, v in settings.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'
