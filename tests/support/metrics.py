"""Reading a cache worker's Prometheus metrics in tests."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(base_url: str) -> dict[str, float]:
    """Every sample of ``base_url``/metrics, keyed ``name{label="value",...}`` (labels sorted) or ``name``."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def s3_bytes_read(base_url: str) -> float:
    """Bytes the worker has read from S3 so far."""
    return scrape(base_url).get("lakecache_s3_bytes_read_total", 0.0)


def bytes_served(base_url: str, tier: str) -> float:
    """Bytes the worker has served to clients from ``tier`` (memory, disk or s3)."""
    return scrape(base_url).get(f'lakecache_bytes_served_total{{tier="{tier}"}}', 0.0)


def requests_by_user(base_url: str, api: str) -> dict[tuple[str, str], float]:
    """``lakecache_requests_by_user_total`` of ``api`` so far, by (user, outcome)."""
    prefix = "lakecache_requests_by_user_total{"
    found = {}
    for name, value in scrape(base_url).items():
        if name.startswith(prefix) and f'api="{api}"' in name:
            labels = dict(pair.split("=", 1) for pair in name[len(prefix) : -1].split(","))
            found[(labels["user"].strip('"'), labels["outcome"].strip('"'))] = value
    return found


def added(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """What each of ``after``'s series counted since ``before`` (the series that counted nothing left out)."""
    return {key: value - before.get(key, 0) for key, value in after.items() if value != before.get(key, 0)}
