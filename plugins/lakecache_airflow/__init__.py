"""Lakecache provider for Apache Airflow: hooks, operators, sensors and triggers for the cache."""
