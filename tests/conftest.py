"""Fixtures every test may use: the S3 emulator as a real process, throwaway buckets, and cache workers.

No Docker engine answers on the machines this suite runs on, so the services are local processes on ephemeral
loopback ports; nothing here is skipped for want of Docker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from infra.redis_server import RedisServer
from infra.s3_emulator import S3Emulator
from tests.support.buckets import remove_bucket, unique_bucket_name
from tests.support.caches import CacheFactory

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pyspark.sql import SparkSession


# The Airflow fixtures point AIRFLOW_HOME at a throwaway directory before anything imports Airflow.
pytest_plugins = ["tests.support.airflow_fixtures"]

# What a test's marks say of its cost, to put the slowest files first (see ``pytest_collection_modifyitems``).
_MARK_WEIGHTS = {"spark": 3, "browser": 2, "airflow": 1}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the files whose tests start Spark first, then a browser, then Airflow, then the rest; within each group
    the files with the most such tests first, and each file's tests in their order.

    ``make test`` hands whole files to two processes in collection order; a long file collected last would leave
    one process running it alone at the end. Longest first is the usual remedy for that (LPT scheduling), and the
    marks are what the suite knows of a file's length.
    """
    costs: dict[str, tuple[int, int]] = {}
    for item in items:
        weight = max((w for mark, w in _MARK_WEIGHTS.items() if item.get_closest_marker(mark)), default=0)
        heaviest, count = costs.get(_file(item), (0, 0))
        costs[_file(item)] = (max(heaviest, weight), count + (weight > 0))
    items.sort(key=lambda item: tuple(-c for c in costs[_file(item)]))  # a stable sort: a file keeps its order


def _file(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


SHARED_FOLDERS = ("tests/browser/",)
"""Folders whose files share package-scoped fixtures too costly to build twice (one Airflow for every browser test)."""


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, but each of ``SHARED_FOLDERS`` goes to one process whole (xdist's documented hook for a
    scheduler of one's own; ``_split_scope`` is the one method its file scheduler defines over its scope scheduler)."""
    from xdist.scheduler import LoadFileScheduling

    class LoadFileOrSharedFolder(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return next((folder for folder in SHARED_FOLDERS if scope.startswith(folder)), scope)

    if config.getvalue("dist") != "loadfile":
        return None
    return LoadFileOrSharedFolder(config, log)


@pytest.fixture(scope="session")
def s3_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Emulator]:
    """moto's S3 server, one process for the whole session; use ``endpoint_url``."""
    with S3Emulator(tmp_path_factory.mktemp("s3-emulator")) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Debian's redis-server, one process for the whole session; tests that use it take ``redis_url``."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test: a cluster starts with no members."""
    import redis

    with redis.Redis(host=redis_server.host, port=redis_server.port) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """One Spark ``local[2]`` session for every test of this process, with Hive support on an embedded Derby
    metastore.

    Spark fixes the catalog implementation for the life of a session, and pytest-xdist hands each process files of
    any folder in any order, so the catalog tests, the integration tests and the quality tests share this one
    session rather than stopping each other's. The UI is off and time zone is UTC.
    """
    from cache_service.catalog.hive import hive_session

    session = hive_session(metastore_dir=tmp_path_factory.mktemp("hive"), master="local[2]")
    session.conf.set("spark.sql.shuffle.partitions", "4")
    session.conf.set("spark.sql.session.timeZone", "UTC")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def s3_client(s3_emulator: S3Emulator) -> S3Client:
    """A boto3 S3 client talking straight to the emulator (bypassing any cache)."""
    return s3_emulator.client()


@pytest.fixture
def bucket(s3_client: S3Client) -> Iterator[str]:
    """A new, empty bucket on the emulator, removed after the test."""
    name = unique_bucket_name()
    s3_client.create_bucket(Bucket=name)
    yield name
    remove_bucket(s3_client, name)


@pytest.fixture
def cache_factory(s3_emulator: S3Emulator, tmp_path: Path) -> Iterator[CacheFactory]:
    """Call it with mounts (and config overrides) to get a started cache worker; all are stopped at teardown.

    ``cache_factory({"/warehouse": f"s3://{bucket}/warehouse"}, {"metadata": {"sync_interval": "1s"}})`` returns an
    ``infra.cache_process.CacheProcess`` with ``webhdfs_url``, ``s3_url``, ``token``, ``config_path``, ``stop()``,
    ``kill()`` and ``start()`` (a restart keeps its ports and disk tier).
    """
    factory = CacheFactory(tmp_path / "caches", s3_emulator.endpoint_url)
    yield factory
    factory.stop_all()
