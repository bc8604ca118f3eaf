"""The backoff helper: transient failures are retried with growing delays and reported; others are not retried."""

from __future__ import annotations

import random

import pytest

from lakecache_airflow.scaling.base import RetriesExhaustedError
from lakecache_airflow.scaling.retry import Attempts, Backoff, call_with_backoff


class ThrottledError(Exception):
    pass


def transient(error: BaseException) -> str | None:
    return "Throttling" if isinstance(error, ThrottledError) else None


def flaky(failures: int):
    calls = {"n": 0}

    def operation() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise ThrottledError()
        return "done"

    return operation, calls


def test_delays_double_from_base_up_to_the_cap() -> None:
    backoff = Backoff(attempts=8, base=0.5, cap=4.0, jitter=False)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_jitter_spreads_each_delay_over_its_upper_half() -> None:
    backoff, rng = Backoff(base=1.0, cap=8.0), random.Random(3)
    for retry in range(1, 6):
        full = min(8.0, 2 ** (retry - 1))
        assert all(full / 2 <= backoff.delay(retry, rng) <= full for _ in range(50))


def test_transient_failures_are_retried_with_backoff_and_reported() -> None:
    operation, calls = flaky(2)
    slept: list[float] = []
    attempts = Attempts()
    result = call_with_backoff(
        operation,
        what="SetDesiredCapacity",
        transient=transient,
        backoff=Backoff(attempts=5, base=0.1, jitter=False),
        attempts=attempts,
        sleep=slept.append,
    )
    assert result == "done" and calls["n"] == 3
    assert slept == [0.1, 0.2]
    assert attempts.calls == 3
    assert attempts.failures == [
        "SetDesiredCapacity: attempt 1 of 5 failed (Throttling); retrying in 0.10s",
        "SetDesiredCapacity: attempt 2 of 5 failed (Throttling); retrying in 0.20s",
    ]


def test_a_failure_that_is_not_transient_is_raised_at_once() -> None:
    calls = {"n": 0}

    def operation() -> None:
        calls["n"] += 1
        raise KeyError("validation")

    with pytest.raises(KeyError):
        call_with_backoff(operation, what="x", transient=transient, backoff=Backoff(), sleep=lambda _: None)
    assert calls["n"] == 1


def test_transient_failures_beyond_the_attempts_give_one_line_with_every_reason() -> None:
    operation, calls = flaky(100)
    with pytest.raises(RetriesExhaustedError) as raised:
        call_with_backoff(
            operation, what="SetDesiredCapacity", transient=transient, backoff=Backoff(attempts=3), sleep=lambda _: None
        )
    assert calls["n"] == 3
    assert raised.value.attempts == ("Throttling",) * 3
    message = str(raised.value)
    assert "\n" not in message and message.startswith("SetDesiredCapacity failed 3 times over ")


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base": -1.0}, {"base": 5.0, "cap": 1.0}])
def test_a_backoff_that_cannot_work_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)  # type: ignore[arg-type]
