"""The provider's error classes: what Airflow makes of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import (
    PixxelApiError,
    PixxelConfigError,
    PixxelError,
    PixxelTransportError,
    PixxelValidationError,
    api_error_class,
)
from tests.example_dags.dag_runner import airflow_db, load_dag_in_own_bundle, run_dag

__all__ = ["airflow_db"]

AOIS_URL = "https://api.pixxel.space/v0/aois"


def test_bad_input_fails_the_task_at_once_while_api_trouble_may_be_retried() -> None:
    bad_input = PixxelConfigError("aoi_geojson: not a polygon")
    assert isinstance(bad_input, AirflowFailException)
    assert isinstance(bad_input, PixxelError)
    # Callers that validate values catch ValueError; that keeps working.
    assert isinstance(bad_input, ValueError)
    for transient in (
        PixxelTransportError("reset", method="GET", url=AOIS_URL, request_sent=True),
        PixxelApiError(status=503, method="GET", url=AOIS_URL),
    ):
        assert not isinstance(transient, AirflowFailException)


def test_api_error_classes_by_status() -> None:
    assert api_error_class(409) is PixxelValidationError
    assert api_error_class(503) is PixxelApiError


_BAD_INPUT_DAG = """
import datetime

from airflow.sdk import DAG

from airflow_provider_pixxel.operators import PixxelCreateAOIOperator

with DAG("pixxel_bad_input_not_retried", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
    PixxelCreateAOIOperator(
        task_id="create_aoi",
        name="field",
        description="a point is not an area",
        satellite_id="sat-1",
        provider="pixxel",
        geometry={"type": "Point", "coordinates": [77.5, 12.9]},
        item_ids=["item-1"],
        retries=3,
        retry_delay=datetime.timedelta(0),
    )
"""


@pytest.mark.e2e
def test_a_task_with_bad_input_is_not_retried(
    sim: Any, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = load_dag_in_own_bundle(_BAD_INPUT_DAG, tmp_path, monkeypatch)

    dag_run = run_dag(dag)

    (ti,) = dag_run.get_task_instances()
    assert str(ti.state) == "failed"
    assert ti.try_number == 1, "a retry cannot fix bad input; the task must fail on its first try"
    assert not [r for r in sim.state.requests() if r.method == "POST"], "nothing may be sent"
