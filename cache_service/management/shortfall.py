"""Why a purge stopped above its target, said in one sentence that on-call can act on.

A purge evicts in policy order until the tier is at its target or nothing more may go. What may not go is always one
of a few things: pinned pages, staged data not yet in S3, pages being read, room promised to writes under way, or,
for a purge limited to some paths, the simple fact that those paths do not hold enough. The sentence names the
ones that apply, with their bytes, and what lets each go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cache_service.units import format_size


@dataclass(frozen=True)
class Held:
    """Bytes a purge had to leave in the last tier, by why (within the purge's paths, when it had some)."""

    pinned: int = 0
    pins: tuple[str, ...] = ()  # the pinned paths that held ``pinned``
    staged: int = 0
    reading: int = 0
    writing: int = 0  # room promised to writes under way: pages being stored, S3 uploads in progress


def percent(fraction: float) -> str:
    """``0.1`` as ``10%``, ``0.125`` as ``12.5%``."""
    return f"{fraction * 100:.4g}%"


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _reasons(held: Held) -> list[str]:
    reasons = []
    if held.pinned:
        where = f" under {_listed(held.pins)}" if held.pins else ""
        reasons.append(f"{format_size(held.pinned)} is pinned{where} (unpin to let it go)")
    if held.staged:
        reasons.append(
            f"{format_size(held.staged)} is staged and not yet in S3 (it goes once its job publishes or deletes it)"
        )
    if held.reading:
        reasons.append(f"{format_size(held.reading)} is in pages being read (purge again once the reads end)")
    if held.writing:
        reasons.append(f"{format_size(held.writing)} is held for writes under way")
    return reasons


def explain(
    *,
    target: float,
    capacity: int,
    used_before: int,
    freed: int,
    held: Held,
    paths: Sequence[str] | None = None,
    paths_bytes: int = 0,
) -> str:
    """The sentence for a purge of the last tier (``capacity`` bytes) that ended above ``target``.

    ``paths`` are the purge's paths (None for the whole cache) and ``paths_bytes`` the cached pages they held before.
    """
    needed = format_size(max(0, used_before - int(target * capacity)))
    reasons = _reasons(held)
    if paths is not None and paths_bytes < used_before - int(target * capacity):
        one = len(paths) == 1
        subject = f"The path {paths[0]} holds" if one else f"The paths {_listed(paths)} hold"
        of_those = f", and of what {'it holds' if one else 'they hold'} {_listed(reasons)}" if reasons else ""
        return (
            f"{subject} only {format_size(paths_bytes)} of cached pages; "
            f"reaching {percent(target)} needed {needed} freed{of_those}."
        )
    within = f" from {_listed(paths)}" if paths is not None else ""
    if not reasons:
        return f"Reaching {percent(target)} needed {needed} freed{within}, but only {format_size(freed)} could go."
    return f"Reaching {percent(target)} needed {needed} freed{within}, but {_listed(reasons)}."


def explain_upper_tier(*, medium: str, target: float, capacity: int, used: int) -> str:
    """The sentence for a faster tier (memory) left above ``target`` while the last tier reached it."""
    return (
        f"The {medium} tier still holds {format_size(used)}, above {percent(target)} of its {format_size(capacity)}: "
        "the pages left there are pinned or being read."
    )
