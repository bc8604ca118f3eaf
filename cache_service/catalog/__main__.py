"""``python -m cache_service.catalog``: metastore sync from the command line."""

from cache_service.catalog.cli import main

raise SystemExit(main())
