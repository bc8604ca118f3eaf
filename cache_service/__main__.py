"""``python -m cache_service`` is ``cachectl``."""

from cache_service.cli.main import main

raise SystemExit(main())
