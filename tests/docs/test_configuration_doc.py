"""docs/configuration.md lists exactly the keys the configuration accepts, so the two cannot drift apart.

The accepted keys are read from the configuration's own dataclasses (the loader accepts a key exactly when it is a
field of its section's dataclass, of ``MountConfig`` or of ``TierConfig``), and a document setting every one of them
must load. The documented keys are read from the first column of the document's key table: ``section.key``; further
bare names in the same cell share the section (`` `store.high_watermark`, `low_watermark` ``); an array of tables
reads `` `[[store.tiers]] medium, capacity, path` ``, giving ``store.tiers.medium`` and so on.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

from cache_service.config import (
    CacheConfig,
    GrantConfig,
    MountConfig,
    S3ApiConfig,
    S3UserConfig,
    UnderStoreConfig,
    load_config,
)
from infra.toml_writer import dumps

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
TABLE_HEADER = "| section.key | default | meaning |"
_ARRAY_OF_TABLES = re.compile(r"^\[\[([\w.]+)\]\]\s+(.+)$")
_CODE = re.compile(r"`([^`]+)`")


def accepted_keys(cls: type, prefix: str = "") -> set[str]:
    """Every dotted key under the dataclass ``cls``; a tuple of dataclasses (``[[mounts]]``) counts as one table."""
    hints = typing.get_type_hints(cls)
    keys: set[str] = set()
    for field in dataclasses.fields(cls):
        table = _table_type(hints[field.name])
        if table is None:
            keys.add(prefix + field.name)
        else:
            keys |= accepted_keys(table, f"{prefix}{field.name}.")
    return keys


def _table_type(hint: Any) -> type | None:
    """The dataclass a field holds (itself, or the items of ``tuple[X, ...]``), or None for a plain value."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return hint
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _table_type(args[0])
    return None


def documented_keys(text: str) -> list[str]:
    """The dotted keys in the first column of the key table of ``text`` (duplicates kept, so they can be caught)."""
    lines = text.splitlines()
    assert TABLE_HEADER in lines, f"{DOC.name} has lost its key table (header {TABLE_HEADER!r})"
    rows = lines[lines.index(TABLE_HEADER) + 2 :]
    keys: list[str] = []
    for row in rows:
        if not row.startswith("|"):
            break
        first_cell = row.split("|")[1]
        section = ""
        for code in _CODE.findall(first_cell):
            array = _ARRAY_OF_TABLES.match(code)
            if array:
                section = array[1]
                keys += [f"{section}.{name.strip()}" for name in array[2].split(",")]
            elif "." in code:
                section, _, name = code.rpartition(".")
                keys.append(f"{section}.{name}")
            else:
                assert section, f"{code!r} in {row!r} names no section"
                keys.append(f"{section}.{code}")
    return keys


def test_every_accepted_key_is_documented_and_every_documented_key_is_accepted() -> None:
    accepted = accepted_keys(CacheConfig)
    documented = documented_keys(DOC.read_text())

    assert not accepted - set(documented), f"accepted but missing from {DOC.name}"
    assert not set(documented) - accepted, f"in {DOC.name} but not accepted by the configuration"
    assert len(documented) == len(set(documented)), f"listed twice in {DOC.name}"


def test_a_document_setting_every_accepted_key_loads_back_into_the_same_configuration(tmp_path: Path) -> None:
    # Fields whose default is None get a value, so that the document holds every key accepted_keys() finds (the
    # memory tier has no path, the disk tier has one).
    config = CacheConfig(
        under_store=UnderStoreConfig(
            endpoint_url="http://127.0.0.1:5000", access_key_id="key", secret_access_key="secret"
        ),
        mounts=(
            MountConfig(
                path="/warehouse",
                uri="s3://lake/warehouse",
                quota=(("memory", 0.5),),
                read_only=True,
                users=(("etl", "write"),),
            ),
        ),
        s3_api=S3ApiConfig(
            access_key="clients",
            secret_key="secret",
            secret_key_env="SECRET",
            users=(
                S3UserConfig(
                    access_key="etl",
                    secret_key="etl-secret",
                    secret_key_env="ETL_SECRET",
                    grants=(GrantConfig(bucket="lake", prefix="warehouse/", access="write"),),
                ),
            ),
        ),
    )
    document = _toml_ready(dataclasses.asdict(config))
    for mount in document["mounts"]:
        mount["quota"] = dict(mount["quota"])  # a table of medium = cap in the file
        mount["users"] = dict(mount["users"])  # a table of user = access
    assert _keys_of(document) == accepted_keys(CacheConfig)
    path = tmp_path / "every-key.toml"
    path.write_text(dumps(document))

    assert load_config(path, env={}) == config


def _toml_ready(value: Any) -> Any:
    # None is no TOML value: its key is left out (the check on _keys_of says whether it is then set nowhere).
    if isinstance(value, dict):
        return {k: _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_toml_ready(v) for v in value]
    return value


def _keys_of(document: dict[str, Any], prefix: str = "") -> set[str]:
    """The dotted keys a document sets; the items of an array of tables share one prefix; a quota and a mount's
    users are one value each."""
    keys: set[str] = set()
    for key, value in document.items():
        if isinstance(value, dict) and key not in ("quota", "users"):
            keys |= _keys_of(value, f"{prefix}{key}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                keys |= _keys_of(item, f"{prefix}{key}.")
        else:
            keys.add(prefix + key)
    return keys
