"""Tests of ``lakecache_airflow.operators``."""
