"""``limit_fragmentation`` in a process of its own (glibc's settings are per process): both settings applied, or
those the environment does not name already."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cache_service.allocator import ARENA_MAX, MMAP_THRESHOLD

PROBE = "import json; from cache_service.allocator import limit_fragmentation; print(json.dumps(limit_fragmentation()))"


def _applied(**environ: str) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | environ
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    applied: dict[str, int] = json.loads(done.stdout)
    return applied


def test_both_settings_are_applied_on_glibc() -> None:
    assert _applied() == {"MALLOC_ARENA_MAX": ARENA_MAX, "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}


def test_a_setting_the_operator_gave_glibc_is_left_alone() -> None:
    assert _applied(MALLOC_ARENA_MAX="4") == {"MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}
    assert _applied(MALLOC_ARENA_MAX="4", MALLOC_MMAP_THRESHOLD_="65536") == {}
