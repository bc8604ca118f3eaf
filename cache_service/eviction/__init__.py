"""Eviction policies: which page goes when a tier is full. Separate from where the bytes live."""

from cache_service.eviction.base import EvictionPolicy, make_policy

__all__ = ["EvictionPolicy", "make_policy"]
