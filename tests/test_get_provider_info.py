from __future__ import annotations

import importlib
import json
from pathlib import Path

import airflow
import jsonschema
import pytest

import airflow_provider_pixxel
from airflow_provider_pixxel.get_provider_info import get_provider_info

PACKAGE_DIR = Path(airflow_provider_pixxel.__file__).parent


def _listed_modules(info: dict, section: str) -> set[str]:
    return {module for entry in info.get(section, []) for module in entry["python-modules"]}


@pytest.mark.parametrize("section", ["hooks", "operators", "sensors", "triggers"])
def test_every_module_is_listed_and_imports(section):
    info = get_provider_info()
    # A module is a .py file or a package (a folder with an __init__.py, such as hooks/download/).
    on_disk = {
        f"airflow_provider_pixxel.{section}.{path.stem}"
        for path in (PACKAGE_DIR / section).iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    listed = _listed_modules(info, section)
    assert listed == on_disk, (
        f"modules on disk but not listed: {on_disk - listed}; listed but missing: {listed - on_disk}"
    )
    for module in listed:
        importlib.import_module(module)


def test_info_validates_against_airflow_schema():
    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_package_name_matches_distribution():
    from importlib.metadata import distribution

    assert get_provider_info()["package-name"] == distribution("airflow-provider-pixxel").metadata["Name"]


def test_connection_type_points_at_importable_hook():
    (conn,) = get_provider_info()["connection-types"]
    module_name, _, class_name = conn["hook-class-name"].rpartition(".")
    hook_class = getattr(importlib.import_module(module_name), class_name)
    assert conn["connection-type"] == hook_class.conn_type == "pixxel"
    assert conn["hook-name"] == hook_class.hook_name
    assert conn["ui-field-behaviour"]["relabeling"]["password"] == "API key"


def test_extra_links_and_classes_import():
    for dotted in get_provider_info()["extra-links"]:
        module_name, _, class_name = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module_name), class_name), dotted


def test_entry_point_is_registered():
    from importlib.metadata import entry_points

    (entry,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_pixxel")
    ]
    assert entry.load() is get_provider_info


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["providers", "list"], {"package_name": "airflow-provider-pixxel"}),
        (["providers", "hooks"], {"connection_type": "pixxel", "hook_name": "Pixxel"}),
    ],
)
def test_airflow_cli_shows_the_provider(command, expected, tmp_path):
    import os
    import subprocess
    import sys

    airflow_cli = Path(sys.executable).with_name("airflow")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    output = subprocess.run(
        [str(airflow_cli), *command, "-o", "json"], env=env, capture_output=True, text=True, check=True
    ).stdout
    # Airflow may print log lines before the JSON document; it starts on its own line.
    start = next(i for i, line in enumerate(output.splitlines()) if line.startswith("["))
    rows = json.loads("\n".join(output.splitlines()[start:]))
    assert any(all(row.get(k) == v for k, v in expected.items()) for row in rows), rows


def test_the_transport_limits_are_connection_fields_with_the_hooks_defaults():
    from airflow_provider_pixxel.hooks.transport import DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_RESPONSE_MIB

    (conn,) = get_provider_info()["connection-types"]
    fields = conn["conn-fields"]
    assert fields["call_timeout"]["schema"]["default"] == DEFAULT_CALL_TIMEOUT
    assert fields["max_response_mib"]["schema"]["default"] == DEFAULT_MAX_RESPONSE_MIB
