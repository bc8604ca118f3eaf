"""The provider as Airflow discovers it: the entry point, the provider-info schema, the ``lakecache`` connection
form, and imports from ``airflow.sdk`` only (no deprecated Airflow 2 paths)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import airflow
import jsonschema
import pytest

from lakecache_airflow.provider import get_provider_info
from tests.plugins.airflow_home import PLUGINS_FOLDER, REPO_ROOT, AirflowHome

PACKAGE = PLUGINS_FOLDER / "lakecache_airflow"
OUR_MODULES = [
    "lakecache_airflow",
    "lakecache_airflow.plugin",
    "lakecache_airflow.provider",
    *sorted(
        ".".join(path.relative_to(PLUGINS_FOLDER).with_suffix("").parts).removesuffix(".__init__")
        for folder in ("hooks", "operators", "sensors", "triggers")
        for path in (PACKAGE / folder).glob("*.py")
    ),
]
# Airflow 2 homes of names that airflow.sdk now has; importing from them warns, or will break in Airflow 4.
DEPRECATED_HOMES = ("airflow.models", "airflow.operators", "airflow.sensors", "airflow.hooks", "airflow.exceptions")


def test_the_entry_point_is_installed() -> None:
    entry_points = metadata.entry_points(group="apache_airflow_provider")
    assert "lakecache_airflow.provider:get_provider_info" in {e.value for e in entry_points}


def test_provider_info_conforms_to_airflows_runtime_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_the_connection_form_conforms_to_the_stricter_provider_yaml_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider.yaml.schema.json").read_text())
    item_schema = schema["properties"]["connection-types"]["items"]
    for connection_type in get_provider_info()["connection-types"]:
        jsonschema.validate(connection_type, item_schema)


def test_the_connection_form_is_known_without_importing_the_hook() -> None:
    # What the UI's connection dialog reads (GET /ui/connections/hook_meta): provider info only.
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.providers["lakecache"].version == metadata.version("lakecache")
    meta = next(m for m in manager.iter_connection_type_hook_ui_metadata() if m.connection_type == "lakecache")
    assert (meta.hook_name, meta.hook_class_name) == ("Lakecache", "lakecache_airflow.hooks.cache.CacheHook")
    assert meta.field_behaviour is not None
    assert set(meta.field_behaviour["hidden_fields"]) == {"schema", "login", "extra"}
    assert meta.field_behaviour["relabeling"]["password"] == "Admin token"
    widgets = manager.connection_form_widgets
    assert widgets["extra__lakecache__use_https"].field["schema"]["type"] == "boolean"
    assert widgets["extra__lakecache__timeout"].field["value"] == 30


def test_task_runtime_finds_the_hook_for_lakecache_connections() -> None:
    # What Connection.get_hook() uses in a task, and what marks the connection testable in the UI.
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["lakecache"]
    assert hook is not None
    assert hook.hook_class_name == "lakecache_airflow.hooks.cache.CacheHook"
    assert hook.connection_id_attribute_name == "lakecache_conn_id"
    assert hook.connection_testable is True


def test_the_hook_describes_the_same_form_as_the_provider_info() -> None:
    from lakecache_airflow.hooks.cache import CacheHook
    from lakecache_airflow.provider import UI_FIELD_BEHAVIOUR

    assert CacheHook.get_ui_field_behaviour() == {
        "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
        "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }


@pytest.mark.parametrize("module", OUR_MODULES)
def test_no_module_imports_an_airflow_2_home_of_an_sdk_name(module: str) -> None:
    path = PLUGINS_FOLDER / Path(*module.split("."))
    source = (path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).read_text()
    imported = [
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module is not None
    ] + [alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import) for alias in node.names]
    offending = [name for name in imported if name.startswith(DEPRECATED_HOMES)]
    assert offending == [], f"{module} imports {offending}: use airflow.sdk"


# Airflow's own modules are imported first, with warnings as usual: their warnings are not ours to judge. Then every
# DeprecationWarning or FutureWarning (Airflow's deprecated-import warning is a FutureWarning) is an error while our
# modules import and while Airflow imports our hook and reads our connection form.
IMPORT_CHECK = """
import importlib, sys, warnings
import airflow.sdk, airflow.sdk.exceptions, airflow.sdk.plugins_manager, airflow.triggers.base, aiohttp, requests
from airflow.sdk import BaseHook, BaseOperator, BaseSensorOperator, Connection, Context, PokeReturnValue
from airflow.providers_manager import ProvidersManager
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
ui, runtime = ProvidersManager(), ProvidersManagerTaskRuntime()
ui.initialize_providers_hooks()
runtime.initialize_providers_hooks()
warnings.simplefilter("error", DeprecationWarning)
warnings.simplefilter("error", FutureWarning)
for module in sys.argv[1:]:
    importlib.import_module(module)
assert runtime.hooks["lakecache"] is not None  # imports the hook class, as Connection.get_hook() does
assert "lakecache" in ui.field_behaviours and "extra__lakecache__use_https" in ui.connection_form_widgets
try:  # the check bites: an Airflow 2 import fails under these filters
    from airflow.hooks.base import BaseHook as _Old
except FutureWarning:
    print("deprecated imports are errors")
"""


def test_our_modules_import_without_deprecation_warnings(airflow_home: AirflowHome) -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, *OUR_MODULES],
        env=airflow_home.env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "deprecated imports are errors" in result.stdout
