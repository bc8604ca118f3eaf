"""Where page bytes live. A tier stores and returns bytes; it does not decide what to evict."""

from cache_service.page_store.tiers.base import RecoveredPage, Tier
from cache_service.page_store.tiers.disk import DiskTier
from cache_service.page_store.tiers.memory import MemoryTier

__all__ = ["DiskTier", "MemoryTier", "RecoveredPage", "Tier"]
