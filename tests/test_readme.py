"""README.md is the front page: short, its example DAG is real and runs, its links lead into the docs.

The operator reference that used to live here moved to docs/howto/ (tests/test_docs.py checks every public
class is documented there, and that every example on those pages is included from code that runs).
"""

from __future__ import annotations

import importlib.util
import json
import re
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.example_dags.dag_runner import airflow_db, run_dag
from tests.example_dags.outputs import assert_every_task_succeeded, sha256_of

__all__ = ["airflow_db"]  # the session fixture the end-to-end run below needs

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
EXAMPLE = REPO / "tests" / "docs" / "readme_dag.py"
MAX_LINES = 300
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def example_region() -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    body = text.split("# [START readme_example]\n", 1)[1].split("# [END readme_example]", 1)[0]
    return textwrap.dedent(body)


def test_readme_is_a_short_front_page() -> None:
    lines = readme().count("\n")
    assert lines <= MAX_LINES, (
        f"README.md has {lines} lines; move detail into a docs/ page (at most {MAX_LINES})"
    )


def test_readme_example_is_the_dag_that_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", readme(), re.DOTALL)
    assert blocks == [example_region()], (
        "README.md's Python example must be exactly the readme_example region of tests/docs/readme_dag.py "
        "(which the test below runs against the simulator): change both together"
    )


def test_readme_shows_no_other_code() -> None:
    # Shell commands stay inline (console blocks; the set-up commands' block is bash, which
    # tests/test_demo.py looks for); the one Python block is checked above.
    for info in re.findall(r"^```(\S*)", readme(), re.MULTILINE)[::2]:
        assert info in ("python", "console", "bash"), f"README.md has a ```{info} block"


def test_readme_names_the_commands() -> None:
    text = readme()
    for command in (
        "make demo",
        "make test",
        "make airflow",
        "make test-deployment",
        "make bench",
        "make chaos",
        "make docs",
    ):
        assert command in text, f"README.md does not mention {command}"


def test_readme_links_into_the_docs_resolve() -> None:
    links = re.findall(r"\]\(((?:docs/)[^)#]+)(?:#[^)]*)?\)", readme())
    assert len(links) >= 10, links
    for link in links:
        assert (REPO / link).is_file(), f"README.md links to {link}, which does not exist"


@pytest.mark.e2e
def test_readme_example_runs_against_the_simulator(
    sim: Any, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("readme_dag", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from airflow.sdk import DAG

    (dag,) = [value for value in vars(module).values() if isinstance(value, DAG)]
    # dag.test() finds the DAG through Airflow's DAG bundles: add this file's folder as a second bundle.
    bundles = [
        {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(REPO / "example_dags")}},
        {"name": "readme-example", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(EXAMPLE.parent)}},
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    download = dag.get_task("download")
    download.destination = str(tmp_path)
    for task in dag.tasks:
        task.retries = 0

    dag_run = run_dag(dag)

    assert_every_task_succeeded(dag_run)
    assert len(sim.state.created("order")) == 1
    # The purchased catalogs, downloaded as one zip that is whole and is what the simulator served.
    (archive,) = tmp_path.glob("*.zip")
    assert zipfile.is_zipfile(archive)
    assert dag_run.get_task_instance("download").xcom_pull()["sha256"] == sha256_of(archive)
