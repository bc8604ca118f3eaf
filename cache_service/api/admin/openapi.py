"""The admin API's OpenAPI description: ``docs/admin-api.yaml``, read once at startup and served as JSON.

The package holds it as ``openapi.yaml``, a link to the document in ``docs/`` (a built package copies the document
itself), so the description served and the one in the docs are one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DESCRIPTION = Path(__file__).with_name("openapi.yaml")


def load_description(path: Path = DESCRIPTION) -> dict[str, Any]:
    """The OpenAPI document at ``path`` as JSON-ready data. Raises ``OSError`` or ``yaml.YAMLError``."""
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document
