"""The rules a whole configuration must follow, beyond each key's type: one line per broken rule."""

from __future__ import annotations

from urllib.parse import urlsplit

from cache_service.access import LEVELS
from cache_service.config.model import CacheConfig, S3ApiConfig
from cache_service.logs import redacted_url
from cache_service.namespace.mounts import MountTable, is_bucket_name

EVICTION_POLICIES = ("lru", "s3fifo")
MEDIA = ("memory", "disk")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def validate(config: CacheConfig, problems: list[str]) -> None:
    """Append to ``problems`` one line for each rule ``config`` breaks (its fields are typed already)."""
    store = config.store
    if not 0 < store.low_watermark < store.high_watermark <= 1:
        problems.append(
            "store: watermarks out of order: need 0 < low_watermark < high_watermark <= 1, "
            f"got low={store.low_watermark} high={store.high_watermark}"
        )
    if store.page_size < 4096 or store.page_size > 64 * 1024**2:
        problems.append(f"store.page_size: must be between 4KiB and 64MiB, got {store.page_size} bytes")
    if store.eviction not in EVICTION_POLICIES:
        problems.append(f"store.eviction: expected one of {list(EVICTION_POLICIES)}, got {store.eviction!r}")
    media = [t.medium for t in store.tiers]
    if len(set(media)) != len(media):
        problems.append(f"store.tiers: at most one tier per medium, got {media}")
    if "disk" not in media:
        problems.append("store.tiers: a disk tier is required (staged writes and uploads are held there)")
    if media and media != sorted(media, key=MEDIA.index):
        problems.append("store.tiers: list the memory tier before the disk tier (fastest first)")
    for port_name in ("webhdfs_port", "s3_port"):
        port = getattr(config.server, port_name)
        if not 0 <= port <= 65535:
            problems.append(f"server.{port_name}: not a port number: {port}")
    if config.server.webhdfs_port == config.server.s3_port and config.server.s3_port != 0:
        problems.append("server: webhdfs_port and s3_port must differ")
    if config.under_store.max_attempts < 1:
        problems.append("under_store.max_attempts: must be at least 1")
    if config.under_store.multipart_chunksize < 5 * 1024**2:
        problems.append("under_store.multipart_chunksize: S3 needs at least 5MiB")
    if not config.mounts:
        problems.append("mounts: at least one [[mounts]] entry is needed")
    if not config.write.staging_patterns:
        problems.append("write.staging_patterns: must not be empty")
    # Mount paths and URIs are checked by the mount table itself: one source of truth.
    try:
        MountTable(config.mounts)
    except ValueError as exc:
        problems.extend(str(exc).splitlines())
    _validate_cluster(config, problems)
    _validate_s3_users(config.s3_api, problems)


def _validate_cluster(config: CacheConfig, problems: list[str]) -> None:
    cluster = config.cluster
    if cluster.redis_url and _scheme(cluster.redis_url) not in _REDIS_SCHEMES:
        problems.append(
            "cluster.redis_url: expected redis://host:port/db (or rediss://, unix://), "
            f"got {redacted_url(cluster.redis_url)!r}"
        )
    if cluster.heartbeat_interval <= 0 or cluster.member_timeout < 2 * cluster.heartbeat_interval:
        problems.append(
            "cluster: member_timeout must be at least twice heartbeat_interval (one lost heartbeat is not a death), "
            f"got heartbeat_interval={cluster.heartbeat_interval}s member_timeout={cluster.member_timeout}s"
        )
    if cluster.peer_timeout <= 0:
        problems.append(f"cluster.peer_timeout: must be positive, got {cluster.peer_timeout}s")
    page = config.store.page_size
    if page > 0 and (cluster.block_size < page or cluster.block_size % page):  # a page size of 0 is reported above
        problems.append(
            f"cluster.block_size: must be a multiple of store.page_size ({page} bytes), got {cluster.block_size}"
        )
    if config.write.staging_replicas < 1:
        problems.append(f"write.staging_replicas: must be at least 1, got {config.write.staging_replicas}")
    if cluster.handoff_budget < 0:
        problems.append(f"cluster.handoff_budget: must be 0 (all) or a positive size, got {cluster.handoff_budget}")
    if cluster.enabled and not config.admin.token:
        problems.append(
            "cluster: a cluster needs [admin] token (CACHE_ADMIN_TOKEN): workers sign their requests to each other"
        )


def _validate_s3_users(api: S3ApiConfig, problems: list[str]) -> None:
    """One line per broken rule of ``[[s3_api.users]]``; no line ever quotes a secret."""
    seen = {api.access_key} if api.access_key else set()
    for i, user in enumerate(api.users):
        where = f"s3_api.users[{i}] ({user.access_key})"
        if not user.access_key:
            problems.append(f"s3_api.users[{i}]: access_key is missing or empty")
        elif user.access_key in seen:
            problems.append(f"{where}: access key {user.access_key!r} is listed twice (or is [s3_api] access_key)")
        seen.add(user.access_key)
        if not user.secret_key and not user.secret_key_env:
            problems.append(f"{where}: needs a secret: secret_key, or secret_key_env naming the variable holding it")
        for j, grant in enumerate(user.grants):
            if grant.bucket != "*" and not is_bucket_name(grant.bucket):
                problems.append(f'{where}.grants[{j}]: bucket {grant.bucket!r} is not a bucket name nor "*"')
            if grant.access not in LEVELS:
                problems.append(f'{where}.grants[{j}]: access must be "read" or "write", got {grant.access!r}')
        for j, a in enumerate(user.grants):
            for k, b in enumerate(user.grants[j + 1 :], start=j + 1):
                if a.bucket == b.bucket and (a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)):
                    problems.append(
                        f"{where}.grants: grants[{j}] ({a.bucket}/{a.prefix}) and grants[{k}] ({b.bucket}/{b.prefix}) "
                        "overlap: give each key one grant (write implies read)"
                    )


def _scheme(url: str) -> str | None:
    try:
        return urlsplit(url).scheme
    except ValueError:  # "redis://[": an IPv6 host left open
        return None
