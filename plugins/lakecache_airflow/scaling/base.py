"""The scaler interface: what every backend (Spark standalone, EC2 Auto Scaling, EMR) offers, and its errors.

A scaler knows one cluster. ``current()`` says how many nodes it has; ``scale_to(n)`` asks for ``n`` nodes and
returns once the backend accepted the request (Spark standalone: once the workers joined or left). Scale-in is
graceful by default: nodes being removed finish (or hand over) their running work first, as far as the backend can
do it; ``graceful=False`` removes them at once.

Every failure is a ``ScalingError`` whose message fits on one line, so a CLI or a task log can show it as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class ScalingError(Exception):
    """A scaling request or a state query failed; ``str(error)`` is one line for an operator."""


class BackendUnavailableError(ScalingError):
    """The backend could not be reached (connection refused, no answer, endpoint down)."""


class ClusterNotFoundError(ScalingError):
    """The group, cluster or instance group named in the configuration does not exist."""


class RetriesExhaustedError(ScalingError):
    """A transient failure (throttling, capacity, service unavailable) outlasted every retry.

    ``attempts`` lists what each attempt met, in order.
    """

    def __init__(self, message: str, attempts: tuple[str, ...]) -> None:
        super().__init__(message)
        self.attempts = attempts


class BackendRefusedError(ScalingError):
    """The backend refused the request for a reason a retry cannot fix (validation error, access denied)."""


class DecommissionTimeoutError(ScalingError):
    """Nodes being decommissioned still ran work when the graceful timeout ran out (and were not forced)."""


@dataclass(frozen=True)
class ClusterState:
    """One cluster as its backend sees it now.

    ``nodes`` serve work now (alive workers, in-service instances, running instances). ``desired`` is what the
    backend is asked to run: it differs from ``nodes`` while nodes boot or drain, and the policy reasons about it
    so that it does not ask twice for nodes already on their way. ``min_nodes``/``max_nodes`` are limits the
    backend itself enforces (an Auto Scaling group's MinSize/MaxSize), None when it has none. ``cores_*`` are
    known for Spark standalone only.
    """

    backend: str
    nodes: int
    desired: int
    min_nodes: int | None = None
    max_nodes: int | None = None
    cores_total: int | None = None
    cores_used: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "backend": self.backend,
            "nodes": self.nodes,
            "desired": self.desired,
            "min_nodes": self.min_nodes,
            "max_nodes": self.max_nodes,
            "cores_total": self.cores_total,
            "cores_used": self.cores_used,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class Node:
    """A compute node as its backend names it (``worker-2``, ``i-0abc...``) and the addresses it is reached at."""

    name: str
    addresses: tuple[str, ...]

    def has_address(self, host: str) -> bool:
        """True when ``host`` is one of this node's addresses (without case)."""
        return host.lower() in {a.lower() for a in self.addresses if a}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what the DAG's tasks pass along in XCom)."""
        return {"name": self.name, "addresses": list(self.addresses)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Node:
        """The node of ``to_json``."""
        return cls(str(data["name"]), tuple(str(a) for a in data.get("addresses") or ()))


@dataclass(frozen=True)
class ScaleResult:
    """What a ``scale_to`` call did.

    ``target`` is what was asked, ``requested`` what was sent to the backend (the target clamped to the
    backend's own limits), ``after`` the size the backend reports once the call returned. ``attempts`` counts
    backend calls including retries; ``retries`` says why each retried call failed; ``notes`` holds anything an
    operator should read (a clamp, a forced decommission, a cache worker drained). ``added``/``removed`` name the
    nodes started and stopped, when the backend knows them (their cache workers are found by their addresses).
    """

    backend: str
    before: int
    target: int
    requested: int
    after: int
    attempts: int = 1
    retries: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    added: tuple[Node, ...] = ()
    removed: tuple[Node, ...] = ()

    @property
    def changed(self) -> bool:
        """True if the request changed the cluster's desired size."""
        return self.requested != self.before

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "backend": self.backend,
            "before": self.before,
            "target": self.target,
            "requested": self.requested,
            "after": self.after,
            "changed": self.changed,
            "attempts": self.attempts,
            "retries": list(self.retries),
            "notes": list(self.notes),
            "added": [node.to_json() for node in self.added],
            "removed": [node.to_json() for node in self.removed],
        }


@runtime_checkable
class Scaler(Protocol):
    """A cluster that can report its size and be resized.

    Implementations: ``SparkStandaloneScaler``, ``AutoScalingGroupScaler``, ``EmrInstanceGroupScaler``.
    """

    backend: str

    def current(self) -> ClusterState:
        """The cluster's state now.

        Raises ``BackendUnavailableError``, ``ClusterNotFoundError`` or ``RetriesExhaustedError``.
        """
        ...

    def scale_to(self, target: int, *, graceful: bool = True) -> ScaleResult:
        """Ask for ``target`` nodes (>= 0); scale-in lets running work finish first unless ``graceful`` is False.

        Raises ``ValueError`` for a negative target, ``BackendRefusedError``, ``RetriesExhaustedError``,
        ``BackendUnavailableError``, ``ClusterNotFoundError``, ``DecommissionTimeoutError``.
        """
        ...


def check_target(target: int) -> int:
    """``target`` as a node count; raises ``ValueError`` for a negative number or a non-integer."""
    if isinstance(target, bool) or not isinstance(target, int):
        raise ValueError(f"the target must be a whole number of nodes, not {target!r}")
    if target < 0:
        raise ValueError(f"the target must be 0 or more nodes, not {target}")
    return target


def clamp_to_backend(target: int, state: ClusterState) -> tuple[int, tuple[str, ...]]:
    """``target`` within the backend's own limits, and a note when it had to be moved."""
    requested, notes = target, []
    if state.max_nodes is not None and requested > state.max_nodes:
        requested = state.max_nodes
        notes.append(f"asked for {target} nodes; the {state.backend} allows at most {state.max_nodes}")
    if state.min_nodes is not None and requested < state.min_nodes:
        requested = state.min_nodes
        notes.append(f"asked for {target} nodes; the {state.backend} keeps at least {state.min_nodes}")
    return requested, tuple(notes)
