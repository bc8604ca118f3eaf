"""Tests of ``lakecache_airflow.hooks``."""
