"""Cluster policy of the deployments that ``make airflow`` and ``make test-deployment`` start.

Copied into ``$AIRFLOW_HOME/config``, where every Airflow process imports it while parsing DAGs:

* The daily-PNG example DAG catches up from 2025-02-01 once unpaused (``catchup=True``): against the
  simulator that is hundreds of runs of days without imagery. Here it is unpaused without catch-up, so
  the scheduler makes only the latest interval's run, and past days are run on purpose, through
  ``airflow backfill create`` (which is unaffected by ``catchup``).
* ``PIXXEL_DEPLOYMENT_RETRY_DELAY_SECONDS`` (when set) replaces the example DAGs' five-minute retry
  delay, so a retry after a killed worker comes within the test's time, the way a real deployment tunes
  it per DAG.
"""

from __future__ import annotations

import datetime
import os
import socket
from typing import Any

NO_CATCHUP_DAGS = frozenset({"pixxel_daily_index_png"})


def dag_policy(dag: Any) -> None:
    if dag.dag_id in NO_CATCHUP_DAGS:
        dag.catchup = False


def task_policy(task: Any) -> None:
    delay = os.environ.get("PIXXEL_DEPLOYMENT_RETRY_DELAY_SECONDS")
    if delay:
        task.retry_delay = datetime.timedelta(seconds=float(delay))


def deployment_hostname() -> str:
    """``[core] hostname_callable`` of the deployments: ``PIXXEL_DEPLOYMENT_HOSTNAME`` when set.

    The distributed deployment runs its two workers and two triggerers on one machine; each gets the
    name of the host it stands for, so task instances and triggerer jobs say which one ran them.
    """
    return os.environ.get("PIXXEL_DEPLOYMENT_HOSTNAME") or socket.getfqdn()
