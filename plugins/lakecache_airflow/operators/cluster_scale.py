"""``ClusterScaleOperator``: evaluate the scaling policy now and apply its decision to the compute cluster."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context, Variable
from airflow.sdk.exceptions import AirflowException

from lakecache_airflow.hooks.cache import CacheHook
from lakecache_airflow.scaling.backends import BackendConfig, build_scaler, collect_demand
from lakecache_airflow.scaling.base import ScaleResult, ScalingError
from lakecache_airflow.scaling.policy import Decision, LastAction, PolicyConfig, PolicyConfigError

#: The Airflow Variable holding what the policy remembers between runs (last change, warmups asked for).
STATE_VARIABLE = "lakecache_autoscale_state"


class ClusterScaleOperator(BaseOperator):
    """Decide the cluster's size with the policy in ``config`` and apply it; the decision goes to XCom.

    Each run reads the cluster's state from its backend, the demand (Spark master, cache pressure through the
    ``lakecache`` connection), and what the last run did (the Airflow Variable ``state_variable``), then logs the
    decision and every reason for it. Unless it is a dry run it resizes the cluster, and when a peak window is
    about to open it starts the cache warmup of that window's paths (``CacheHook.load``).

    :param config: a policy file (TOML) path, or the same as a dict; with ``[backend]`` and ``[demand]`` tables
        (see ``lakecache_airflow.scaling.policy`` and ``.backends``). Templated.
    :param backend: ``spark``, ``asg`` or ``emr``, overriding ``[backend] kind``. Templated.
    :param dry_run: decide and log, change nothing (a policy file with ``dry_run = true`` is always a dry run).
        Templated: ``"{{ params.dry_run }}"`` works.
    :param lakecache_conn_id: the cache to read pressure from and to warm up; None: neither.
    :param warmup_parallelism: / warmup_bandwidth / warmup_tier: passed to ``CacheHook.load``.
    :param state_variable: the Airflow Variable for the policy's memory; None: no memory (no cooldown across runs).
    """

    template_fields: Sequence[str] = ("config", "backend", "decide_only")
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        config: str | Mapping[str, Any],
        backend: str | None = None,
        dry_run: bool | str = False,
        lakecache_conn_id: str | None = CacheHook.default_conn_name,
        warmup_parallelism: int = 4,
        warmup_bandwidth: str | int | None = None,
        warmup_tier: str = "disk",
        state_variable: str | None = STATE_VARIABLE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.backend = backend
        # Not ``self.dry_run``: BaseOperator.dry_run() is Airflow's render-only run of a task.
        self.decide_only = dry_run
        self.lakecache_conn_id = lakecache_conn_id
        self.warmup_parallelism = warmup_parallelism
        self.warmup_bandwidth = warmup_bandwidth
        self.warmup_tier = warmup_tier
        self.state_variable = state_variable

    def execute(self, context: Context) -> dict[str, Any]:
        """Decide, log, apply (unless dry run), warm up; returns the decision, state, demand and result."""
        data = config_data(self.config)
        try:
            policy = PolicyConfig.from_dict(data)
            backend = BackendConfig.from_dict(data, kind=option_text(self.backend))
        except PolicyConfigError as exc:
            raise AirflowException(f"the autoscaling policy was refused: {exc}") from None
        dry_run = _flag(self.decide_only) or policy.dry_run
        try:
            scaler = build_scaler(backend, on_retry=self.log.warning)
            state = scaler.current()
        except ScalingError as exc:
            raise AirflowException(f"cannot read the {backend.kind} cluster: {exc}") from None
        cache = CacheHook(self.lakecache_conn_id) if self.lakecache_conn_id else None
        demand = collect_demand(
            backend, scaler, app_cores=policy.reactive.app_cores, cache_status=cache.status if cache else None
        )
        last = self._last_action()
        decision = policy.decide(datetime.now(UTC), state, demand, last, dry_run=dry_run)
        self._log_decision(decision)

        result: ScaleResult | None = None
        if decision.action != "hold" and not decision.dry_run:
            try:
                result = scaler.scale_to(decision.target)
            except ScalingError as exc:
                raise AirflowException(
                    f"scaling the {backend.kind} cluster to {decision.target} failed: {exc}"
                ) from None
            self.log.info(
                "Scaled the %s cluster: %d -> %d nodes (%d now)",
                backend.kind,
                result.before,
                result.requested,
                result.after,
            )
            for line in (*result.retries, *result.notes):
                self.log.warning("  %s", line)

        warmup_job, warmup_error = self._warmup(decision, cache)
        if not decision.dry_run:
            self._remember((last or LastAction()).after(decision, applied=result is not None, warmed=bool(warmup_job)))
        if warmup_error is not None:
            raise AirflowException(warmup_error)
        return {
            "decision": decision.to_json(),
            "state": state.to_json(),
            "demand": demand.to_json(),
            "result": result.to_json() if result is not None else None,
            "warmup_job": warmup_job,
        }

    def _log_decision(self, decision: Decision) -> None:
        self.log.info("Autoscaling decision at %s: %s", decision.at.isoformat(timespec="seconds"), decision.summary())
        for reason in decision.reasons:
            self.log.info("  because: %s", reason)

    def _warmup(self, decision: Decision, cache: CacheHook | None) -> tuple[str | None, str | None]:
        """Start the warmup the decision asks for; (job id, None) or (None, why it failed)."""
        if not decision.warmup:
            return None, None
        paths = list(decision.warmup)
        if decision.dry_run:
            self.log.info("Dry run: would warm up %s for %s", ", ".join(paths), ", ".join(decision.warmup_keys))
            return None, None
        if cache is None:
            self.log.warning("No lakecache connection: the warmup of %s is skipped", ", ".join(paths))
            return None, None
        try:
            job = cache.load(
                paths=paths, parallelism=self.warmup_parallelism, bandwidth=self.warmup_bandwidth, tier=self.warmup_tier
            )
        except AirflowException as exc:
            return None, f"the cache warmup for {', '.join(decision.warmup_keys)} failed: {exc}"
        keys = ", ".join(decision.warmup_keys)
        self.log.info("Started cache warmup job %s for %s: %s", job.get("id"), keys, ", ".join(paths))
        return str(job.get("id")), None

    def _last_action(self) -> LastAction | None:
        if not self.state_variable:
            return None
        try:
            return LastAction.from_json(Variable.get(self.state_variable, default=None, deserialize_json=True))
        except (ValueError, TypeError, AttributeError) as exc:
            self.log.warning("Variable %s is not a policy state (%s): starting without one", self.state_variable, exc)
            return None

    def _remember(self, record: LastAction) -> None:
        if self.state_variable:
            Variable.set(self.state_variable, record.to_json(), serialize_json=True)


def config_data(config: str | Mapping[str, Any]) -> dict[str, Any]:
    """The policy ``config`` names (a TOML file path, or the dict itself). Raises ``AirflowException`` (one line)."""
    if isinstance(config, Mapping):
        return dict(config)
    path = str(config or "").strip()
    if not path:
        raise AirflowException(
            "no autoscaling policy: pass config (a TOML file path or a dict), e.g. through the Variable "
            "lakecache_autoscale_config"
        )
    try:
        return tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise AirflowException(f"cannot read the autoscaling policy {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AirflowException(f"the autoscaling policy {path} is not valid TOML: {exc}") from None


def _flag(value: bool | str | None) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def option_text(value: str | None) -> str | None:
    """A templated option's text, None when empty or rendered from None."""
    # "{{ params.backend }}" renders None as "None" when templates are not rendered as native objects
    text = str(value).strip() if value is not None else ""
    return text if text and text != "None" else None
