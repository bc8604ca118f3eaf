"""A small admin API client for tests (JSON over urllib, bearer token)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any


class AdminClient:
    """Calls ``/admin/v1`` of the cache at ``base_url`` with ``token``."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url, token

    def call(self, method: str, endpoint: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        """Return (status, decoded JSON)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}/admin/v1/{endpoint}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token if token is None else token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def ok(self, method: str, endpoint: str, body: Any = None) -> Any:
        """The JSON of a call that must succeed."""
        status, payload = self.call(method, endpoint, body)
        assert status < 300, (status, payload)
        return payload

    def wait_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        """Poll a job until it finishes; returns its record."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.ok("GET", f"jobs/{job_id}")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish in {timeout}s")
