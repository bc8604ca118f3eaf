"""Benchmarks: ``python -m bench.run`` (``make bench``) measures and rewrites ``docs/benchmarks.md``."""
