"""Hadoop's client addresses the whole cluster as an HA nameservice (``cachectl cluster spark-conf``): losing the
worker it talks to costs a retry, not the command, and needs no jar."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cache_service.cluster.client_settings import ha_settings
from infra.cache_process import CacheProcess
from infra.cache_ring import cluster_report, wait_for_ring
from tests.support.cachectl import Run, cachectl
from tests.support.hadoop_shell import fs_shell


def cluster_cli(worker: CacheProcess, *args: str) -> Run:
    return cachectl("cluster", *args, endpoint=worker.webhdfs_url, token=worker.token)


def test_spark_conf_lists_every_active_worker_in_each_format(workers: list[CacheProcess]) -> None:
    as_json = cluster_cli(workers[1], "spark-conf", "--json")
    assert as_json.code == 0, as_json.stderr
    settings = json.loads(as_json.stdout)
    ids = sorted(m["id"] for m in cluster_report(workers[0])["members"])
    assert settings["dfs.nameservices"] == "lakecache"
    assert settings["dfs.ha.namenodes.lakecache"] == ",".join(ids)
    addresses = {settings[f"dfs.namenode.http-address.lakecache.{i}"] for i in ids}
    assert addresses == {f"127.0.0.1:{w.webhdfs_port}" for w in workers}

    spark = cluster_cli(workers[1], "spark-conf", "--nameservice", "lake").stdout.splitlines()
    assert f"spark.hadoop.dfs.ha.namenodes.lake {','.join(ids)}" in spark

    xml = cluster_cli(workers[1], "spark-conf", "--format", "hdfs-site").stdout
    parsed = {p.findtext("name"): p.findtext("value") for p in ET.fromstring(xml).iter("property")}
    assert parsed == settings


def test_cachectl_cluster_shows_every_worker(workers: list[CacheProcess]) -> None:
    shown = cluster_cli(workers[0])
    assert shown.code == 0, shown.stderr
    for member in cluster_report(workers[0])["members"]:
        assert member["id"] in shown.stdout
    assert shown.stdout.count("│ active │") == 3


def test_cachectl_status_adds_the_clusters_totals(workers: list[CacheProcess]) -> None:
    status = cachectl("status", "--json", endpoint=workers[1].webhdfs_url, token=workers[1].token).json()
    members = cluster_report(workers[1])["members"]
    assert status["cluster"]["workers"] == 3
    assert status["cluster"]["capacity_bytes"] == sum(m["capacity_bytes"] for m in members)
    shown = cachectl("status", endpoint=workers[1].webhdfs_url, token=workers[1].token)
    assert "3 active workers" in shown.stdout


def test_hadoop_fails_over_when_the_worker_it_talks_to_is_killed(workers: list[CacheProcess], tmp_path: Path) -> None:
    settings = json.loads(cluster_cli(workers[0], "spark-conf", "--json").stdout)
    first = settings["dfs.ha.namenodes.lakecache"].split(",")[0]
    address = settings[f"dfs.namenode.http-address.lakecache.{first}"]
    victim = next(w for w in workers if address.endswith(f":{w.webhdfs_port}"))
    survivors = [w for w in workers if w is not victim]
    data = os.urandom(2 * (1 << 20) + 7)
    (tmp_path / "in.bin").write_bytes(data)
    conf = tmp_path / "conf"

    put = fs_shell(conf, ["-put", str(tmp_path / "in.bin"), "webhdfs://lakecache/lake/ha.bin"], settings)
    assert put.returncode == 0, put.stderr.decode()[-2000:]
    victim.kill()
    cat = fs_shell(conf, ["-cat", "webhdfs://lakecache/lake/ha.bin"], settings)
    assert cat.returncode == 0, cat.stderr.decode()[-2000:]
    assert cat.stdout == data
    wait_for_ring(survivors, 2)
    listed = fs_shell(conf, ["-ls", "webhdfs://lakecache/lake/"], settings)
    assert listed.returncode == 0 and b"/lake/ha.bin" in listed.stdout


def test_spark_conf_of_a_worker_alone_names_it() -> None:
    alone = [{"id": "w-000000000001", "state": "active", "webhdfs_url": "http://127.0.0.1:9870"}]
    assert ha_settings(alone)["dfs.namenode.http-address.lakecache.w-000000000001"] == "127.0.0.1:9870"
    gone = [{**alone[0], "state": "gone"}]
    with pytest.raises(ValueError, match="no worker of the cluster is active"):
        ha_settings(gone)
