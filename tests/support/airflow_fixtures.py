"""Airflow fixtures for the provider's and the DAGs' tests: an Airflow home of our own, connections, data.

Airflow reads its configuration when first imported and creates folders under ``AIRFLOW_HOME``; the test modules
below import the provider (hence Airflow) when pytest collects them. So ``AIRFLOW_HOME`` is pointed at a throwaway
directory here, when pytest loads this conftest, before that import: never at the developer's ``~/airflow``. Tests
that need the metadata DB (DAG runs) run Airflow in subprocesses with an explicit environment
(``tests.plugins.airflow_home``), so they do not depend on what this process imported first.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from infra.cache_process import CacheProcess
from infra.ports import free_port
from tests.plugins.airflow_home import AirflowHome, connection_json
from tests.plugins.cache_data import put_events

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_HOME = Path(tempfile.mkdtemp(prefix="lakecache-airflow-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


@pytest.fixture(scope="session")
def airflow_home() -> AirflowHome:
    """The session's Airflow home, for Airflow subprocesses that need no metadata DB."""
    return AirflowHome(_HOME)


@pytest.fixture(scope="session")
def airflow_db(airflow_home: AirflowHome) -> AirflowHome:
    """The session's Airflow home with its metadata DB migrated (once: it takes a few seconds)."""
    airflow_home.migrate()
    return airflow_home


@pytest.fixture
def events_cache(cache_factory, s3_client: S3Client, bucket: str) -> CacheProcess:
    """A started cache (64 KiB pages) mounting ``/warehouse`` on a bucket holding ``put_events``' data."""
    put_events(s3_client, bucket)
    return cache_factory({"/warehouse": f"s3://{bucket}/warehouse"}, {"store": {"page_size": "64KiB"}})


@pytest.fixture
def lakecache_default(events_cache: CacheProcess, monkeypatch: pytest.MonkeyPatch) -> CacheProcess:
    """``events_cache`` as the ``lakecache_default`` connection (``AIRFLOW_CONN_LAKECACHE_DEFAULT``)."""
    monkeypatch.setenv("AIRFLOW_CONN_LAKECACHE_DEFAULT", connection_json(events_cache))
    return events_cache


@pytest.fixture
def down_port() -> int:
    """The port of a cache that is not running: a loopback port nothing listens on."""
    return free_port()
