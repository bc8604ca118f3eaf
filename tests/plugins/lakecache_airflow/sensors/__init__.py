"""Tests of ``lakecache_airflow.sensors``."""
