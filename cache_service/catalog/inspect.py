"""Reading a table from S3: its partitions, data files and schema, and proof that the data is published.

A table is registered only when S3 holds a published whole: no staging object under the table's prefix, the
``_SUCCESS`` marker of the job's commit at its root, and every data file complete: the size S3 lists is the size a
HEAD returns, the Parquet footer is readable at the end of exactly that many bytes, and the column chunks the footer
describes fit before it. The schema is merged from the footers of every file, so a column that only newer files
carry is still registered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from cache_service.catalog.errors import EmptyTableError, TableLayoutError, UnpublishedDataError
from cache_service.catalog.model import Column, check_name
from cache_service.config import WriteConfig
from cache_service.errors import StaleObjectError
from cache_service.under_store.base import ObjectStatus, UnderStore

SUCCESS_MARKER = "_SUCCESS"
_MAGIC = b"PAR1"
_TAIL_READ = 64 * 1024  # one read usually holds the whole footer; a larger footer costs a second read
_MIN_PARQUET = 12  # magic at both ends plus the footer length


@dataclass(frozen=True)
class StoredPartition:
    """A partition directory in S3: its ``values`` (unescaped), its ``directory`` relative to the table root as
    stored (escaped, "" for an unpartitioned table), and its data files."""

    values: tuple[str, ...]
    directory: str
    files: tuple[ObjectStatus, ...]

    @property
    def bytes(self) -> int:
        """Total size of the data files."""
        return sum(f.size for f in self.files)

    @property
    def fingerprint(self) -> str:
        """A digest of the data files' names, sizes and ETags: it changes whenever any file is added, removed or
        rewritten."""
        lines = sorted(f"{f.key.rsplit('/', 1)[-1]}\t{f.size}\t{f.etag}" for f in self.files)
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class StoredTable:
    """A published table in S3: the ``bucket`` and ``key`` of its root, its merged ``columns`` (partition keys left
    out) and its partitions in key order."""

    bucket: str
    key: str
    columns: tuple[Column, ...]
    partitions: tuple[StoredPartition, ...]

    @property
    def files(self) -> int:
        """Number of data files."""
        return sum(len(p.files) for p in self.partitions)

    @property
    def bytes(self) -> int:
        """Total size of the data files."""
        return sum(p.bytes for p in self.partitions)


def is_hidden(name: str) -> bool:
    """True for a path component Spark and Hadoop skip when they read a table (``_SUCCESS``, ``.crc`` files, ...).

    A name starting with "_" that contains "=" is a partition directory (``_source=x``), not hidden: Spark's rule.
    """
    return name.startswith(".") or (name.startswith("_") and "=" not in name) or name.endswith("._COPYING_")


class TableInspector:
    """Reads tables through an ``UnderStore`` (S3), checking ``parallelism`` files at a time.

    ``staging`` gives the path patterns that mark unpublished data (the cache's ``[write] staging_patterns``).
    """

    def __init__(self, store: UnderStore, *, staging: WriteConfig | None = None, parallelism: int = 8) -> None:
        self._store = store
        self._staging = staging or WriteConfig()
        self._parallelism = max(1, parallelism)

    def inspect(self, bucket: str, key: str, partition_keys: Sequence[Column]) -> StoredTable:
        """The table whose root is ``bucket``/``key``, partitioned by ``partition_keys`` (directory order).

        Raises ``UnpublishedDataError`` when the data is not a published whole (see the module docstring),
        ``TableLayoutError`` when the objects do not form such a table or hold no data file, and
        ``FileNotFoundError`` when the bucket does not exist or holds nothing under ``key``.
        """
        root = f"s3://{bucket}/{key}".rstrip("/")
        prefix = f"{key.strip('/')}/" if key.strip("/") else ""
        data: list[ObjectStatus] = []
        staging: list[str] = []
        committed = False
        listed = 0
        for obj in self._store.list_recursive(bucket, prefix):
            listed += 1
            rel = obj.key[len(prefix) :]
            if not rel or rel.endswith("/") or rel.endswith("_$folder$"):
                continue  # directory markers, written by some tools, are not files
            if self._staging.is_staging("/" + rel):
                staging.append(obj.key)
            elif rel == SUCCESS_MARKER:
                committed = True
            elif not any(is_hidden(part) for part in rel.split("/")):
                data.append(obj)
        if not listed:
            raise FileNotFoundError(f"{root}: no such table: nothing is stored under it")
        if staging:
            raise UnpublishedDataError(
                f"{root}: {len(staging)} staging object(s) in S3 (first: {staging[0]}); "
                "a job is still writing the table, or crashed before publishing it"
            )
        if not committed:
            raise UnpublishedDataError(
                f"{root}/{SUCCESS_MARKER} is missing: the job writing the table has not committed yet"
            )
        if not data:
            raise EmptyTableError(f"{root}: no data files, so there is no schema to register")
        partitions = _group(root, prefix, data, partition_keys)
        schemas = self._check_files(data)
        return StoredTable(
            bucket=bucket,
            key=key.strip("/"),
            columns=_columns(root, schemas, partition_keys),
            partitions=partitions,
        )

    def _check_files(self, files: Sequence[ObjectStatus]) -> list[pa.Schema]:
        if self._parallelism == 1 or len(files) == 1:
            return [self._check_file(f) for f in files]
        with ThreadPoolExecutor(self._parallelism, thread_name_prefix="inspect") as pool:
            return list(pool.map(self._check_file, files))

    def _check_file(self, listed: ObjectStatus) -> pa.Schema:
        """The file's Arrow schema, after proving it is complete in S3."""
        bucket, key, size = listed.bucket, listed.key, listed.size
        uri = f"s3://{bucket}/{key}"
        try:
            head = self._store.head(bucket, key)
        except FileNotFoundError:
            raise UnpublishedDataError(f"{uri} vanished while the table was being inspected") from None
        if (head.size, head.etag) != (size, listed.etag):
            raise UnpublishedDataError(
                f"{uri} is {head.size} bytes (ETag {head.etag}) but was listed as {size} bytes (ETag {listed.etag}): "
                "it is being rewritten"
            )
        if size < _MIN_PARQUET:
            raise UnpublishedDataError(f"{uri} is {size} bytes, too short for a Parquet file: a truncated write?")
        tail = self._read(uri, listed, max(0, size - _TAIL_READ))
        if tail[-4:] != _MAGIC:
            raise UnpublishedDataError(f"{uri} does not end with Parquet's magic bytes: truncated, or not Parquet")
        footer = int.from_bytes(tail[-8:-4], "little")
        if footer + _MIN_PARQUET > size:
            raise UnpublishedDataError(f"{uri}: its footer claims {footer} bytes, more than the file's {size}")
        if footer + 8 > len(tail):
            tail = self._read(uri, listed, size - footer - 8)
        try:
            # Only the footer is parsed; pyarrow finds it from the end of the buffer.
            metadata = pq.read_metadata(pa.BufferReader(tail))
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise UnpublishedDataError(f"{uri}: unreadable Parquet footer ({exc})") from None
        data_end = size - footer - 8
        for i in range(metadata.num_row_groups):
            group = metadata.row_group(i)
            for j in range(group.num_columns):
                chunk = group.column(j)
                start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
                if start + chunk.total_compressed_size > data_end:
                    raise UnpublishedDataError(
                        f"{uri}: row group {i} reaches byte {start + chunk.total_compressed_size}, past the footer "
                        f"at {data_end}: the file is shorter than it was written"
                    )
        return metadata.schema.to_arrow_schema()

    def _read(self, uri: str, listed: ObjectStatus, start: int) -> bytes:
        try:
            data = self._store.get_range(listed.bucket, listed.key, start, listed.size, listed.etag)
        except (FileNotFoundError, StaleObjectError):
            raise UnpublishedDataError(f"{uri} changed while the table was being inspected") from None
        if len(data) != listed.size - start:
            raise UnpublishedDataError(f"{uri} holds fewer bytes than the {listed.size} S3 lists: truncated")
        return data


def _group(
    root: str, prefix: str, files: Sequence[ObjectStatus], keys: Sequence[Column]
) -> tuple[StoredPartition, ...]:
    """Group data files into partitions by their ``key=value`` directories."""
    by_values: dict[tuple[str, ...], tuple[str, list[ObjectStatus]]] = {}
    expected = "/".join(f"{k.name}=..." for k in keys)
    for obj in files:
        dirs = obj.key[len(prefix) :].split("/")[:-1]
        if len(dirs) != len(keys):
            where = f"under {expected}/" if keys else "at the table root (no partition keys were given)"
            raise TableLayoutError(f"{root}: data file {obj.key} is not {where}")
        values = []
        for key, directory in zip(keys, dirs, strict=True):
            name, sep, value = directory.partition("=")
            if not sep or name.lower() != key.name:
                raise TableLayoutError(
                    f"{root}: directory {directory!r} of {obj.key}: expected partition key {key.name!r}"
                )
            values.append(unquote(value))  # Spark escapes '/', ':', '=', '%' and others as %XX
        directory = "/".join(dirs)
        seen, members = by_values.setdefault(tuple(values), (directory, []))
        if seen != directory:
            raise TableLayoutError(f"{root}: directories {seen!r} and {directory!r} hold the same partition")
        members.append(obj)
    return tuple(
        StoredPartition(values=values, directory=directory, files=tuple(members))
        for values, (directory, members) in sorted(by_values.items())
    )


def _columns(root: str, schemas: Sequence[pa.Schema], keys: Sequence[Column]) -> tuple[Column, ...]:
    """The data columns, merged over every file; partition keys live in directory names, not in the columns."""
    try:
        merged = pa.unify_schemas(list(schemas), promote_options="permissive")
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise TableLayoutError(f"{root}: the data files' schemas cannot be merged: {exc}") from None
    key_names = {k.name for k in keys}
    columns: list[Column] = []
    for field in merged:
        name = field.name.lower()  # Hive and Athena are case-insensitive and store lower case
        if name in key_names:
            continue  # a file that also stores its partition column: the directory value wins, as in Spark
        try:
            columns.append(Column(check_name("column", name), hive_type(field.type)))
        except ValueError as exc:
            raise TableLayoutError(f"{root}: column {field.name!r}: {exc}") from None
    names = [c.name for c in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TableLayoutError(f"{root}: columns differ only in case: {duplicates}")
    return tuple(columns)


_SIMPLE_TYPES: dict[pa.DataType, str] = {
    pa.bool_(): "boolean",
    pa.int8(): "tinyint",
    pa.int16(): "smallint",
    pa.int32(): "int",
    pa.int64(): "bigint",
    # Unsigned integers widen to the next signed type, as Spark reads them.
    pa.uint8(): "smallint",
    pa.uint16(): "int",
    pa.uint32(): "bigint",
    pa.uint64(): "decimal(20,0)",
    pa.float32(): "float",
    pa.float64(): "double",
    pa.string(): "string",
    pa.large_string(): "string",
    pa.binary(): "binary",
    pa.large_binary(): "binary",
    pa.date32(): "date",
    pa.date64(): "date",
}


def hive_type(t: pa.DataType) -> str:
    """The Hive type string of Arrow type ``t``. Raises ``ValueError`` for a type Hive cannot express."""
    if t in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[t]
    if pa.types.is_dictionary(t):
        return hive_type(t.value_type)
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return f"array<{hive_type(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{hive_type(t.key_type)},{hive_type(t.item_type)}>"
    if pa.types.is_struct(t):
        return (
            "struct<" + ",".join(f"{t.field(i).name}:{hive_type(t.field(i).type)}" for i in range(t.num_fields)) + ">"
        )
    raise ValueError(f"Arrow type {t} has no Hive equivalent")
