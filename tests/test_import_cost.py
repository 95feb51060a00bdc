"""Importing an operator or sensor module, as every parse of a DAG file does, loads only what parsing needs.

Timings are ``benchmarks/bench_import.py``'s job (BENCHMARKS.md §4); this checks the structure that
keeps them low, in a fresh interpreter: after the imports every DAG file has made, importing the
provider's operator and sensor modules loads none of the modules only a running task needs (bound with
:func:`airflow_provider_pixxel.utils.lazy_import.lazy_import` or imported inside methods).
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from typing import Any

import pytest

import airflow_provider_pixxel.operators
import airflow_provider_pixxel.sensors

DAG_FILE_BASELINE = "from airflow.sdk import DAG, BaseOperator, task"

# Only a running task needs these: status reads and tables, the trigger (and with it Airflow's trigger
# base), geometry checks, the HTTP clients, XML parsing of generated SLDs.
LOADED_ON_FIRST_USE = (
    "airflow.triggers.base",
    "airflow_provider_pixxel.resources",
    "airflow_provider_pixxel.statuses",
    "airflow_provider_pixxel.triggers.status",
    "airflow_provider_pixxel.utils.geometry",
    "numpy",
    "requests",
    "shapely",
    "xml.etree.ElementTree",
)
# Every module of the hooks package (transport, retry, hooks, downloads...) too: operators and sensors
# create their hook on first use; DEFAULT_CONN_ID lives in the package itself for that reason.
HOOK_MODULES_PREFIX = "airflow_provider_pixxel.hooks."


def _modules_of(package: Any) -> list[str]:
    return [f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)]


DAG_FACING_MODULES = [
    "airflow_provider_pixxel.operators",
    "airflow_provider_pixxel.sensors",
    "airflow_provider_pixxel.links",
    *_modules_of(airflow_provider_pixxel.operators),
    *_modules_of(airflow_provider_pixxel.sensors),
]

_PROBE = """
import importlib, json, sys
{baseline}
baseline = sorted(sys.modules)
loaded_by = {{}}
for name in {modules!r}:
    before = set(sys.modules)
    importlib.import_module(name)
    loaded_by[name] = sorted(set(sys.modules) - before)
print(json.dumps({{"baseline": baseline, "loaded_by": loaded_by}}))
"""


def _needed_only_when_running(module: str) -> bool:
    return module in LOADED_ON_FIRST_USE or module.startswith(HOOK_MODULES_PREFIX)


@pytest.fixture(scope="module")
def imports() -> dict[str, Any]:
    """What the DAG-file baseline loads, then what each DAG-facing module loads on top, in one interpreter.

    A module already loaded by an earlier one is not listed again, so a heavy module is blamed on the
    first module that pulled it in: enough, since none of them may.
    """
    code = _PROBE.format(baseline=DAG_FILE_BASELINE, modules=DAG_FACING_MODULES)
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_every_operator_and_sensor_module_is_checked() -> None:
    assert "airflow_provider_pixxel.operators.base" in DAG_FACING_MODULES
    assert "airflow_provider_pixxel.sensors.base" in DAG_FACING_MODULES
    assert len(DAG_FACING_MODULES) >= 15


def test_the_baseline_loads_none_of_the_provider_modules_checked(imports: dict[str, Any]) -> None:
    # Otherwise the check below could not fail for them.
    own = [name for name in imports["baseline"] if _needed_only_when_running(name)]
    assert [name for name in own if name.startswith("airflow_provider_pixxel")] == []


@pytest.mark.parametrize("module", DAG_FACING_MODULES)
def test_importing_a_dag_facing_module_loads_nothing_only_a_running_task_needs(
    imports: dict[str, Any], module: str
) -> None:
    loaded = [name for name in imports["loaded_by"][module] if _needed_only_when_running(name)]
    assert loaded == [], f"importing {module} after `{DAG_FILE_BASELINE}` loaded {loaded}"
