"""The live alerts' fixtures (``test_live_alerts``: a three-worker cluster on its own S3 emulator, Prometheus and
Alertmanager on the generated files, shortened, and a webhook) for the other monitoring tests that need them."""

from tests.infra.monitoring.test_live_alerts import monitoring, s3, webhook, workers

__all__ = ["monitoring", "s3", "webhook", "workers"]
