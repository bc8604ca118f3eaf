"""The admin API against its OpenAPI description (``docs/admin-api.yaml``), with schemathesis, on a live worker.

Every operation of the description gets generated requests, both those the description allows (positive) and those
it does not (negative: wrong types, missing fields, unknown ones); each is sent with the admin token, so the
mutating routes (purge, free, pin, ttl, drain, job cancels) run for real: use a throwaway worker. Each answer is
checked: never a 5xx (``not_a_server_error``), and an answer to an allowed request has a status, content type and
body the description lists. Against a cluster each request goes to a worker picked at random (a seeded rng), and
every worker must answer ``/healthz`` afterwards.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bench.reliability.campaign import QUICK, Budget, BudgetSpentError, CampaignResult
from cache_service.api.admin.openapi import DESCRIPTION, load_description

CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def run_admin_schema(
    webhdfs_urls: Sequence[str], token: str, budget: Budget = QUICK, *, label: str = "", seed: int = 0
) -> CampaignResult:
    """Run the description's generated cases against the workers at ``webhdfs_urls`` (their WebHDFS ports; each case
    to one drawn by a ``random.Random(seed)``) for ``budget``, spread evenly over operations and modes; returns the
    counts, named ``admin_schema`` and ``label`` (``, 3 workers``)."""
    schema = schemathesis.openapi.from_dict(load_description(DESCRIPTION))
    operations = [operation.ok() for operation in schema.get_all_operations()]  # type: ignore[union-attr]
    result = CampaignResult(
        name="admin_schema" + label,
        target="admin API",
        engine=f"schemathesis {schemathesis.SCHEMATHESIS_VERSION}",
    )
    runs = [(operation, mode) for operation in operations for mode in MODES]
    per_run = max(5, (budget.cases or 10**9) // len(runs))
    # Each run gets an even share of the time too, so that a slow machine still reaches every operation.
    share = budget.seconds / len(runs) if budget.seconds is not None else float("inf")
    started = time.monotonic()
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    picks = random.Random(seed)
    for operation, mode in runs:
        _run(operation, mode, per_run, time.monotonic() + share, result, session, headers, webhdfs_urls, picks)
    result.server_alive = all(_alive(url) for url in webhdfs_urls)
    result.seconds = round(time.monotonic() - started, 1)
    return result


def _run(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    deadline: float,
    result: CampaignResult,
    session: requests.Session,
    headers: dict[str, str],
    base_urls: Sequence[str],
    picks: random.Random,
) -> None:
    checks = CONFORMANCE if mode is GenerationMode.POSITIVE else [not_a_server_error]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def one(case: Any) -> None:
        if time.monotonic() > deadline:
            raise BudgetSpentError
        _send(case, result, session, headers, checks, picks.choice(base_urls))

    try:
        one()
    except Unsatisfiable:
        pass  # nothing the description forbids can be sent (an operation without inputs, negatively)
    except BudgetSpentError:
        pass


def _send(
    case: Any,
    result: CampaignResult,
    session: requests.Session,
    headers: dict[str, str],
    checks: list[Any],
    base_url: str,
) -> None:
    result.cases += 1
    label = f"{case.method} {case.formatted_path}"
    try:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
    except requests.RequestException as exc:
        result.crashes += 1  # no answer at all: the worker died or hung up
        result.note(f"no answer to {case.operation.label}", str(exc), label)
        return
    result.statuses[str(response.status_code)] = result.statuses.get(str(response.status_code), 0) + 1
    if response.status_code >= 500:
        result.server_errors += 1
    try:
        case.validate_response(response, checks=checks, headers=headers)
    except (AssertionError, FailureGroup) as exc:  # one failure, or a group of them, per answer
        if response.status_code < 500:
            result.nonconforming += 1
        body = response.text[:300]
        result.note(
            f"{case.operation.label} answered {response.status_code}",
            f"{type(exc).__name__}: {exc}"[:500],
            f"{label} query={case.query!r} body={case.body!r} -> {body}",
        )


def _alive(webhdfs_url: str) -> bool:
    try:
        return requests.get(f"{webhdfs_url}/healthz", timeout=10).status_code == 200
    except requests.RequestException:
        return False
