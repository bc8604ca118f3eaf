"""Hooks: the Lakecache admin API as an Airflow connection (``lakecache``)."""
