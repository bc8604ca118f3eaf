"""A worker's stable identity: generated once and kept in its disk tier, so that a restart or a new address does not
move the blocks it owns (the ring hashes ids, not addresses)."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

_ID = re.compile(r"^w-[0-9a-f]{12}$")
_FILE = "worker_id"


class IdentityError(ValueError):
    """The disk tier holds something that is not a worker id."""


def is_worker_id(text: str) -> bool:
    """True if ``text`` has the form of a worker id (``w-`` and 12 hex digits)."""
    return bool(_ID.match(text))


def worker_id(state_dir: Path) -> str:
    """This worker's id, read from ``state_dir``, or made and written there the first time.

    Raises ``IdentityError`` if the file holds something that is not an id (a disk tier copied by hand, a bad edit): a
    worker must not silently take a new identity and leave its cached data to another's blocks.
    """
    path = state_dir / _FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        state_dir.mkdir(parents=True, exist_ok=True)
        made = f"w-{secrets.token_hex(6)}"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(made + "\n")
        tmp.replace(path)
        return made
    if not is_worker_id(text):
        raise IdentityError(f"{path} holds {text[:40]!r}, not a worker id (w- and 12 hex digits); fix or remove it")
    return text
