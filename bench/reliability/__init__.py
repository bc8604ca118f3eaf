"""Reliability campaigns (issue #16): real processes and bad input, each campaign's outcome a typed record.

Bad input at scale: ``fuzzing`` runs the parsers of both APIs and the config loader under atheris (``parsers`` holds
the targets), ``live_http`` sends generated requests to both ports of a real worker, and ``admin_schema`` runs
schemathesis against the admin API's OpenAPI description (``docs/admin-api.yaml``). Each takes a ``Budget`` and
returns ``CampaignResult`` records (``campaign``) for a report to render.

Guarantees under faults: ``crash_consistency`` writes a history of acknowledged writes while workers are SIGKILLed
(``writers`` are its clients, ``history`` its judge) and returns ``GuaranteeResult`` records. ``suite.CAMPAIGNS``
lists what ``make chaos`` (``python -m bench.reliability``) runs; ``report`` renders ``docs/reliability.md``.
"""
