"""Retries with exponential backoff: the one helper every backend uses for throttling and capacity errors.

A backend says which failures are transient (``transient(error) -> reason or None``); anything else is raised at
once. Each retried failure is reported (``Attempts.failures``) so a scale result can say what it went through.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from lakecache_airflow.scaling.base import RetriesExhaustedError

T = TypeVar("T")

#: ``transient(error)`` returns a few words on why ``error`` is worth retrying, or None if it is not.
Transient = Callable[[BaseException], "str | None"]


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently to retry: ``attempts`` calls in all, delays doubling from ``base`` to ``cap``.

    ``jitter`` spreads each delay uniformly over [delay/2, delay], so that many clients throttled at once do not
    come back at once (AWS's advice for throttling).
    """

    attempts: int = 5
    base: float = 0.5
    cap: float = 20.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")
        if self.base < 0 or self.cap < self.base:
            raise ValueError(f"need 0 <= base <= cap, not base={self.base}, cap={self.cap}")

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        delay = min(self.cap, self.base * 2 ** (retry - 1))
        if self.jitter and delay > 0:
            delay = (rng or random).uniform(delay / 2, delay)
        return float(delay)


@dataclass
class Attempts:
    """What the calls of one operation met: their count and, for each failure that was retried, why."""

    calls: int = 0
    failures: list[str] = field(default_factory=list)


def call_with_backoff(
    operation: Callable[[], T],
    *,
    what: str,
    transient: Transient,
    backoff: Backoff,
    attempts: Attempts | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[str], None] | None = None,
) -> T:
    """Call ``operation`` until it succeeds, retrying transient failures with backoff.

    ``what`` names the operation in messages ("autoscaling SetDesiredCapacity"). ``attempts`` (optional)
    accumulates calls and retried failures across several operations. ``on_retry`` gets one line per retry.
    Raises the first non-transient error as is, and ``RetriesExhaustedError`` once ``backoff.attempts`` calls
    all failed transiently.
    """
    record = attempts if attempts is not None else Attempts()
    started = time.monotonic()
    tried: list[str] = []
    for attempt in range(1, backoff.attempts + 1):
        record.calls += 1
        try:
            return operation()
        except Exception as exc:
            reason = transient(exc)
            if reason is None:
                raise
            tried.append(reason)
            if attempt == backoff.attempts:
                break
            delay = backoff.delay(attempt)
            line = f"{what}: attempt {attempt} of {backoff.attempts} failed ({reason}); retrying in {delay:.2f}s"
            record.failures.append(line)
            if on_retry is not None:
                on_retry(line)
            sleep(delay)
    elapsed = time.monotonic() - started
    raise RetriesExhaustedError(
        f"{what} failed {backoff.attempts} times over {elapsed:.1f}s; last: {tried[-1]}", tuple(tried)
    )
