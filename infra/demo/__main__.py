"""``python -m infra.demo``: see ``infra.demo.cli``."""

import sys

from infra.demo.cli import main

sys.exit(main())
