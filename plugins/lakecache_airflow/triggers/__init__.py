"""Triggers: asynchronous waits that deferred Lakecache tasks hand to the triggerer."""
