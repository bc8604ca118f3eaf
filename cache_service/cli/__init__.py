"""``cachectl``: serve the cache and steer it from a shell."""
