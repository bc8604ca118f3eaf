"""How the worker keeps glibc's malloc from fragmenting its memory: a bound on its arenas.

A worker's pages are buffers of up to a page (1 MiB by default) that are made and freed all day: S3 bodies arriving
on the executor's threads, ``pread`` results of the disk tier, the memory tier's pages dropped by every purge.
glibc serves them from one heap arena per thread (up to eight per core) and, after the first large buffer is freed,
raises its mmap threshold past a page, so later pages come from arenas too, where freed chunks stay in the process
and fragment. The resident size then creeps up for hours: the 30-minute soak of one worker grew 128 to 170 MiB with
its Python objects flat (tracemalloc of a 12-minute run: 63 to 65 MiB all along, while the resident size grew
11 MiB). Three one-worker soaks side by side for 10 minutes: RSS grew 5.8 MiB once warm at glibc's defaults, 2.2 MiB
with at most two arenas, 0.8 MiB with buffers of 256 KiB or more always mmapped.

The worker bounds the arenas (``ARENA_MAX``) and leaves the mmap threshold alone: a buffer mmapped afresh is
page-faulted in on its first write, and a 1 MiB ``pread`` then took about 0.9 ms instead of 0.06 to 0.1 ms, on the
read path of every page-sized read (the arena bound costs it nothing measurable).

``limit_fragmentation()`` is called once by ``cachectl serve`` before any thread starts. If glibc's own
``MALLOC_ARENA_MAX`` is in the environment, the operator's choice is left alone; on a C library without ``mallopt``
(musl, macOS) nothing is changed.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

M_ARENA_MAX = -8
"""``mallopt``'s parameter number for the arena bound, from glibc's ``malloc.h``."""
ARENA_MAX = 2
ENVIRONMENT = "MALLOC_ARENA_MAX"
"""glibc's own variable for the same setting."""


def limit_fragmentation(environ: Mapping[str, str] = os.environ) -> int | None:
    """Bound glibc's arenas to ``ARENA_MAX`` with ``mallopt`` unless ``ENVIRONMENT`` is set in ``environ``; returns
    the bound applied, or None (the operator's own setting, or glibc is not the C library)."""
    if ENVIRONMENT in environ:
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return ARENA_MAX if mallopt(M_ARENA_MAX, ARENA_MAX) == 1 else None
