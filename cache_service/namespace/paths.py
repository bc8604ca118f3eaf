"""Cache paths: parsing request paths safely and normalising them.

A cache path is absolute, uses ``/`` separators, has no empty, ``.`` or ``..`` components, and no NUL or control
characters. Anything else is refused rather than resolved, so no request can escape its mount.
"""

from __future__ import annotations

from urllib.parse import unquote

MAX_PATH_BYTES = 4096
MAX_COMPONENT_BYTES = 1024


def _check_component(part: str, original: str) -> None:
    if part in (".", ".."):
        raise ValueError(f"Invalid path name {original!r}: '.' and '..' components are not allowed")
    if "/" in part:
        raise ValueError(f"Invalid path name {original!r}: encoded '/' inside a path component")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in part):
        raise ValueError(f"Invalid path name {original!r}: NUL or control character in path")
    if len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
        raise ValueError(f"Invalid path name: a component is longer than {MAX_COMPONENT_BYTES} bytes")


def normalize(path: str) -> str:
    """Return the canonical form of the decoded absolute ``path`` ("/a//b/" -> "/a/b").

    Raises ``ValueError`` for relative paths, ``.``/``..`` components, NUL or control characters, or oversize paths.
    """
    if not path.startswith("/"):
        raise ValueError(f"Invalid path name {path!r}: the path must be absolute")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise ValueError(f"Invalid path name: longer than {MAX_PATH_BYTES} bytes")
    parts = [p for p in path.split("/") if p]
    for part in parts:
        _check_component(part, path)
    return "/" + "/".join(parts)


def parse_raw_path(raw: str) -> str:
    """Decode a still percent-encoded URL path (``/a/b%20c``) into a normalised cache path.

    Each component is decoded on its own, so ``%2F`` can never introduce a separator and ``%2e%2e`` is seen as
    ``..``. Raises ``ValueError`` as ``normalize`` does, and for bytes that are not UTF-8.
    """
    if "\x00" in raw:
        raise ValueError("Invalid path name: NUL character in path")
    if not raw.startswith("/"):
        raise ValueError(f"Invalid path name {raw!r}: the path must be absolute")
    decoded = []
    for part in raw.split("/"):
        if not part:
            continue
        try:
            value = unquote(part, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise ValueError(f"Invalid path name {raw!r}: not valid UTF-8 after percent-decoding") from None
        _check_component(value, raw)
        decoded.append(value)
    return normalize("/" + "/".join(decoded))


def parent(path: str) -> str:
    """The parent of normalised ``path`` ("/" for top-level entries and for "/")."""
    head = path.rsplit("/", 1)[0]
    return head or "/"


def basename(path: str) -> str:
    """The last component of normalised ``path`` ("" for "/")."""
    return path.rsplit("/", 1)[1]


def join(base: str, name: str) -> str:
    """``base`` + ``/`` + ``name`` for normalised ``base``."""
    return f"{base.rstrip('/')}/{name}"


def is_within(path: str, ancestor: str) -> bool:
    """True when ``path`` is ``ancestor`` or lies below it."""
    return ancestor == "/" or path == ancestor or path.startswith(ancestor.rstrip("/") + "/")
