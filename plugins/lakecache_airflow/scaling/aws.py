"""What the AWS backends share: boto3 clients whose retries are ours, and which AWS errors are worth retrying.

botocore retries throttling on its own, silently; the clients made here turn that off (one attempt per call), so
that ``retry.call_with_backoff`` does the retrying and a scale result can report every throttled call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from lakecache_airflow.scaling.base import BackendRefusedError, BackendUnavailableError, ClusterState, ScaleResult
from lakecache_airflow.scaling.retry import Attempts, Backoff, call_with_backoff

T = TypeVar("T")

#: Error codes that mean "not now": throttling, a busy or unavailable service, no capacity yet.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerException",
        # Auto Scaling: another scaling activity or update holds the group; EC2/EMR: the capacity is not there yet.
        "ScalingActivityInProgress",
        "ResourceContention",
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientCapacityException",
    }
)
#: HTTP statuses that mean the same whatever the body says (a proxy's 503 may carry no AWS error code).
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def client(service: str, *, region: str | None, endpoint_url: str | None, timeout: float = 30.0) -> Any:
    """A boto3 client for ``service`` that makes one attempt per call (retries are the caller's)."""
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=timeout,
        read_timeout=timeout,
    )
    session: Any = boto3.session.Session()  # typed per service name; ours is a variable
    return session.client(service, region_name=region or "us-east-1", endpoint_url=endpoint_url or None, config=config)


def transient(error: BaseException) -> str | None:
    """Why ``error`` is worth retrying ("Throttling (HTTP 400): Rate exceeded"), or None."""
    if isinstance(error, ClientError):
        code, status, message = error_parts(error)
        if code in TRANSIENT_CODES or status in TRANSIENT_STATUSES:
            return f"{code} (HTTP {status}): {message}" if message else f"{code} (HTTP {status})"
        return None
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError):
        return f"no answer: {error}"
    return None


def error_parts(error: ClientError) -> tuple[str, int, str]:
    """The error code, HTTP status and message of a ``ClientError``."""
    details = error.response.get("Error", {}) or {}
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    code = str(details.get("Code") or status or "Unknown")
    message = " ".join(str(details.get("Message") or "").split())
    return code, status, message


def call(
    operation: Callable[[], T],
    *,
    what: str,
    backoff: Backoff,
    attempts: Attempts,
    on_retry: Callable[[str], None] | None = None,
) -> T:
    """Call an AWS API with backoff; a final failure becomes a one-line ``ScalingError``.

    Raises ``RetriesExhaustedError`` (transient failures outlasted the retries), ``BackendUnavailableError``
    (no answer at all) or ``BackendRefusedError`` (the service refused: validation, access).
    """
    try:
        return call_with_backoff(
            operation, what=what, transient=transient, backoff=backoff, attempts=attempts, on_retry=on_retry
        )
    except ClientError as exc:
        code, status, message = error_parts(exc)
        raise BackendRefusedError(f"{what} refused: {code} (HTTP {status}): {message}") from None
    except BotoCoreError as exc:
        raise BackendUnavailableError(f"{what} failed: {exc}") from None


class AwsScaler:
    """What the AWS scalers share: a boto3 ``service`` client whose calls are retried and reported alike.

    Subclasses call ``_connect`` in their constructor (``given``: a client of the caller's, else one is made) and
    name what they scale in ``_target``.
    """

    service = ""
    backend = ""
    client: Any
    backoff: Backoff
    on_retry: Callable[[str], None]

    def _connect(
        self,
        given: Any,
        *,
        region: str | None,
        endpoint_url: str | None,
        backoff: Backoff | None,
        on_retry: Callable[[str], None] | None,
    ) -> None:
        self.client = given if given is not None else client(self.service, region=region, endpoint_url=endpoint_url)
        self.backoff = backoff or Backoff()
        # Retries are logged by the scaler's own module, as they were before this base existed.
        self.on_retry = on_retry or logging.getLogger(type(self).__module__).warning

    @property
    def _target(self) -> str:
        """What this scaler scales, as the retry messages name it."""
        raise NotImplementedError

    def _call(self, what: str, attempts: Attempts, method: str, **params: Any) -> Any:
        operation = getattr(self.client, method)
        return call(
            lambda: operation(**params),
            what=f"{self.service} {what} on {self._target}",
            backoff=self.backoff,
            attempts=attempts,
            on_retry=self.on_retry,
        )

    def _result(
        self,
        attempts: Attempts,
        target: int,
        requested: int,
        before: ClusterState,
        after: ClusterState,
        notes: Sequence[str],
    ) -> ScaleResult:
        """What a ``scale_to(target)`` did: asked for ``requested`` nodes, went from ``before`` to ``after``."""
        return ScaleResult(
            backend=self.backend,
            before=before.desired,
            target=target,
            requested=requested,
            after=after.desired,
            attempts=attempts.calls,
            retries=tuple(attempts.failures),
            notes=tuple(notes),
        )
