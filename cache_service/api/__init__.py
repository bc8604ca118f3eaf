"""The HTTP faces of the cache: WebHDFS, the S3 API, the admin API, health and metrics."""
