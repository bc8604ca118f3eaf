"""The under store: the durable object store (S3) behind the cache."""

from cache_service.under_store.base import Listing, ObjectStatus, UnderStore

__all__ = ["Listing", "ObjectStatus", "UnderStore"]
