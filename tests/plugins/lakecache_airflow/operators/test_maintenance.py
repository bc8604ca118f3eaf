"""``CacheTtlSweepOperator`` against a real cache: it frees what has expired, and nothing else.

The operator is a three-line call of ``CacheHook.sweep_ttl``; it runs here through ``execute()`` in this process,
not in a DAG run (those cost ~20 s each and ``test_warmup``/``test_purge`` already prove the DAG machinery).
"""

from __future__ import annotations

from infra.cache_process import CacheProcess
from lakecache_airflow.hooks.cache import CacheHook
from lakecache_airflow.operators.maintenance import CacheTtlSweepOperator
from tests.plugins.cache_data import DAY_BYTES, DAY_PATH, OLD_DAY_BYTES, OLD_DAY_PATH, admin, cached_bytes


def test_ttl_sweep_frees_expired_data_and_reports_it(lakecache_default: CacheProcess) -> None:
    hook = CacheHook()
    hook.wait_for_job(hook.load([DAY_PATH, OLD_DAY_PATH])["id"], poll_interval=0.05)
    admin(lakecache_default).ok("POST", "ttl", {"path": OLD_DAY_PATH, "ttl": 0})  # expired at once
    admin(lakecache_default).ok("POST", "ttl", {"path": DAY_PATH, "ttl": "1d"})
    report = CacheTtlSweepOperator(task_id="sweep").execute({})
    assert report["freed_bytes"] == OLD_DAY_BYTES
    assert cached_bytes(lakecache_default, OLD_DAY_PATH) == 0
    assert cached_bytes(lakecache_default, DAY_PATH) == DAY_BYTES
    assert CacheTtlSweepOperator(task_id="sweep_again").execute({})["freed_bytes"] == 0
