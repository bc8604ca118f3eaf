"""The S3 REST API: the same buckets and keys as the under store, reads served from the cache's page store."""

from cache_service.api.s3.app import build_s3_app, start_s3_api

__all__ = ["build_s3_app", "start_s3_api"]
