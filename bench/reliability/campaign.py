"""What a campaign is given (a ``Budget``) and what it returns (a ``CampaignResult``): counts a report can render."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Budget:
    """How long a campaign runs: at most ``cases`` inputs and at most ``seconds`` (None: no bound of that kind)."""

    cases: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.cases is None and self.seconds is None:
            raise ValueError("a budget needs cases, seconds or both")


class BudgetSpentError(Exception):
    """Raised inside a property-based campaign to stop it once its time is spent (hypothesis would go on drawing)."""


QUICK = Budget(cases=3000, seconds=25)
"""The budget of ``make test`` and of the quick ``make chaos``."""
FULL = Budget(cases=1_000_000, seconds=600)
"""The budget of ``CHAOS_FULL=1``."""


@dataclass(frozen=True)
class Failure:
    """One distinct failure: what went wrong (exception type or status) and the input that showed it."""

    kind: str
    message: str
    example: str


@dataclass
class CampaignResult:
    """The outcome of one campaign against one target.

    ``crashes`` counts inputs that raised an exception other than the target's documented errors (or broke one of its
    invariants), or, against a server, requests it did not answer at all; ``server_errors`` counts 5xx answers (but
    501 NotImplemented, which S3 and the cache answer by design to what they do not do; ``statuses`` counts those);
    ``upstream_errors`` counts 5xx answers that were S3's own (the under store failed a request the worker forwarded,
    and the worker passed its failure on, as its S3 API must), which are not the worker's;
    ``nonconforming`` counts answers below 500 that are not what the API's description lists (status, content type,
    body); ``server_alive`` is None for in-process targets, else whether the worker still answered ``/healthz``
    after the campaign. ``failures`` holds one example per distinct failure.
    """

    name: str
    target: str
    engine: str
    cases: int = 0
    crashes: int = 0
    server_errors: int = 0
    upstream_errors: int = 0
    nonconforming: int = 0
    server_alive: bool | None = None
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    command: str = ""
    passed_on: list[Failure] = field(default_factory=list)
    """Examples of 5xx answers not counted as the worker's (``upstream_errors``, 501 NotImplemented)."""
    statuses: dict[str, int] = field(default_factory=dict)
    """Answers by HTTP status (live campaigns): shows how many requests got past parsing and authentication."""

    @property
    def ok(self) -> bool:
        """True when the campaign found nothing: no crash, no 5xx, and the server (if any) alive."""
        return (
            self.crashes == 0 and self.server_errors == 0 and self.nonconforming == 0 and self.server_alive is not False
        )

    def note(self, kind: str, message: str, example: str, *, failure: bool = True) -> None:
        """Keep one example of ``kind`` (the first seen, at most 20 kinds): a failure, or with ``failure`` false an
        answer ``passed_on``."""
        examples = self.failures if failure else self.passed_on
        if len(examples) < 20 and all(f.kind != kind for f in examples):
            examples.append(Failure(kind, message[:500], example[:2000]))


@dataclass
class GuaranteeResult:
    """The outcome of a campaign that checks a guarantee (crash consistency, fault injection) rather than inputs.

    ``counts`` are what the report shows (``acknowledged``, ``lost``, ``kills``...); ``held`` is whether the
    guarantee held; ``violations`` holds one line per broken case (at most the first 20 are kept).
    """

    name: str
    guarantee: str
    counts: dict[str, int] = field(default_factory=dict)
    held: bool = False
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    command: str = ""

    @property
    def ok(self) -> bool:
        """True when the guarantee held (the name ``CampaignResult`` uses too)."""
        return self.held

    @classmethod
    def judged(
        cls,
        name: str,
        guarantee: str,
        counts: dict[str, int],
        violations: list[str],
        *,
        campaign: str,
        full: bool,
        started: float,
    ) -> GuaranteeResult:
        """The result of a run that began at ``started`` (``time.monotonic()``): held if it found no ``violations``
        (the first 20 are kept), with the command that runs ``campaign`` (its name in the suite) alone."""
        return cls(
            name=name,
            guarantee=guarantee,
            counts=counts,
            held=not violations,
            violations=violations[:20],
            seconds=round(time.monotonic() - started, 1),
            command=f"{'CHAOS_FULL=1 ' if full else ''}python -m bench.reliability --only {campaign}",
        )
