"""Operators: warmup, purge under pressure and maintenance of a Lakecache cache."""
