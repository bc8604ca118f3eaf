"""Running ``cachectl`` (``python -m cache_service``) as a user does, for the tests of the CLI and the runbooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from infra.cache_process import REPO_ROOT


@dataclass
class Run:
    """One finished ``cachectl`` process."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)

    def assert_one_line_error(self) -> str:
        """Failed with a single ``cachectl: ...`` line on stderr and no stack trace; returns that line."""
        assert self.code != 0, self.stdout
        assert "Traceback" not in self.stderr and "Traceback" not in self.stdout
        line = self.stderr.strip()
        assert line.startswith("cachectl") and "\n" not in line, self.stderr
        return line


def cachectl(*args: str, endpoint: str, token: str, timeout: float = 120) -> Run:
    # The user's own CACHE_* settings must not leak into the command under test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHE_")}
    env.update(CACHE_ENDPOINT=endpoint, CACHE_ADMIN_TOKEN=token, NO_PROXY="127.0.0.1,localhost")
    done = subprocess.run(
        [sys.executable, "-m", "cache_service", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)
