"""The mount table: cache paths to S3 locations and back, longest mount first, no S3 object reachable twice."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cache_service.config import MountConfig
from cache_service.namespace.mounts import MountTable
from cache_service.namespace.paths import is_within, parse_raw_path


def table(*mounts: tuple[str, str]) -> MountTable:
    return MountTable([MountConfig(path=path, uri=uri) for path, uri in mounts])


NESTED = table(
    ("/data", "s3://lake/warehouse/data"),
    ("/data/hot", "s3://fast/hot"),
    ("/scratch", "s3://scratch"),
)


@pytest.mark.parametrize(
    ("path", "bucket", "key", "mount_path"),
    [
        ("/data", "lake", "warehouse/data", "/data"),
        ("/data/t/dt=1/part-0", "lake", "warehouse/data/t/dt=1/part-0", "/data"),
        ("/data/hotter", "lake", "warehouse/data/hotter", "/data"),
        ("/data/hot", "fast", "hot", "/data/hot"),
        ("/data/hot/t/part-0", "fast", "hot/t/part-0", "/data/hot"),
        ("/scratch", "scratch", "", "/scratch"),
        ("/scratch/a/b", "scratch", "a/b", "/scratch"),
    ],
)
def test_resolve_picks_the_longest_mount_containing_the_path(path, bucket, key, mount_path):
    location = NESTED.resolve(path)

    assert (location.bucket, location.key, location.mount.path) == (bucket, key, mount_path)
    assert location.is_mount_point is (path == mount_path)


def test_mounts_are_listed_longest_path_first():
    assert [m.path for m in NESTED.mounts] == ["/data/hot", "/scratch", "/data"]


def test_mount_and_location_uris_name_the_s3_objects():
    assert NESTED.resolve("/data/x").uri == "s3://lake/warehouse/data/x"
    assert NESTED.resolve("/scratch").mount.uri == "s3://scratch"


@pytest.mark.parametrize("path", ["/", "/dat", "/datas/x", "/other/data", "/scratchpad"])
def test_paths_outside_every_mount_are_not_found(path):
    with pytest.raises(FileNotFoundError, match="outside every mount"):
        NESTED.resolve(path)


@pytest.mark.parametrize(
    "path",
    ["/data", "/data/t/part-0", "/data/hotter/x", "/data/hot", "/data/hot/a/b", "/scratch", "/scratch/a/b"],
)
def test_to_path_inverts_resolve(path):
    location = NESTED.resolve(path)

    assert NESTED.to_path(location.bucket, location.key) == path


@pytest.mark.parametrize(
    ("bucket", "key"),
    [("lake", "warehouse/other/x"), ("lake", "warehouse/database"), ("elsewhere", "warehouse/data/x"), ("fast", "")],
)
def test_to_path_is_none_for_objects_no_mount_covers(bucket, key):
    assert NESTED.to_path(bucket, key) is None


def test_to_path_is_none_for_an_object_hidden_below_a_nested_mount():
    # s3://lake/warehouse/data/hot/x has no cache path: /data/hot/x is the nested mount's s3://fast/hot/x.
    # Any path returned here would name another object's bytes.
    path = NESTED.to_path("lake", "warehouse/data/hot/x")

    assert path is None or NESTED.resolve(path).uri == "s3://lake/warehouse/data/hot/x"


def test_mount_points_below_and_virtual_directories():
    deep = table(("/a/b/c", "s3://lake/c"), ("/a/d", "s3://lake/d"))

    assert deep.mount_points_below("/") == {"a"}
    assert deep.mount_points_below("/a") == {"b", "d"}
    assert deep.is_virtual_dir("/")
    assert deep.is_virtual_dir("/a/b")
    assert not deep.is_virtual_dir("/a/b/c")
    assert not deep.is_virtual_dir("/a/b/c/x")
    assert not deep.is_virtual_dir("/elsewhere")


@pytest.mark.parametrize(
    ("mounts", "message"),
    [
        ([("/", "s3://lake")], "cannot mount at '/'"),
        ([("relative", "s3://lake/x")], "must be absolute"),
        ([("/a/../b", "s3://lake/x")], "'.' and '..'"),
        ([("/a", "http://lake/x")], "expected s3://bucket[/prefix]"),
        ([("/a", "s3:///x")], "expected s3://bucket[/prefix]"),
        ([("/a", "s3://lake/x/../y")], "'.' or '..'"),
        ([("/a", "s3://lake/x//y")], "empty"),
        ([("/a", "s3://lake/x"), ("/a/", "s3://other/y")], "'/a' is mounted twice"),
        ([("/a", "s3://lake/x"), ("/b", "s3://lake/x/y")], "share S3 objects"),
        ([("/a", "s3://lake/x/y"), ("/b", "s3a://lake/x")], "share S3 objects"),
        ([("/a", "s3://lake"), ("/b", "s3://lake/anything")], "share S3 objects"),
    ],
)
def test_invalid_or_overlapping_mounts_are_refused(mounts, message):
    with pytest.raises(ValueError, match=r"^mounts: ") as excinfo:
        table(*mounts)
    assert message in str(excinfo.value)


def test_sibling_prefixes_sharing_leading_characters_do_not_overlap():
    siblings = table(("/a", "s3://lake/warehouse"), ("/b", "s3://lake/warehouse2"))

    assert siblings.resolve("/b/x").key == "warehouse2/x"


def test_every_mount_problem_is_its_own_line():
    with pytest.raises(ValueError) as excinfo:
        table(("/", "s3://lake"), ("/a", "ftp://x"), ("/b", "s3://lake/p"), ("/b", "s3://other/q"))

    assert len(str(excinfo.value).splitlines()) == 3


# --- no request path escapes its mount -----------------------------------------------------------------------

ESCAPE = table(("/data", "s3://lake/warehouse/data"))
TRICKY = [
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e",
    "%2F",
    "..%2F..",
    "%2F..%2F",
    "%00",
    "%C0%AE%C0%AE",
    "%252e%252e",
    "%",
    "%2",
    "\\..",
    "data",
    "",
]
segments = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=12)), max_size=8)


@given(segments)
def test_a_parsed_request_path_never_resolves_outside_its_mount(parts):
    raw = "/data/" + "/".join(parts)
    try:
        path = parse_raw_path(raw)
    except ValueError:
        return
    location = ESCAPE.resolve(path)

    assert is_within(path, "/data")
    assert location.bucket == "lake"
    assert location.key == "warehouse/data" or location.key.startswith("warehouse/data/")
    assert all(part not in ("", ".", "..") for part in location.key.split("/"))
