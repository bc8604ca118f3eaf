"""Pins and TTLs by path, kept on the disk tier so they survive restarts.

Both apply to everything at or below a path. A pinned object's pages are never evicted or purged; a TTL frees an
object's cached pages once they are older than it (the data in S3 is never touched).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cache_service.namespace.paths import is_within


class PathRules:
    """Pinned paths and per-path TTLs, persisted as JSON in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self._file = state_dir / "rules.json"
        state_dir.mkdir(parents=True, exist_ok=True)
        self._pins: set[str] = set()
        self._ttls: dict[str, float] = {}
        if self._file.exists():
            saved = json.loads(self._file.read_text())
            self._pins = set(saved.get("pins", []))
            self._ttls = {p: float(t) for p, t in saved.get("ttls", {}).items()}

    def _save(self) -> None:
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot(), indent=1))
        os.replace(tmp, self._file)

    def snapshot(self) -> dict[str, Any]:
        """Every pin and TTL as JSON-ready data (what ``replace`` takes)."""
        return {"pins": sorted(self._pins), "ttls": dict(sorted(self._ttls.items()))}

    def replace(self, snapshot: dict[str, Any]) -> None:
        """Take the pins and TTLs of ``snapshot`` (a cluster's, shared by every worker) instead of these.

        Raises ``ValueError`` for a snapshot that is not one.
        """
        try:
            pins = {str(p) for p in snapshot.get("pins", [])}
            ttls = {str(p): float(t) for p, t in dict(snapshot.get("ttls", {})).items()}
        except (AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"not a snapshot of pins and TTLs: {exc}") from None
        self._pins, self._ttls = pins, ttls
        self._save()

    def pin(self, path: str) -> None:
        """Protect everything at or below ``path`` from eviction."""
        self._pins.add(path)
        self._save()

    def unpin(self, path: str) -> bool:
        """Remove the pin set on exactly ``path``; False if there was none."""
        if path not in self._pins:
            return False
        self._pins.discard(path)
        self._save()
        return True

    def pins(self) -> list[str]:
        """Pinned paths, sorted."""
        return sorted(self._pins)

    def is_pinned(self, path: str) -> bool:
        """True when ``path`` is at or below a pinned path."""
        return any(is_within(path, pinned) for pinned in self._pins)

    def set_ttl(self, path: str, seconds: float | None) -> None:
        """Give everything at or below ``path`` a TTL (None removes the TTL set on exactly ``path``)."""
        if seconds is None:
            self._ttls.pop(path, None)
        else:
            self._ttls[path] = seconds
        self._save()

    def ttls(self) -> dict[str, float]:
        """TTLs by path."""
        return dict(sorted(self._ttls.items()))

    def ttl_for(self, path: str) -> float | None:
        """The TTL that applies to ``path``: the one set on its closest ancestor (or itself), if any."""
        best: tuple[int, float] | None = None
        for rule_path, seconds in self._ttls.items():
            if is_within(path, rule_path) and (best is None or len(rule_path) > best[0]):
                best = (len(rule_path), seconds)
        return None if best is None else best[1]
