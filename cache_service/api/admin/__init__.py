"""The admin API (``/admin/v1/...``) on the WebHDFS port: cache management as JSON, for ``cachectl``, Airflow and
runbooks.

``api`` routes, authorises and answers requests; ``fields`` reads and checks their input; ``errors`` renders every
failure as ``{"error": {"code": ..., "message": ..., "field": ...}}``.
"""

from cache_service.api.admin.api import AdminApi

__all__ = ["AdminApi"]
