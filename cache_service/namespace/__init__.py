"""The namespace: cache paths, the mount table that maps them to S3, and path safety."""
