"""Helpers shared by tests that are not fixtures: fault injection, bucket clean-up, cache launchers."""
