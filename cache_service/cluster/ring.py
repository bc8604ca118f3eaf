"""Which worker owns a block: rendezvous (highest random weight) hashing over the active workers.

Every worker scores every block with a hash of (worker id, block), and the block goes to the highest score; the
workers in falling order of score are its owner and successors. A worker that joins takes from each other worker the
blocks it now outscores (1/N of all, the least any scheme can move); a worker that leaves gives its blocks to their
second choices, spread evenly over the rest. Scores come from xxHash (XXH3, 64 bits) over the ids and the block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import xxhash


@dataclass(frozen=True)
class BlockId:
    """Block ``index`` (of the cluster's block size) of one S3 object version's bytes."""

    bucket: str
    key: str
    index: int

    def seed(self) -> bytes:
        """The bytes every worker hashes with its id to score this block."""
        return f"{self.bucket}\0{self.key}\0{self.index}".encode()


@dataclass(frozen=True)
class Ring:
    """The ownership of blocks among ``workers`` (ids); the same ids give the same owners on every worker."""

    workers: tuple[str, ...]
    _seeds: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.workers)) != len(self.workers):
            raise ValueError(f"a worker is named twice in {list(self.workers)}")
        ordered = tuple(sorted(self.workers))
        object.__setattr__(self, "workers", ordered)
        object.__setattr__(self, "_seeds", tuple(xxhash.xxh3_64_intdigest(w.encode()) for w in ordered))

    @classmethod
    def of(cls, workers: Iterable[str]) -> Ring:
        """The ring over ``workers``."""
        return cls(tuple(workers))

    def __len__(self) -> int:
        return len(self.workers)

    def owners(self, block: BlockId, most: int | None = None) -> list[str]:
        """The workers for ``block`` in order: its owner first, then the successors that take it over (all of them,
        or the first ``most``). Empty for an empty ring."""
        seed = block.seed()
        scored = sorted(
            ((xxhash.xxh3_64_intdigest(seed, seed=s), w) for s, w in zip(self._seeds, self.workers, strict=True)),
            reverse=True,
        )
        return [w for _, w in scored[:most]]

    def owner(self, block: BlockId) -> str | None:
        """The worker that owns ``block``; None for an empty ring."""
        seed = block.seed()
        best: tuple[int, str] | None = None
        for s, w in zip(self._seeds, self.workers, strict=True):
            score = (xxhash.xxh3_64_intdigest(seed, seed=s), w)
            if best is None or score > best:
                best = score
        return None if best is None else best[1]


def block_loads(ring: Ring, blocks: Sequence[BlockId]) -> dict[str, int]:
    """How many of ``blocks`` each worker of ``ring`` owns (every worker listed, with 0 if it owns none)."""
    loads = dict.fromkeys(ring.workers, 0)
    for block in blocks:
        owner = ring.owner(block)
        if owner is not None:
            loads[owner] += 1
    return loads


def moved_fraction(before: Ring, after: Ring, blocks: Sequence[BlockId]) -> float:
    """The fraction of ``blocks`` whose owner differs between the two rings."""
    if not blocks:
        return 0.0
    return sum(before.owner(b) != after.owner(b) for b in blocks) / len(blocks)
