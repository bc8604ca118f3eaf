"""Request paths: percent-decoding one component at a time, normalising, and refusing anything that could escape."""

from __future__ import annotations

import pytest

from cache_service.namespace.paths import (
    MAX_COMPONENT_BYTES,
    MAX_PATH_BYTES,
    basename,
    is_within,
    join,
    normalize,
    parent,
    parse_raw_path,
)

REFUSED_RAW_PATHS = {
    "dot-dot": "/warehouse/../secret",
    "encoded dot-dot, lower case": "/warehouse/%2e%2e/secret",
    "encoded dot-dot, upper case": "/warehouse/%2E%2E/secret",
    "half-encoded dot-dot": "/warehouse/.%2e/secret",
    "trailing dot-dot": "/warehouse/t/..",
    "dot": "/warehouse/./t",
    "encoded dot": "/warehouse/%2e/t",
    "encoded slash inside a component": "/warehouse/a%2Fb",
    "encoded slash, lower case": "/warehouse/a%2fb",
    "encoded slash making dot-dot": "/warehouse/..%2Fsecret",
    "encoded NUL": "/warehouse/a%00b",
    "raw NUL": "/warehouse/a\x00b",
    "encoded newline": "/warehouse/a%0Ab",
    "encoded tab": "/warehouse/a%09b",
    "encoded unit separator": "/warehouse/a%1Fb",
    "encoded DEL": "/warehouse/a%7Fb",
    "raw control character": "/warehouse/a\x01b",
    "not UTF-8 after decoding": "/warehouse/%FF%FE",
    "overlong UTF-8 dot": "/warehouse/%C0%AE%C0%AE",
    "over-long path": "/" + "/".join(["d" * 100] * (MAX_PATH_BYTES // 100 + 1)),
    "over-long component": "/warehouse/" + "c" * (MAX_COMPONENT_BYTES + 1),
    "over-long after decoding multibyte": "/warehouse/" + "%C3%A9" * (MAX_COMPONENT_BYTES // 2 + 1),
}


@pytest.mark.parametrize("raw", REFUSED_RAW_PATHS.values(), ids=REFUSED_RAW_PATHS.keys())
def test_parse_raw_path_refuses_paths_that_could_escape_or_are_malformed(raw):
    with pytest.raises(ValueError, match="Invalid path name"):
        parse_raw_path(raw)


def test_parse_raw_path_refuses_a_relative_path():
    # The WebHDFS route matches "/webhdfs/v1{tail}", so "/webhdfs/v1warehouse/t" reaches here as "warehouse/t";
    # HDFS answers such a request with an error, and so must we (normalize refuses relative paths too).
    with pytest.raises(ValueError, match="Invalid path name"):
        parse_raw_path("warehouse/t")


REFUSED_DECODED_PATHS = {
    "relative": "warehouse/t",
    "empty": "",
    "relative dot-dot": "../warehouse",
    "dot-dot": "/warehouse/../secret",
    "dot": "/warehouse/./t",
    "NUL": "/warehouse/a\x00b",
    "control character": "/warehouse/a\x1bb",
    "DEL": "/warehouse/a\x7fb",
    "over-long path": "/" + "x" * MAX_PATH_BYTES,
    "over-long component": "/" + "x" * (MAX_COMPONENT_BYTES + 1),
}


@pytest.mark.parametrize("path", REFUSED_DECODED_PATHS.values(), ids=REFUSED_DECODED_PATHS.keys())
def test_normalize_refuses_relative_escaping_and_oversize_paths(path):
    with pytest.raises(ValueError, match="Invalid path name"):
        normalize(path)


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ("//a///b/", "/a/b"),
        ("/", "/"),
        ("///", "/"),
        ("/a%20b/c%2Bd", "/a b/c+d"),
        ("/caf%C3%A9/x", "/café/x"),
        ("/dt=2024-01-01/part-0.parquet", "/dt=2024-01-01/part-0.parquet"),
        ("/a/%252e%252e", "/a/%2e%2e"),  # decoded once: a literal name, not a parent reference
        ("/a/...", "/a/..."),
        ("/a/..b", "/a/..b"),
    ],
)
def test_parse_raw_path_decodes_and_normalises(raw, path):
    assert parse_raw_path(raw) == path


def test_normalize_collapses_repeated_and_trailing_slashes():
    assert normalize("//a///b/") == "/a/b"
    assert normalize("/") == "/"


def test_longest_allowed_path_and_component_are_accepted():
    component = "c" * MAX_COMPONENT_BYTES
    assert normalize("/" + component) == "/" + component
    longest = "/" + "/".join(["d" * 99] * (MAX_PATH_BYTES // 100))
    assert len(longest) <= MAX_PATH_BYTES
    assert normalize(longest) == longest


@pytest.mark.parametrize(
    ("path", "expected_parent", "expected_name"),
    [("/a/b/c", "/a/b", "c"), ("/a", "/", "a"), ("/", "/", "")],
)
def test_parent_and_basename_split_a_normalised_path(path, expected_parent, expected_name):
    assert parent(path) == expected_parent
    assert basename(path) == expected_name


def test_join_adds_exactly_one_separator():
    assert join("/a", "b") == "/a/b"
    assert join("/", "b") == "/b"


@pytest.mark.parametrize(
    ("path", "ancestor", "inside"),
    [
        ("/a/b", "/a", True),
        ("/a", "/a", True),
        ("/anything", "/", True),
        ("/ab", "/a", False),
        ("/a", "/a/b", False),
        ("/b/a", "/a", False),
    ],
)
def test_is_within_respects_component_boundaries(path, ancestor, inside):
    assert is_within(path, ancestor) is inside
