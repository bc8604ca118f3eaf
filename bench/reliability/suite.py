"""The campaigns ``make chaos`` runs, in the order of ``docs/reliability.md``: one line each.

A campaign is a function of a ``Budget`` (``QUICK`` or ``FULL``) that starts and stops every process it needs and
returns its results: ``CampaignResult`` records (inputs tried, crashes, 5xx) or ``GuaranteeResult`` records (a
guarantee, its counts, held or broken), both in ``campaign``. To add one, append ``("name", function)`` below and a
paragraph about it to ``report.ABOUT``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.reliability.bad_input import admin_schema_campaign, live_http_campaign
from bench.reliability.campaign import Budget, CampaignResult, GuaranteeResult
from bench.reliability.crash_consistency import crash_consistency
from bench.reliability.disk_faults import disk_faults
from bench.reliability.fuzzing import fuzz_parsers
from bench.reliability.s3_faults import s3_faults
from bench.reliability.soak import soak

Result = CampaignResult | GuaranteeResult
Campaign = Callable[[Budget], Sequence[Result]]

CAMPAIGNS: tuple[tuple[str, Campaign], ...] = (
    ("crash_consistency", crash_consistency),
    ("s3_faults", s3_faults),
    ("disk_faults", disk_faults),
    ("soak", soak),
    ("fuzzing", fuzz_parsers),
    ("live_http", live_http_campaign),
    ("admin_schema", admin_schema_campaign),
)
