"""Cache management: status, warmup, free, purge under pressure, pins, TTLs and quotas."""
