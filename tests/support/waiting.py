"""Waiting in tests for something another process does: poll, and fail with what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[..., object], timeout: float = 10.0, what: str = "the condition") -> None:
    """Poll ``condition`` every 50 ms until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        time.sleep(0.05)
