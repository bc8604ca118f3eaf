"""A change made through one worker that every other must see at once."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Invalidation:
    """A change made through one worker that every other must see at once: the statuses under ``prefix`` of
    ``bucket`` (one key when ``exact``) are out of date."""

    bucket: str
    prefix: str
    exact: bool
    origin: str

    def fields(self) -> dict[str, Any]:
        """The change as a JSON object."""
        return asdict(self)

    def encode(self) -> str:
        """The announcement on Redis as JSON."""
        return json.dumps({"kind": "invalidate", **self.fields()}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: Any) -> Invalidation:
        """A change from its JSON object. Raises ``ValueError`` naming what is missing or wrong."""
        if not isinstance(raw, dict):
            raise ValueError("an invalidation is a JSON object")
        try:
            bucket, prefix, exact, origin = raw["bucket"], raw["prefix"], raw["exact"], raw["origin"]
        except KeyError as exc:
            raise ValueError(f"an invalidation needs {exc.args[0]!r}") from None
        if not (isinstance(bucket, str) and bucket and isinstance(prefix, str) and isinstance(origin, str)):
            raise ValueError("an invalidation's bucket, prefix and origin are strings (bucket not empty)")
        if not isinstance(exact, bool):
            raise ValueError("an invalidation's exact is true or false")
        return cls(bucket, prefix, exact, origin)
