"""``limit_fragmentation`` in a process of its own (glibc's settings are per process): the arena bound applied, or
left to the operator who set glibc's variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cache_service.allocator import ARENA_MAX

PROBE = "import json; from cache_service.allocator import limit_fragmentation; print(json.dumps(limit_fragmentation()))"


def _applied(**environ: str) -> int | None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | environ
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    applied: int | None = json.loads(done.stdout)
    return applied


def test_the_arena_bound_is_applied_on_glibc() -> None:
    assert _applied() == ARENA_MAX


def test_an_arena_bound_the_operator_gave_glibc_is_left_alone() -> None:
    assert _applied(MALLOC_ARENA_MAX="4") is None
