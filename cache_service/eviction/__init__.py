"""Eviction policies: which page goes when a tier is full. Separate from where the bytes live."""

from collections.abc import Callable

from cache_service.eviction.base import EvictionPolicy, K
from cache_service.eviction.lru import LruPolicy
from cache_service.eviction.s3fifo import S3FifoPolicy

__all__ = ["EvictionPolicy", "K", "LruPolicy", "S3FifoPolicy", "make_policy"]


def make_policy(name: str, capacity: int) -> EvictionPolicy[K]:
    """A new, empty policy by its configuration name (``lru`` or ``s3fifo``) for a tier of ``capacity`` bytes.

    The key type comes from the caller's annotation (``policy: EvictionPolicy[PageKey] = make_policy(...)``).

    Raises ``ValueError`` for an unknown name.
    """
    policies: dict[str, Callable[[int], EvictionPolicy[K]]] = {"lru": LruPolicy, "s3fifo": S3FifoPolicy}
    if name not in policies:
        raise ValueError(f"unknown eviction policy {name!r}; expected one of {sorted(policies)}")
    return policies[name](capacity)
