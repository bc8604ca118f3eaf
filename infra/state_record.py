"""What a detached service leaves in its state directory: one JSON record, readable by its owner only.

``python -m infra.stack up`` and ``python -m infra.airflow up`` start processes that outlive them; the record is how
``status`` and ``down`` find them again. It holds secrets (an admin token, a password), hence the file mode.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Self


@dataclass(frozen=True)
class StateRecord:
    """A frozen dataclass kept as ``<state_dir>/<FILE>``; subclasses name the file."""

    FILE: ClassVar[str]

    def write(self, state_dir: Path) -> None:
        """Write this record to ``state_dir``, readable by the owner only."""
        path = state_dir / self.FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, state_dir: Path) -> Self | None:
        """The record in ``state_dir``, or None if nothing was started there."""
        path = state_dir / cls.FILE
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))

    @classmethod
    def remove(cls, state_dir: Path) -> None:
        """Forget the record (its processes are stopped)."""
        (state_dir / cls.FILE).unlink(missing_ok=True)
