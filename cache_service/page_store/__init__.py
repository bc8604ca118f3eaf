"""The page store: fixed-size pages of S3 objects in a memory tier and a disk tier."""

from cache_service.page_store.identity import ObjectIdentity, PageKey
from cache_service.page_store.store import PageStore

__all__ = ["ObjectIdentity", "PageKey", "PageStore"]
