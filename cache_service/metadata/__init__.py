"""Metadata: file status and listings from S3, cached for the sync interval."""

from cache_service.metadata.status_cache import StatusCache

__all__ = ["StatusCache"]
