"""Tests of ``lakecache_airflow.triggers``."""
