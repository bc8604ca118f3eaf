"""Human-written sizes and durations, as found in the configuration file and in env overrides."""

from __future__ import annotations

import pytest

from cache_service.units import format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (4096, 4096),
        ("4096", 4096),
        ("0", 0),
        ("12B", 12),
        ("64KiB", 64 * 1024),
        ("64kib", 64 * 1024),
        ("1MiB", 1024**2),
        ("4 MiB", 4 * 1024**2),
        (" 20GiB ", 20 * 1024**3),
        ("2TiB", 2 * 1024**4),
        ("1KB", 1000),
        ("1.5GB", 1_500_000_000),
        ("1.5MiB", 1536 * 1024),
        ("3M", 3_000_000),
    ],
)
def test_parse_size_reads_decimal_and_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30.0),
        (0.5, 0.5),
        ("30", 30.0),
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        ("2d", 172_800.0),
        ("10 S", 10.0),
    ],
)
def test_parse_duration_reads_seconds_and_units(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


NOT_SIZES = ["", "MiB", "4 furlongs", "1e3", "-1", "-1MiB", "1.2.3KB", "KiB4", True, -1]
NOT_DURATIONS = ["", "s", "5 minutes", "-5s", "1w", "5MiB", False, -1]


@pytest.mark.parametrize(
    ("parse", "kind", "text"),
    [(parse_size, "size", text) for text in NOT_SIZES] + [(parse_duration, "duration", text) for text in NOT_DURATIONS],
)
def test_parse_refuses_what_is_not_a_size_or_a_duration_and_names_it(parse, kind, text):
    with pytest.raises(ValueError, match=kind) as excinfo:
        parse(text)
    assert str(text) in str(excinfo.value)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536 * 1024, "1.5 MiB"), (20 * 1024**3, "20.0 GiB")],
)
def test_format_size_renders_binary_units(size, text):
    assert format_size(size) == text


def test_format_size_stops_at_tib_for_huge_sizes():
    assert format_size(2048 * 1024**4) == "2048.0 TiB"


def test_a_formatted_size_parses_back_to_the_same_size():
    for size in (0, 17, 64 * 1024, 3 * 1024**3):
        assert parse_size(format_size(size).replace(" ", "")) == size
