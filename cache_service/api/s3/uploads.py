"""Unfinished multipart uploads on the disk tier: one directory per upload, a manifest and one file per part.

Uploads survive a restart, as they do in S3. Each file is written under a temporary name and renamed into place,
and a part counts only once its data and its metadata agree, so a crash never leaves a part that looks whole.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cache_service.api.s3.errors import S3Error
from cache_service.under_store import ObjectMetadata

_ID_PREFIX = "lc-"


@dataclass(frozen=True)
class Part:
    """One uploaded part."""

    number: int
    etag: str
    size: int
    modified: float
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Upload:
    """One unfinished multipart upload and the directory holding it."""

    id: str
    bucket: str
    key: str
    initiated: float
    directory: Path
    checksum_algorithm: str | None = None
    metadata: ObjectMetadata = field(default_factory=ObjectMetadata)


def is_local_upload_id(upload_id: str) -> bool:
    """True for ids this cache issued (``lc-`` and 32 hex digits); any other id belongs to S3 itself."""
    rest = upload_id.removeprefix(_ID_PREFIX)
    return upload_id.startswith(_ID_PREFIX) and len(rest) == 32 and all(c in "0123456789abcdef" for c in rest)


class MultipartUploads:
    """Unfinished multipart uploads under ``root``. Blocking file work; ``used_bytes`` is kept up to date."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.used_bytes = 0
        for directory in root.iterdir():
            for leftover in directory.glob("*.tmp"):
                leftover.unlink()  # a part or a join a crash cut short; never acknowledged
            self.used_bytes += sum(p.size for p in self._parts_in(directory))
        self._busy: set[str] = set()

    def create(
        self, bucket: str, key: str, checksum_algorithm: str | None, metadata: ObjectMetadata | None = None
    ) -> Upload:
        """Start an upload of ``bucket``/``key``; the object will have ``metadata``."""
        upload_id = _ID_PREFIX + uuid.uuid4().hex
        metadata = metadata or ObjectMetadata()
        upload = Upload(upload_id, bucket, key, time.time(), self.root / upload_id, checksum_algorithm, metadata)
        upload.directory.mkdir()
        manifest = {
            "bucket": bucket,
            "key": key,
            "initiated": upload.initiated,
            "checksum": checksum_algorithm,
            "content": metadata.content,
            "user": metadata.user,
        }
        _write_json(upload.directory / "upload.json", manifest)
        return upload

    def open(self, upload_id: str, bucket: str, key: str) -> Upload:
        """The upload ``upload_id`` of ``bucket``/``key``. Raises ``NoSuchUpload`` (also for another key's id)."""
        missing = S3Error("NoSuchUpload", UploadId=upload_id)
        if not is_local_upload_id(upload_id) or upload_id in self._busy:
            raise missing
        directory = self.root / upload_id
        try:
            manifest = json.loads((directory / "upload.json").read_text())
        except (OSError, ValueError):
            raise missing from None
        if (manifest.get("bucket"), manifest.get("key")) != (bucket, key):
            raise missing
        metadata = ObjectMetadata(
            tuple((str(k), str(v)) for k, v in manifest.get("content", [])),
            tuple((str(k), str(v)) for k, v in manifest.get("user", [])),
        )
        initiated = float(manifest["initiated"])
        return Upload(upload_id, bucket, key, initiated, directory, manifest.get("checksum"), metadata)

    def spool(self, upload: Upload) -> Path:
        """A fresh temporary file in the upload's directory to receive a part."""
        return upload.directory / f"{uuid.uuid4().hex}.tmp"

    def commit_part(self, upload: Upload, number: int, spooled: Path, part: Part) -> None:
        """Make the checked file ``spooled`` part ``number`` (replacing an earlier upload of that part)."""
        data = upload.directory / f"part-{number:05d}"
        old = data.stat().st_size if data.exists() else 0
        os.replace(spooled, data)
        meta = {"etag": part.etag, "size": part.size, "modified": part.modified, "checksums": part.checksums}
        _write_json(upload.directory / f"part-{number:05d}.json", meta)
        self.used_bytes += part.size - old

    def parts(self, upload: Upload) -> list[Part]:
        """The upload's parts by number."""
        return self._parts_in(upload.directory)

    @staticmethod
    def _parts_in(directory: Path) -> list[Part]:
        parts = []
        for meta_path in sorted(directory.glob("part-*.json")):
            data = meta_path.with_suffix("")
            try:
                meta = json.loads(meta_path.read_text())
                if data.stat().st_size != meta["size"]:
                    continue  # a crash between the data and its metadata: the part was never acknowledged
                number = int(data.name.removeprefix("part-"))
                parts.append(Part(number, meta["etag"], meta["size"], meta["modified"], meta.get("checksums", {})))
            except (OSError, ValueError, KeyError):
                continue
        return parts

    def claim(self, upload: Upload) -> None:
        """Mark ``upload`` as being completed or aborted: other requests see it no more."""
        self._busy.add(upload.id)

    def release(self, upload: Upload) -> None:
        """Undo ``claim`` (the completion failed; the upload stays as it was)."""
        self._busy.discard(upload.id)

    def join(self, upload: Upload, numbers: list[int]) -> Path:
        """One file holding parts ``numbers`` in order (blocking)."""
        joined = upload.directory / "joined.tmp"
        with open(joined, "wb") as out:
            for number in numbers:
                with open(upload.directory / f"part-{number:05d}", "rb") as part:
                    shutil.copyfileobj(part, out, 1 << 20)
        return joined

    def remove(self, upload: Upload) -> None:
        """Delete the upload with its parts."""
        self.used_bytes -= sum(p.size for p in self.parts(upload))
        shutil.rmtree(upload.directory, ignore_errors=True)
        self._busy.discard(upload.id)


def _write_json(path: Path, value: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)
