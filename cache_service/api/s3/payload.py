"""Request bodies of the S3 API: decoded (``aws-chunked``) and checked against every digest the client declared.

A body is checked as it streams: the payload hash of ``x-amz-content-sha256``, each chunk signature of a streaming
upload, ``Content-MD5``, ``x-amz-checksum-*`` (as a header or a trailer) and its length. The last block is held back
until all of that has been checked, so whoever consumes the body (a spool file, or S3 itself when a request is
forwarded) never receives a complete body that failed a check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from aiohttp import StreamReader
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiMapping

from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.sigv4 import (
    EMPTY_SHA256,
    STREAMING_MODES,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    is_sha256_hex,
    same,
    sign,
)
from cache_service.api.s3.verifier import Authorization

MAX_OBJECT_SIZE = 5 * 1024**3  # S3's limit for one PUT (and one part)
_PIECE = 1 << 20
_MAX_CHUNK_HEADER = 4096
_CHUNK_SIZE = re.compile(r"[0-9a-fA-F]{1,16}")
# Algorithms whose checksums S3 accepts; the cache computes those the standard library can (others pass unchecked).
CHECKSUM_ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return struct.pack(">I", self._value)


def _checksum_hash(algorithm: str) -> _Hash | None:
    if algorithm == "crc32":
        return _Crc32()
    if algorithm in ("sha1", "sha256"):
        return hashlib.new(algorithm)
    return None


@dataclass
class Digests:
    """What a fully read body hashed to: its size, its MD5 (when asked for) and the checksums the client declared."""

    size: int = 0
    md5_hex: str | None = None
    checksums: dict[str, str] = field(default_factory=dict)


class Payload:
    """The body of one verified request. Iterate ``chunks()`` once (or call ``read``/``spool``)."""

    def __init__(
        self, content: StreamReader, headers: MultiMapping[str], auth: Authorization, *, md5: bool = False
    ) -> None:
        self._content = content
        self._headers = headers
        self._auth = auth
        self.streaming = auth.payload_hash in STREAMING_MODES
        self.length = self._declared_length()
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 or "Content-MD5" in headers else None
        self._sha256 = hashlib.sha256() if is_sha256_hex(auth.payload_hash) else None
        self._checksums = self._declared_checksums()
        self._hashers = {alg: h for alg in self._checksums if (h := _checksum_hash(alg)) is not None}
        self._trailer = headers.get("x-amz-trailer", "").strip().lower()
        if self._trailer and self._trailer.removeprefix("x-amz-checksum-") not in CHECKSUM_ALGORITHMS:
            raise S3Error(
                "InvalidRequest", f"The value specified in the x-amz-trailer header is not supported: {self._trailer}"
            )
        if self._trailer:
            algorithm = self._trailer.removeprefix("x-amz-checksum-")
            if (h := _checksum_hash(algorithm)) is not None:
                self._hashers[algorithm] = h
        self.digests = Digests()

    def _declared_length(self) -> int | None:
        name = "x-amz-decoded-content-length" if self.streaming else "Content-Length"
        text = self._headers.get(name)
        if text is None:
            return None
        try:
            value = int(text)
        except ValueError:
            raise S3Error("InvalidArgument", f"{name} is not a number", ArgumentName=name) from None
        if value < 0:
            raise S3Error("InvalidArgument", f"{name} is negative", ArgumentName=name)
        return value

    def _declared_checksums(self) -> dict[str, str]:
        declared = {}
        for algorithm in CHECKSUM_ALGORITHMS:
            value = self._headers.get(f"x-amz-checksum-{algorithm}")
            if value is not None:
                _decode_b64(value, f"x-amz-checksum-{algorithm}")
                declared[algorithm] = value.strip()
        if len(declared) > 1:
            raise S3Error(
                "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            )
        return declared

    def require_length(self, limit: int = MAX_OBJECT_SIZE) -> int:
        """The declared (decoded) length. Raises ``MissingContentLength`` or ``EntityTooLarge``."""
        if self.length is None:
            raise S3Error("MissingContentLength")
        if self.length > limit:
            raise S3Error("EntityTooLarge", ProposedSize=str(self.length), MaxSizeAllowed=str(limit))
        return self.length

    @property
    def has_integrity_check(self) -> bool:
        """True when the client declared a Content-MD5 or an ``x-amz-checksum-*`` (header or trailer)."""
        return "Content-MD5" in self._headers or bool(self._checksums) or bool(self._trailer)

    # --- reading ---

    async def chunks(self) -> AsyncIterator[bytes]:
        """The decoded body; the last block only once every check passed. Raises ``S3Error``."""
        held: bytes | None = None
        try:
            async for piece in self._decoded():
                self._account(piece)
                if held is not None:
                    yield held
                held = piece
        except (HttpProcessingError, ConnectionError, EOFError, ValueError) as exc:
            raise S3Error("IncompleteBody", f"The request body ended early: {exc}") from None
        self._finish()
        if held is not None:
            yield held

    async def read(self, limit: int) -> bytes:
        """The whole body, at most ``limit`` bytes. Raises ``MaxMessageLengthExceeded`` beyond, ``S3Error``."""
        if self.length is not None and self.length > limit:
            raise S3Error("MaxMessageLengthExceeded", f"Your request was too big (limit {limit} bytes).")
        parts: list[bytes] = []
        size = 0
        async for piece in self.chunks():
            size += len(piece)
            if size > limit:
                raise S3Error("MaxMessageLengthExceeded", f"Your request was too big (limit {limit} bytes).")
            parts.append(piece)
        return b"".join(parts)

    async def spool(self, path: Path) -> Digests:
        """Write the body to ``path`` and return its digests. Raises ``S3Error`` (``path`` then holds garbage)."""
        with open(path, "wb") as f:
            async for piece in self.chunks():
                f.write(piece)
        return self.digests

    def _account(self, piece: bytes) -> None:
        self.digests.size += len(piece)
        for h in (self._md5, self._sha256, *self._hashers.values()):
            if h is not None:
                h.update(piece)

    async def _decoded(self) -> AsyncIterator[bytes]:
        if not self.streaming:
            while piece := await self._content.read(_PIECE):
                yield piece
            return
        previous = self._auth.signature
        signed = self._auth.payload_hash != STREAMING_UNSIGNED_TRAILER
        while True:
            size, signature = await self._chunk_header(signed)
            chunk_hash = hashlib.sha256()
            remaining = size
            while remaining:
                piece = await self._content.readexactly(min(remaining, _PIECE))
                remaining -= len(piece)
                chunk_hash.update(piece)
                yield piece
            if signed:
                previous = self._check_chunk(previous, chunk_hash.hexdigest(), signature)
            if size == 0:
                break
            if await self._content.readexactly(2) != b"\r\n":
                raise S3Error("IncompleteBody", "A chunk of the aws-chunked body does not end with CRLF")
        await self._read_trailer(previous)

    async def _chunk_header(self, signed: bool) -> tuple[int, str]:
        line = await self._content.readline()
        if not line.endswith(b"\r\n") or len(line) > _MAX_CHUNK_HEADER:
            raise S3Error("IncompleteBody", "The aws-chunked body has a malformed chunk header")
        size_text, _, extension = line[:-2].decode("latin-1").partition(";")
        # Hex digits only: int(..., 16) also takes "-5", and a negative size would read nothing forever.
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise S3Error("IncompleteBody", f"Invalid chunk size {size_text!r} in the aws-chunked body")
        size = int(size_text, 16)
        name, _, signature = extension.partition("=")
        if signed and (name.strip() != "chunk-signature" or not signature):
            raise S3Error("SignatureDoesNotMatch", "A chunk of the aws-chunked body is not signed")
        return size, signature.strip()

    def _check_chunk(self, previous: str, chunk_sha256: str, signature: str) -> str:
        text = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", self._auth.amz_date, self._auth.scope, previous, EMPTY_SHA256, chunk_sha256]
        )
        expected = sign(self._auth.signing_key, text)
        if not same(expected, signature.lower()):
            raise S3Error(
                "SignatureDoesNotMatch",
                "A chunk signature of the aws-chunked body does not match",
                StringToSign=text,
                SignatureProvided=signature,
            )
        return expected

    async def _read_trailer(self, previous: str) -> None:
        if self._auth.payload_hash not in (STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
            if await self._content.readexactly(2) != b"\r\n":
                raise S3Error("IncompleteBody", "The aws-chunked body does not end with CRLF")
            return
        lines: list[tuple[str, str]] = []
        while (line := await self._content.readline()) not in (b"\r\n", b"\n", b""):
            if len(line) > _MAX_CHUNK_HEADER or len(lines) > 8:
                raise S3Error("IncompleteBody", "The trailer of the aws-chunked body is too long")
            name, _, value = line.decode("latin-1").strip().partition(":")
            lines.append((name.strip().lower(), value.strip()))
        trailer = [(n, v) for n, v in lines if n != "x-amz-trailer-signature"]
        if self._auth.payload_hash == STREAMING_SIGNED_TRAILER:
            provided = next((v for n, v in lines if n == "x-amz-trailer-signature"), "")
            text = "\n".join(
                [
                    "AWS4-HMAC-SHA256-TRAILER",
                    self._auth.amz_date,
                    self._auth.scope,
                    previous,
                    hashlib.sha256("".join(f"{n}:{v}\n" for n, v in trailer).encode()).hexdigest(),
                ]
            )
            if not same(sign(self._auth.signing_key, text), provided.lower()):
                raise S3Error("SignatureDoesNotMatch", "The trailer signature of the aws-chunked body does not match")
        for name, value in trailer:
            algorithm = name.removeprefix("x-amz-checksum-")
            if name == self._trailer and algorithm in CHECKSUM_ALGORITHMS:
                _decode_b64(value, name)
                self._checksums[algorithm] = value

    def _finish(self) -> None:
        size = self.digests.size
        if self.length is not None and size != self.length:
            raise S3Error(
                "IncompleteBody",
                f"The body holds {size} bytes where {self.length} were declared",
            )
        if self._sha256 is not None and self._sha256.hexdigest() != self._auth.payload_hash.lower():
            raise S3Error(
                "XAmzContentSHA256Mismatch",
                ClientComputedContentSHA256=self._auth.payload_hash,
                S3ComputedContentSHA256=self._sha256.hexdigest(),
            )
        if self._md5 is not None:
            self.digests.md5_hex = self._md5.hexdigest()
            declared = self._headers.get("Content-MD5")
            if declared is not None:
                expected = _decode_b64(declared, "Content-MD5", md5=True)
                if expected != self._md5.digest():
                    raise S3Error("BadDigest", ExpectedDigest=declared.strip())
        if self._trailer and self._trailer.removeprefix("x-amz-checksum-") not in self._checksums:
            raise S3Error("IncompleteBody", f"The trailer {self._trailer} declared in x-amz-trailer is missing")
        for algorithm, declared in self._checksums.items():
            hasher = self._hashers.get(algorithm)
            if hasher is not None and base64.b64encode(hasher.digest()).decode() != declared:
                raise S3Error(
                    "BadDigest", f"The {algorithm.upper()} you specified did not match the calculated checksum."
                )
        self.digests.checksums = dict(self._checksums)


def _decode_b64(value: str, name: str, *, md5: bool = False) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw or (md5 and len(raw) != 16):
        if md5:
            raise S3Error("InvalidDigest")
        raise S3Error("InvalidRequest", f"Value for {name} header is invalid.")
    return raw
