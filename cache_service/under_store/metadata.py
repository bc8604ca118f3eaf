"""An object's HTTP metadata as S3 keeps it: the content headers it stores and its ``x-amz-meta-*`` pairs.

Values are kept exactly as S3 sends them back (``Expires`` unparsed, non-ASCII user metadata RFC 2047-encoded),
so the cache answers with the same header values S3 itself would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

USER_PREFIX = "x-amz-meta-"
# The content headers S3 stores with an object and returns on HEAD and GET, in the case S3 writes them.
CONTENT_HEADERS = (
    "Content-Type",
    "Cache-Control",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Expires",
)


@dataclass(frozen=True)
class ObjectMetadata:
    """Content headers (``(name, value)`` with names as in ``CONTENT_HEADERS``) and user metadata (lower-case
    names without ``x-amz-meta-``), each in a fixed order so that equal metadata compares equal."""

    content: tuple[tuple[str, str], ...] = ()
    user: tuple[tuple[str, str], ...] = ()

    @classmethod
    def build(cls, content: Mapping[str, str], user: Iterable[tuple[str, str]]) -> ObjectMetadata:
        """From content headers (any case) and user pairs."""
        lower = {k.lower(): v for k, v in content.items()}
        ordered = tuple((name, lower[name.lower()]) for name in CONTENT_HEADERS if name.lower() in lower)
        return cls(ordered, tuple(sorted((k.lower(), v) for k, v in user)))

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> ObjectMetadata:
        """From the headers of S3's HEAD or GET answer (names in any case)."""
        content = {k: v for k, v in headers.items() if k.lower() in _CONTENT_LOWER}
        user = [(k.lower()[len(USER_PREFIX) :], v) for k, v in headers.items() if k.lower().startswith(USER_PREFIX)]
        return cls.build(content, user)

    def get(self, name: str) -> str | None:
        """The content header ``name`` (any case), or None."""
        return next((v for k, v in self.content if k.lower() == name.lower()), None)

    def headers(self) -> dict[str, str]:
        """Every header to send for this metadata: content headers, then ``x-amz-meta-*``."""
        out = dict(self.content)
        out.update({USER_PREFIX + k: v for k, v in self.user})
        return out


_CONTENT_LOWER = frozenset(name.lower() for name in CONTENT_HEADERS)
