"""Every file in example_dags/ parses cleanly, touches no connection while parsed, and is documented."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.models.dagbag import DagBag
from airflow.sdk import BaseHook

from tests.example_dags.dag_runner import EXAMPLE_DAGS
from tests.example_dags.outputs import put_dags_folder_on_sys_path

DAG_FILES = sorted(
    p.name for p in EXAMPLE_DAGS.glob("*.py") if "DAG(" in p.read_text() or "@dag" in p.read_text()
)


def _refuse_connections(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"BaseHook.get_connection{args} was called while parsing a DAG file")


@pytest.fixture(scope="module")
def dag_bag() -> DagBag:
    put_dags_folder_on_sys_path()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseHook, "get_connection", classmethod(_refuse_connections))
        return DagBag(dag_folder=str(EXAMPLE_DAGS))


def test_there_are_example_dags() -> None:
    assert "pixxel_tasking_to_delivery.py" in DAG_FILES


def test_every_file_imports_without_errors_or_connection_reads(dag_bag: DagBag) -> None:
    assert dag_bag.import_errors == {}


@pytest.mark.parametrize("file_name", DAG_FILES)
def test_each_dag_file_defines_a_documented_owned_tagged_dag(dag_bag: DagBag, file_name: str) -> None:
    dags = [d for d in dag_bag.dags.values() if d.fileloc.endswith(f"/{file_name}")]
    assert dags, f"{file_name} defines no DAG"
    for dag in dags:
        assert dag.tags, f"{dag.dag_id} has no tags"
        assert dag.doc_md, f"{dag.dag_id} has no doc_md"
        assert len(dag.doc_md.strip()) > 80, f"{dag.dag_id}'s doc_md says next to nothing"
        owners = {task.owner for task in dag.tasks}
        assert all(owners), f"{dag.dag_id} has tasks without an owner"
        assert "airflow" not in owners, f"{dag.dag_id} tasks keep Airflow's default owner: {owners}"
