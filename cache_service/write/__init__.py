"""The write path: write-through to S3, and staging data held in the cache until a rename publishes it."""
