"""What one benchmark returns: its figures, the targets it checks, and the Markdown that presents them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Section:
    """One benchmark's results. ``targets`` maps a target name to its measured value, for ``latest.json``."""

    name: str
    title: str
    command: str
    markdown: str
    results: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)
