"""The TOML the launcher writes reads back as the document it was given."""

from __future__ import annotations

import tomllib

import pytest

from infra.toml_writer import dumps, merge


def test_document_with_tables_and_arrays_of_tables_round_trips():
    document = {
        "title": 'quote " backslash \\ tab \t del \x7f unicode ü',
        "server": {"host": "127.0.0.1", "webhdfs_port": 9870, "ratio": 0.75, "debug": False},
        "mounts": [{"path": "/warehouse", "uri": "s3://lake/warehouse"}, {"path": "/raw", "uri": "s3://lake/raw"}],
        "store": {
            "page_size": "1MiB",
            "tiers": [{"medium": "memory", "capacity": "1GiB"}, {"medium": "disk", "path": "/d", "capacity": 5}],
        },
        "write": {"staging_patterns": ["_temporary", ".spark-staging-*"], "empty": []},
        "odd key": {"a.b": 1},
    }

    assert tomllib.loads(dumps(document)) == document


def test_values_toml_cannot_hold_are_rejected():
    with pytest.raises(TypeError, match="None"):
        dumps({"endpoint_url": None})


def test_merge_overrides_keys_inside_tables_and_replaces_lists():
    base = {"server": {"host": "h", "port": 1}, "mounts": [{"path": "/a", "uri": "s3://b/a"}]}

    merged = merge(base, {"server": {"port": 2}, "mounts": []})

    assert merged == {"server": {"host": "h", "port": 2}, "mounts": []}
    assert base["server"] == {"host": "h", "port": 1}
