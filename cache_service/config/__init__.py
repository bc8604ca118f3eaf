"""Typed configuration of the cache service: a TOML file plus ``CACHE_<SECTION>_<KEY>`` environment overrides.

Everything is validated once, here, at the edge. Every mistake found becomes one line of ``ConfigError``, so an
operator fixes a broken file in one pass. No other module reads the environment.
"""

from cache_service.config.loading import load_config
from cache_service.config.model import (
    AdminConfig,
    CacheConfig,
    ClusterConfig,
    ConfigError,
    GrantConfig,
    MetadataConfig,
    S3ApiConfig,
    S3UserConfig,
    ServerConfig,
    StoreConfig,
    TierConfig,
    UnderStoreConfig,
    WriteConfig,
)

# MountConfig, a [[mounts]] entry, belongs to the mount table; importing it from here keeps working.
from cache_service.namespace.mounts import MountConfig

__all__ = [
    "AdminConfig",
    "CacheConfig",
    "ClusterConfig",
    "ConfigError",
    "GrantConfig",
    "MetadataConfig",
    "MountConfig",
    "S3ApiConfig",
    "S3UserConfig",
    "ServerConfig",
    "StoreConfig",
    "TierConfig",
    "UnderStoreConfig",
    "WriteConfig",
    "load_config",
]
