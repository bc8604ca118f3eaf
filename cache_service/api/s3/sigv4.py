"""AWS Signature Version 4 for the S3 API: the canonical request, signing keys and signatures, and the signing of
what the cache forwards to the under store.

Signing and verifying (``verifier``) share this one canonicalisation, written from AWS's specification and checked
against its published examples.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

from multidict import CIMultiDict, MultiMapping

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_MODES = frozenset({STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER})
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW_SECONDS = 15 * 60
MAX_PRESIGNED_SECONDS = 7 * 24 * 3600
PRESIGN_PARAMS = frozenset(
    {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
    }
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Credentials:
    """An access key and its secret (and the session token of temporary credentials)."""

    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


# --- canonical form ----------------------------------------------------------------------------------------


def uri_encode(text: str, *, keep_slash: bool = False) -> str:
    """AWS's URI encoding: every byte but ``A-Za-z0-9-._~`` (and ``/`` if ``keep_slash``) as ``%XX``."""
    return quote(text.encode("utf-8", "surrogateescape"), safe="/~" if keep_slash else "~")


def canonical_uri(raw_path: str) -> str:
    """The canonical URI of a path as sent: decoded, then encoded AWS's way. S3 never normalises ``.``/``..``."""
    # Bytes that are not UTF-8 reach us as surrogates (aiohttp decodes with surrogateescape): back to those bytes.
    return quote(unquote_to_bytes(raw_path.encode("utf-8", "surrogateescape")), safe="/~") or "/"


def canonical_query(pairs: Sequence[tuple[str, str]], *, exclude: frozenset[str] = frozenset()) -> str:
    """Decoded query pairs encoded and sorted by name, then value; names in ``exclude`` left out."""
    encoded = sorted((uri_encode(name), uri_encode(value)) for name, value in pairs if name not in exclude)
    return "&".join(f"{name}={value}" for name, value in encoded)


def canonical_headers(headers: MultiMapping[str], signed: Sequence[str]) -> str:
    """``name:value`` lines of the ``signed`` headers; repeated headers joined by commas, runs of spaces squeezed."""
    lines = []
    for name in signed:
        values = headers.getall(name, [])
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}\n")
    return "".join(lines)


def canonical_request(
    method: str, uri: str, query: str, headers: MultiMapping[str], signed: Sequence[str], payload_hash: str
) -> str:
    """The canonical request whose SHA-256 is signed."""
    return "\n".join(
        [method, uri, query, canonical_headers(headers, signed), ";".join(signed), payload_hash],
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    """The string that the signing key signs."""
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@lru_cache(maxsize=64)
def signing_key(secret_key: str, date: str, region: str) -> bytes:
    """The day's key for ``region``: derived by four HMACs, so worth remembering."""
    key = _hmac(f"AWS4{secret_key}".encode(), date)
    for part in (region, SERVICE, TERMINATOR):
        key = _hmac(key, part)
    return key


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def sign(key: bytes, text: str) -> str:
    """The hex signature of ``text``."""
    return hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time equality of two strings, whatever bytes a client put in them."""
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def amz_date(seconds: float) -> str:
    """``seconds`` since the epoch as an ``X-Amz-Date`` value."""
    return time.strftime(_AMZ_DATE, time.gmtime(seconds))


@lru_cache(maxsize=256)
def parse_amz_date(text: str) -> float | None:
    """Seconds since the epoch of an ``X-Amz-Date`` value; None if it is not one (memoised: ``strptime`` is a tenth
    of a warm read's time, and every request of a second carries the same date)."""
    try:
        return float(calendar.timegm(time.strptime(text, _AMZ_DATE)))
    except ValueError:
        return None


# --- signing (requests the cache forwards to the under store) ----------------------------------------------


def sign_headers(
    *,
    method: str,
    raw_path: str,
    query: Sequence[tuple[str, str]],
    headers: dict[str, str],
    payload_hash: str,
    credentials: Credentials,
    region: str,
    now: float,
) -> None:
    """Add ``x-amz-date``, ``x-amz-content-sha256`` and ``Authorization`` to ``headers`` (lower-case names).

    ``headers`` must hold ``host``; it and every ``x-amz-*``, ``content-md5`` and ``content-type`` header are signed.
    """
    date = amz_date(now)
    headers["x-amz-date"] = date
    headers["x-amz-content-sha256"] = payload_hash
    if credentials.session_token:
        headers["x-amz-security-token"] = credentials.session_token
    signed = sorted(
        name for name in headers if name in ("host", "content-md5", "content-type") or name.startswith("x-amz-")
    )
    view = CIMultiDict(headers)
    scope = f"{date[:8]}/{region}/{SERVICE}/{TERMINATOR}"
    canonical = canonical_request(method, canonical_uri(raw_path), canonical_query(query), view, signed, payload_hash)
    signature = sign(signing_key(credentials.secret_key, date[:8], region), string_to_sign(date, scope, canonical))
    headers["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={';'.join(signed)}, "
        f"Signature={signature}"
    )


def is_sha256_hex(text: str) -> bool:
    """True for a payload hash that is a SHA-256 hex digest (rather than one of the named payload modes)."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower())
