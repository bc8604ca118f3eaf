"""Monitoring as code: Prometheus's and Alertmanager's configuration generated from a spec, and deployed to them."""
