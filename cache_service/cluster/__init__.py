"""The cache cluster: worker identities, membership in Redis, the ring that says which worker owns a block, and the
peer client workers read each other's pages with. A worker whose ``[cluster] redis_url`` is empty runs alone.
"""
