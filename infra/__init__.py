"""Everything that runs the Lakecache stack: the S3 emulator, cache processes and the local stack launcher."""
