"""The under store: the durable object store (S3) behind the cache."""

from cache_service.under_store.base import Listing, ObjectStatus, UnderStore
from cache_service.under_store.metadata import ObjectMetadata

__all__ = ["Listing", "ObjectMetadata", "ObjectStatus", "UnderStore"]
