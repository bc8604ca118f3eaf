"""Sensors: wait for something to happen in a Lakecache cache."""
