"""The WebHDFS REST API on ``webhdfs_port``: enough of HDFS for Hadoop's ``WebHdfsFileSystem``, with no extra jar.

``api`` routes and answers requests, ``request`` parses them, ``file_status`` and ``errors`` render the JSON Hadoop
expects, ``connection`` answers what aiohttp cannot route, and ``warm_reads`` answers warm reads as they arrive.
"""

from cache_service.api.webhdfs.api import WebHdfsApi
from cache_service.api.webhdfs.connection import WebHdfsConnection
from cache_service.api.webhdfs.errors import remote_exception
from cache_service.api.webhdfs.warm_reads import WarmReads

__all__ = ["WarmReads", "WebHdfsApi", "WebHdfsConnection", "remote_exception"]
