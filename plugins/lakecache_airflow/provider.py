"""Provider metadata: what Airflow's ``ProvidersManager`` learns about this package through its entry point.

``pyproject.toml`` registers ``get_provider_info`` under ``[project.entry-points.apache_airflow_provider]``.
Airflow calls it at provider discovery in every component (scheduler, API server, workers), so this module imports
nothing: the hooks and operators it names are imported by Airflow only when needed.

The connection form is declared here (``ui-field-behaviour`` and ``conn-fields``) rather than through the hook's
``get_ui_field_behaviour()``/``get_connection_form_widgets()``: Airflow 3.2 deprecated those methods, and the
UI reads the declarative form without importing the hook.
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "lakecache"  # the distribution name; Airflow refuses provider info that names another one
CONNECTION_TYPE = "lakecache"
HOOK_CLASS_NAME = "lakecache_airflow.hooks.cache.CacheHook"
HOOK_NAME = "Lakecache"
PLUGIN_CLASS_NAME = "lakecache_airflow.plugin.LakecachePlugin"
INTEGRATION = "Lakecache"

#: How the standard connection form looks for a ``lakecache`` connection (provider-info spelling).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "login", "extra"],
    "relabeling": {"host": "Cache host", "password": "Admin token"},
    "placeholders": {
        "host": "cache.internal or https://cache.internal",
        "port": "9870",
        "password": "the cache's [admin] token (CACHE_ADMIN_TOKEN)",
    },
}

#: Extra fields of a ``lakecache`` connection, stored in ``Connection.extra``.
CONN_FIELDS: dict[str, Any] = {
    "use_https": {
        "label": "Use HTTPS",
        "description": "Talk to the admin API over https:// (a cache behind a TLS proxy).",
        "schema": {"type": "boolean", "default": False},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "How long one admin API request may take before the cache counts as unreachable.",
        "schema": {"type": "number", "default": 30, "minimum": 1},
    },
}


def get_provider_info() -> dict[str, Any]:
    """The provider info dict, conforming to ``airflow/provider_info.schema.json``."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Lakecache",
        "description": "Hooks, operators, sensors and triggers for the Lakecache cache between Spark and S3: "
        "warmup, purge under pressure, TTL sweeps and job waits over the cache's admin API.",
        "versions": ["0.1.0"],
        "integrations": [
            {"integration-name": INTEGRATION, "tags": ["service"]},
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["lakecache_airflow.hooks.cache"]}],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "lakecache_airflow.operators.warmup",
                    "lakecache_airflow.operators.purge",
                    "lakecache_airflow.operators.maintenance",
                    "lakecache_airflow.operators.metastore",
                    "lakecache_airflow.operators.cluster_scale",
                ],
            }
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["lakecache_airflow.sensors.cache_job"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["lakecache_airflow.triggers.cache_job"]}],
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": HOOK_CLASS_NAME,
                "hook-name": HOOK_NAME,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
        "plugins": [{"name": "lakecache", "plugin-class": PLUGIN_CLASS_NAME}],
    }
