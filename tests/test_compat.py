from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AIRFLOW_V_3_3_PLUS

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


@pytest.mark.skipif(
    AIRFLOW_V_3_3_PLUS, reason="the stand-in mixin is used only on Airflow < 3.3 (the floor CI leg runs this)"
)
def test_before_airflow_3_3_operators_run_one_try_and_warn_that_resume_needs_3_3(sim, caplog, capsys):
    from tests.task_runner import make_context, run_task

    op = PixxelRunJobOperator(
        task_id="job", workflow_id=next(iter(sim.state.workflows)), poll_interval=0.01, timeout=10
    )

    result = run_task(op, make_context()).result

    assert result["status"] == "completed"
    assert len(sim.state.created("job")) == 1
    # Airflow 3.1 task loggers write through structlog to the console rather than to caplog.
    captured = capsys.readouterr()
    assert "cannot reconnect" in caplog.text + captured.out + captured.err
