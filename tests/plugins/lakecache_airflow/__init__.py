"""Tests of the ``lakecache_airflow`` package, mirroring its tree."""
