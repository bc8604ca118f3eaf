"""Tests of the Airflow side (``plugins/``): hooks, operators, sensors, triggers and the UI plugin."""
