"""Tables the way a committed Spark job leaves them in S3: small Parquet files written with pyarrow."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def parquet_bytes(columns: Mapping[str, Sequence[Any] | pa.Array]) -> bytes:
    """A small Parquet file holding ``columns``."""
    buffer = io.BytesIO()
    pq.write_table(pa.table(dict(columns)), buffer)
    return buffer.getvalue()


class TableWriter:
    """Writes a table's objects straight into S3, the way a committed Spark job leaves them."""

    def __init__(self, client: S3Client, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key

    def put(self, rel: str, data: bytes) -> None:
        """Write ``data`` at ``rel`` below the table root."""
        self.client.put_object(Bucket=self.bucket, Key=f"{self.key}/{rel}", Body=data)

    def partition(self, rel: str, rows: int = 3, *, name: str = "part-00000.parquet", **extra: Sequence[Any]) -> None:
        """A data file of ``rows`` rows (columns id, amount and ``extra``) in directory ``rel``."""
        columns: dict[str, Any] = {"id": list(range(rows)), "amount": [i * 2.5 for i in range(rows)], **extra}
        self.put(f"{rel}/{name}" if rel else name, parquet_bytes(columns))

    def commit(self) -> None:
        """The job's ``_SUCCESS`` marker."""
        self.put("_SUCCESS", b"")

    def delete(self, rel: str) -> None:
        """Remove every object below ``rel``."""
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.key}/{rel}")
        for obj in listing.get("Contents", []):
            self.client.delete_object(Bucket=self.bucket, Key=obj["Key"])
