"""Which scaler a configuration names, and where its demand comes from: shared by ``clusterctl`` and the operator.

The ``[backend]`` and ``[demand]`` tables of a policy file (the policy itself ignores them)::

    [backend]
    kind = "spark"                       # spark | asg | emr
    retry = { attempts = 5, base = 0.5, cap = 20 }

    [backend.spark]
    state_dir = "/var/lib/lakecache/spark"   # a cluster started with SparkStandaloneCluster (or `... up`)
    decommission_timeout = "5m"

    [backend.asg]
    group = "etl-workers"
    region = "eu-west-1"
    # endpoint_url = "http://127.0.0.1:5000"   # an emulator

    [backend.emr]
    cluster_id = "j-2AXXXXXXGAPLF"
    group_type = "TASK"                  # or CORE, or instance_group_id = "ig-..."
    decommission_timeout = "1h"

    [backend.cache]                      # the cache cluster runs on the nodes: drain before removing, wait on join
    conn_id = "lakecache_default"        # the Airflow connection to any of its workers
    drain_timeout = "30m"                # per worker; a slower drain is cancelled and the scale-in stopped
    join_timeout = "10m"                 # a new node's cache worker must be active by then
    # budget = 1073741824                # bytes of pages each drained worker hands over (default: its own)

    [demand]
    spark_master_ui = "http://spark-master:8080"   # default for the spark backend: its own master
    cache_url = "http://cache:9870"                 # the cache's admin API (WebHDFS port)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lakecache_airflow.scaling.aws_asg import AutoScalingGroupScaler
from lakecache_airflow.scaling.aws_emr import EmrInstanceGroupScaler
from lakecache_airflow.scaling.base import BackendUnavailableError, Scaler, ScalingError
from lakecache_airflow.scaling.cache_nodes import NodeCaches
from lakecache_airflow.scaling.demand import Demand, from_cache_status, read_cache, read_spark_master
from lakecache_airflow.scaling.policy import PolicyConfigError, parse_duration
from lakecache_airflow.scaling.retry import Backoff
from lakecache_airflow.scaling.spark_standalone import SparkStandaloneCluster, SparkStandaloneScaler

KINDS = ("spark", "asg", "emr")
_KIND_KEYS: Mapping[str, frozenset[str]] = {
    "spark": frozenset({"state_dir", "decommission_timeout"}),
    "asg": frozenset({"group", "region", "endpoint_url", "honor_cooldown"}),
    "emr": frozenset(
        {"cluster_id", "group_type", "instance_group_id", "decommission_timeout", "region", "endpoint_url"}
    ),
}
_REQUIRED: Mapping[str, str] = {"spark": "state_dir", "asg": "group", "emr": "cluster_id"}
_CACHE_KEYS = frozenset({"conn_id", "drain_timeout", "join_timeout", "budget", "poll_interval"})


@dataclass(frozen=True)
class CacheFollowing:
    """A validated ``[backend.cache]``: the cache cluster whose workers run on the nodes, and its timeouts."""

    conn_id: str = "lakecache_default"
    drain_timeout: float = 1800.0
    join_timeout: float = 600.0
    budget: int | None = None
    poll_interval: float = 2.0

    @classmethod
    def from_dict(cls, data: Any, kind: str) -> CacheFollowing:
        """Raises ``PolicyConfigError`` (one line) for an unknown or bad setting, or a backend that cannot drain."""
        if not isinstance(data, Mapping):
            raise PolicyConfigError("backend.cache must be a table")
        if kind == "emr":
            raise PolicyConfigError(
                "backend.cache: the emr backend cannot drain cache workers yet (EMR picks the nodes it shrinks); "
                "see docs/autoscaling.md"
            )
        unknown = sorted(set(data) - _CACHE_KEYS)
        if unknown:
            raise PolicyConfigError(
                f"backend.cache: unknown option {unknown[0]!r} (known: {', '.join(sorted(_CACHE_KEYS))})"
            )
        budget = data.get("budget")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0):
            raise PolicyConfigError(f"backend.cache.budget: a positive number of bytes, not {budget!r}")
        seconds = {
            key: parse_duration(data[key], f"backend.cache.{key}").total_seconds()
            for key in ("drain_timeout", "join_timeout", "poll_interval")
            if key in data
        }
        return cls(conn_id=str(data.get("conn_id") or cls.conn_id), budget=budget, **seconds)

    def node_caches(self) -> NodeCaches:
        """The cache cluster behind the Airflow connection ``conn_id``."""
        from lakecache_airflow.hooks.cache import CacheHook  # Airflow loads slowly: only when a cache is followed

        return NodeCaches(
            CacheHook(self.conn_id),
            drain_timeout=self.drain_timeout,
            join_timeout=self.join_timeout,
            budget=self.budget,
            poll_interval=self.poll_interval,
        )


@dataclass(frozen=True)
class BackendConfig:
    """A validated ``[backend]`` + ``[demand]``: the kind, its options, retries, and the demand sources."""

    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)
    backoff: Backoff = field(default_factory=Backoff)
    spark_master_ui: str | None = None
    cache_url: str | None = None
    cache: CacheFollowing | None = None

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, kind: str | None = None, overrides: Mapping[str, Any] | None = None
    ) -> BackendConfig:
        """From a whole policy file's data; ``kind`` and ``overrides`` (CLI flags, operator arguments) win.

        Raises ``PolicyConfigError`` (one line) for an unknown kind, a missing or unknown option.
        """
        backend = data.get("backend") or {}
        demand = data.get("demand") or {}
        if not isinstance(backend, Mapping) or not isinstance(demand, Mapping):
            raise PolicyConfigError("backend and demand must be tables ([backend], [demand])")
        chosen = kind or backend.get("kind") or "spark"
        if chosen not in KINDS:
            raise PolicyConfigError(f"backend kind must be one of {', '.join(KINDS)}, not {chosen!r}")
        section = backend.get(chosen) or {}
        if not isinstance(section, Mapping):
            raise PolicyConfigError(f"backend.{chosen} must be a table")
        options = {**section, **{k: v for k, v in (overrides or {}).items() if v is not None}}
        unknown = sorted(set(options) - _KIND_KEYS[chosen])
        if unknown:
            raise PolicyConfigError(
                f"backend.{chosen}: unknown option {unknown[0]!r} (known: {', '.join(sorted(_KIND_KEYS[chosen]))})"
            )
        if not options.get(_REQUIRED[chosen]):
            raise PolicyConfigError(f"backend.{chosen}: {_REQUIRED[chosen]} is required")
        for key in ("decommission_timeout",):
            if key in options:
                options[key] = parse_duration(options[key], f"backend.{chosen}.{key}").total_seconds()
        unknown_demand = sorted(set(demand) - {"spark_master_ui", "cache_url"})
        if unknown_demand:
            raise PolicyConfigError(
                f"demand: unknown setting {unknown_demand[0]!r} (known: cache_url, spark_master_ui)"
            )
        following = backend.get("cache")
        return cls(
            kind=chosen,
            options=options,
            backoff=_backoff(backend.get("retry") or {}),
            spark_master_ui=demand.get("spark_master_ui") or None,
            cache_url=demand.get("cache_url") or None,
            cache=CacheFollowing.from_dict(following, chosen) if following is not None else None,
        )


def _backoff(data: Any) -> Backoff:
    if not isinstance(data, Mapping):
        raise PolicyConfigError("backend.retry must be a table like { attempts = 5, base = 0.5, cap = 20 }")
    try:
        return Backoff(
            attempts=int(data.get("attempts", 5)), base=float(data.get("base", 0.5)), cap=float(data.get("cap", 20.0))
        )
    except (TypeError, ValueError) as exc:
        raise PolicyConfigError(f"backend.retry: {exc}") from None


def build_scaler(
    config: BackendConfig, *, on_retry: Callable[[str], None] | None = None, cache: NodeCaches | None = None
) -> Scaler:
    """The scaler ``config`` names. Raises ``ScalingError`` (a Spark cluster that does not run, say).

    ``cache`` (else ``config.cache``'s, through its Airflow connection) is the cache cluster on the nodes.
    """
    options = dict(config.options)
    if cache is None and config.cache is not None:
        cache = config.cache.node_caches()
    if config.kind == "spark":
        cluster = SparkStandaloneCluster.attach(
            options["state_dir"], decommission_timeout=float(options.get("decommission_timeout", 300.0))
        )
        return SparkStandaloneScaler(cluster, cache=cache)
    if config.kind == "asg":
        return AutoScalingGroupScaler(
            str(options["group"]),
            region=options.get("region"),
            endpoint_url=options.get("endpoint_url"),
            honor_cooldown=bool(options.get("honor_cooldown", False)),
            backoff=config.backoff,
            on_retry=on_retry,
            cache=cache,
        )
    if config.kind == "emr":
        return EmrInstanceGroupScaler(
            str(options["cluster_id"]),
            group_type=str(options.get("group_type", "TASK")),
            instance_group_id=options.get("instance_group_id"),
            decommission_timeout=int(options.get("decommission_timeout", 3600)),
            region=options.get("region"),
            endpoint_url=options.get("endpoint_url"),
            backoff=config.backoff,
            on_retry=on_retry,
        )
    raise ScalingError(f"unknown backend {config.kind!r}")  # from_dict refuses it first


def spark_master_ui(config: BackendConfig, scaler: Scaler) -> str | None:
    """Where the Spark master's JSON is: the configured URL, or the spark backend's own master."""
    if config.spark_master_ui:
        return config.spark_master_ui
    if isinstance(scaler, SparkStandaloneScaler):
        return scaler.cluster.webui_url
    return None


def collect_demand(
    config: BackendConfig,
    scaler: Scaler,
    *,
    app_cores: int,
    cache_status: Callable[[], Mapping[str, Any]] | None = None,
) -> Demand:
    """Demand from the Spark master and the cache; a source that cannot be read becomes a note, not an error.

    ``cache_status`` (an Airflow ``CacheHook().status``) is used instead of ``config.cache_url`` when given.
    """
    demand = Demand()
    webui = spark_master_ui(config, scaler)
    if webui is None:
        demand = demand.with_note("no Spark master to read demand from ([demand] spark_master_ui)")
    else:
        try:
            demand = demand.merged(read_spark_master(webui, app_cores=app_cores))
        except BackendUnavailableError as exc:
            demand = demand.with_note(f"Spark demand unknown: {exc}")
    try:
        if cache_status is not None:
            demand = demand.merged(from_cache_status(cache_status()))
        elif config.cache_url:
            demand = demand.merged(read_cache(config.cache_url))
    except Exception as exc:  # a cache that is down must not stop the cluster from scaling
        demand = demand.with_note(f"cache pressure unknown: {exc}")
    return demand
