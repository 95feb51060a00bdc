from __future__ import annotations

import pytest

from airflow_provider_pixxel.compat import default_deferrable
from airflow_provider_pixxel.operators import PixxelRunJobOperator
from airflow_provider_pixxel.sensors import PixxelJobSensor


@pytest.mark.parametrize(("setting", "expected"), [("True", True), ("False", False)])
def test_deferrable_default_follows_the_config_when_the_task_is_built(monkeypatch, setting, expected):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", setting)
    assert default_deferrable() is expected
    assert PixxelRunJobOperator(task_id="job", workflow_id="wf").deferrable is expected
    assert PixxelJobSensor(task_id="wait", workflow_id="wf", job_id="j").deferrable is expected


def test_an_explicit_deferrable_wins_over_the_config(monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert PixxelRunJobOperator(task_id="job", workflow_id="wf", deferrable=False).deferrable is False
