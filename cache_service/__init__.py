"""Lakecache cache service: WebHDFS and S3 in front of S3, with a page store in memory and on disk."""
