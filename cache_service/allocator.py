"""How the worker asks glibc's malloc to hand memory back: a bound on its arenas and a fixed mmap threshold.

A worker's pages are buffers of up to a page (1 MiB by default) that are made and freed all day: S3 bodies arriving
on the executor's threads, ``pread`` results of the disk tier, the memory tier's pages dropped by every purge.
glibc serves them from one heap arena per thread (up to eight per core) and, after the first large buffer is freed,
raises its mmap threshold past a page, so later pages come from arenas too, where freed chunks stay in the process
and fragment. The resident size then creeps up for hours: the 30-minute soak of one worker grew 128 to 170 MiB with
its Python objects flat (tracemalloc of a 12-minute run: 63 to 65 MiB all along, while the resident size grew
11 MiB). Three one-worker soaks side by side for 10 minutes: RSS grew 5.8 MiB once warm at glibc's defaults, 2.2 MiB
with at most two arenas, 0.8 MiB with buffers of 256 KiB or more always mmapped (returned to the kernel the moment
they are freed). The worker does both: at most ``ARENA_MAX`` arenas, and ``MMAP_THRESHOLD``.

``limit_fragmentation()`` is called once by ``cachectl serve`` before any thread starts. A setting whose glibc
variable is in the environment (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``) is left as the operator chose;
on a C library without ``mallopt`` (musl, macOS) nothing is changed.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
"""``mallopt`` parameter numbers, from glibc's ``malloc.h``."""
ARENA_MAX = 2
MMAP_THRESHOLD = 256 << 10
"""Buffers of this many bytes or more are mmapped: a page and its S3 body, not a 64 KiB read."""
_SETTINGS = {
    "MALLOC_ARENA_MAX": (M_ARENA_MAX, ARENA_MAX),
    "MALLOC_MMAP_THRESHOLD_": (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
}


def limit_fragmentation(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Apply ``ARENA_MAX`` and ``MMAP_THRESHOLD`` with glibc's ``mallopt``, each unless its variable is set in
    ``environ``; returns what was applied, by variable name (empty where glibc is not the C library)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = {}
    for name, (parameter, value) in _SETTINGS.items():
        if name not in environ and mallopt(parameter, value) == 1:
            applied[name] = value
    return applied
