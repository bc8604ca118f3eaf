"""The demo on a cache cluster (``DEMO_WORKERS=3 make demo``): the cluster as its workers see it, and what Spark
needs to address it as one HDFS.

``ClusterLayout.wait`` waits until every worker routes by the same ring of all of them, then reads the members from
``GET /admin/v1/cluster``. ``ClusterLayout.write_spark_conf`` writes Hadoop's own HA client settings for them
(``cache_service.cluster.client_settings``: the nameservice, its namenodes, their addresses, the failover proxy
provider) as a ``spark-defaults.conf``: spark-submit reads it from ``SPARK_CONF_DIR``, and the DAG's Spark jobs then
read and write ``webhdfs://<nameservice>/...``, failing over from one worker to the next.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cache_service.cluster.client_settings import DEFAULT_NAMESERVICE, ha_settings, spark_defaults
from infra import cache_ring
from infra.demo import DemoError

RING_TIMEOUT = 60.0
"""Seconds the workers of a new cluster have to see each other active and agree on the ring."""


def cluster_report(webhdfs_url: str, timeout: float = 5.0) -> dict[str, Any]:
    """``GET /admin/v1/cluster`` of the worker at ``webhdfs_url``. Raises ``DemoError`` if it does not answer."""
    try:
        return cache_ring.cluster_report(webhdfs_url, timeout)
    except (OSError, ValueError) as exc:
        raise DemoError(f"cannot read the cluster from {webhdfs_url}/admin/v1/cluster: {exc}") from exc


@dataclass(frozen=True)
class ClusterLayout:
    """The workers of a running cluster: their ids by WebHDFS URL, and Hadoop's HA settings addressing them."""

    nameservice: str
    worker_ids: Mapping[str, str]
    """Each worker's id, by its WebHDFS URL, in the order the stack started them."""
    settings: Mapping[str, str]
    """Hadoop's HA client settings (``dfs.*`` keys) for ``webhdfs://<nameservice>``."""

    @classmethod
    def wait(
        cls, webhdfs_urls: Sequence[str], *, nameservice: str = DEFAULT_NAMESERVICE, timeout: float = RING_TIMEOUT
    ) -> ClusterLayout:
        """Wait until every worker sees all of ``webhdfs_urls`` active and by one ring, then describe them.

        Raises ``DemoError`` if they do not within ``timeout`` seconds, or if a worker does not answer.
        """
        deadline = time.monotonic() + timeout
        while True:
            reports = [cluster_report(url) for url in webhdfs_urls]
            active = [[m for m in r["members"] if m["state"] == "active"] for r in reports]
            rings = {r["ring"] for r in reports}
            if all(len(members) == len(webhdfs_urls) for members in active) and len(rings) == 1:
                break
            if time.monotonic() > deadline:
                seen = ", ".join(f"{url} sees {len(m)} active" for url, m in zip(webhdfs_urls, active, strict=True))
                raise DemoError(
                    f"the {len(webhdfs_urls)} cache workers did not form one ring in {timeout:.0f}s ({seen}; "
                    f"{len(rings)} ring(s))"
                )
            time.sleep(0.2)
        ids = {url: str(report["worker"]) for url, report in zip(webhdfs_urls, reports, strict=True)}
        return cls(nameservice, ids, ha_settings(reports[0]["members"], nameservice))

    @property
    def uri(self) -> str:
        """The filesystem URI Spark addresses the cluster by: ``webhdfs://<nameservice>``."""
        return f"webhdfs://{self.nameservice}"

    def write_spark_conf(self, conf_dir: Path) -> Path:
        """Write the HA settings as ``conf_dir/spark-defaults.conf`` (``spark.hadoop.<key> <value>`` lines, what
        ``cachectl cluster spark-conf`` prints); point ``SPARK_CONF_DIR`` at ``conf_dir``. Returns the file."""
        conf_dir.mkdir(parents=True, exist_ok=True)
        path = conf_dir / "spark-defaults.conf"
        path.write_text(spark_defaults(self.settings))
        return path
