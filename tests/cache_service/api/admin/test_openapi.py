"""The admin API's OpenAPI description: docs/admin-api.yaml, served as /admin/v1/openapi.json, lists every route."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from cache_service.api.admin.api import AdminApi
from cache_service.api.admin.openapi import DESCRIPTION
from tests.support.caches import CacheFactory

DOC = Path(__file__).resolve().parents[4] / "docs" / "admin-api.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_the_package_serves_the_docs_file_itself() -> None:
    assert DESCRIPTION.read_bytes() == DOC.read_bytes()


def test_every_admin_route_is_described_and_every_described_route_exists() -> None:
    # The routes are the API's own table; building it needs nothing of a running service.
    routes = AdminApi(SimpleNamespace(manager=None)).endpoints()  # type: ignore[arg-type]
    described = {
        path: frozenset(m.upper() for m in item if m in HTTP_METHODS)
        for path, item in yaml.safe_load(DOC.read_text())["paths"].items()
    }
    assert described == routes


def test_the_worker_serves_the_description_as_json(cache_factory: CacheFactory, bucket: str) -> None:
    cache = cache_factory({"/warehouse": f"s3://{bucket}/warehouse"})
    with urllib.request.urlopen(cache.webhdfs_url + "/admin/v1/openapi.json", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        served: Any = json.load(response)
    assert served == yaml.safe_load(DOC.read_text())
