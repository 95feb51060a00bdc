"""Workflow job: run a saved Aurora workflow within a budget and download what it produced.

Check the workflow's cost estimate against ``max_cost``, run it as a job, wait for it, then download the
job's package and each of its tasks' outputs (one mapped task per job task).
"""

from __future__ import annotations

import json
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from pixxel_example_settings import (
    DEFAULT_ARGS,
    OUTPUT_DIR,
    RUN_DATE,
    SHORT_WAIT_SECONDS,
    output_path,
    pick,
    poll_interval_seconds,
)

from airflow_provider_pixxel.operators import (
    PixxelDownloadJobOperator,
    PixxelDownloadTaskOperator,
    PixxelRunJobOperator,
)

POLL_INTERVAL_SECONDS = poll_interval_seconds()  # read each time this file is parsed

WORKFLOW_ID = "{{ ti.xcom_pull(task_ids='run_job')['workflow_id'] }}"
JOB_ID = "{{ ti.xcom_pull(task_ids='run_job')['job_id'] }}"

DOC_MD = """
### Workflow job

Runs a workflow saved in Aurora and collects its results:

1. **resolve_workflow** turns the `workflow` param (a name or an id) into the workflow's id.
2. **run_job** reads the workflow's cost estimate, logs it and fails, having created nothing, when it
   is above `max_cost`; then it runs the workflow as a job and waits until it ends (deferrable: in the
   triggerer). The job id survives task retries, so a retry reconnects instead of paying twice; a job
   that fails names each failed task and its error.
3. **download_job_package** fetches the job's zip (inputs and outputs); **download_task_outputs** is
   mapped over the job's tasks and fetches each task's zip. Every file is SHA-256 checked and written
   atomically under `output_dir/<dag_id>/<ds>/job/` and `.../tasks/`.
4. **summarize** writes `summary.json`: job, status, estimate, files with sizes and digests.

Run it on demand, e.g.
`airflow dags trigger pixxel_workflow_job -c '{"workflow": "field-boundaries-weekly", "max_cost": 150}'`.
"""

with DAG(
    dag_id="pixxel_workflow_job",
    description="Run a saved Aurora workflow within a budget; download the job and each task's output",
    doc_md=DOC_MD,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["pixxel", "example", "workflows", "jobs", "download"],
    params={
        "workflow": Param("ndvi-timeseries", type="string", minLength=1, description="workflow name or id"),
        "max_cost": Param(100, type="number", exclusiveMinimum=0, description="wallet tokens per run"),
        "output_dir": Param(OUTPUT_DIR, type="string", description="local path or object-storage URL"),
    },
) as dag:

    @task
    def resolve_workflow(params: dict[str, Any] | None = None) -> str:
        from airflow_provider_pixxel.hooks.pixxel import PixxelHook

        assert params is not None
        with PixxelHook() as hook:
            return pick(hook.iter_workflows(), params["workflow"], "workflow")

    # [START howto_operator_run_job]
    run_job = PixxelRunJobOperator(
        task_id="run_job",
        workflow_id=resolve_workflow(),
        max_cost="{{ params.max_cost }}",
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    )
    # [END howto_operator_run_job]
    # [START howto_operator_download_job]
    download_job_package = PixxelDownloadJobOperator(
        task_id="download_job_package",
        workflow_id=WORKFLOW_ID,
        job_id=JOB_ID,
        destination=output_path("job"),
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    )
    # [END howto_operator_download_job]

    # [START howto_operator_download_task]
    @task
    def job_task_ids(job: dict[str, Any]) -> list[str]:
        if not job["task_ids"]:
            raise ValueError(f"job {job['job_id']} reports no tasks: nothing to download per task")
        return list(job["task_ids"])

    download_task_outputs = PixxelDownloadTaskOperator.partial(
        task_id="download_task_outputs",
        workflow_id=WORKFLOW_ID,
        job_id=JOB_ID,
        destination=output_path("tasks"),
        poll_interval=POLL_INTERVAL_SECONDS,
        timeout=SHORT_WAIT_SECONDS,
    ).expand(job_task_id=job_task_ids(run_job.output))
    # [END howto_operator_download_task]

    @task
    def summarize(
        job: dict[str, Any],
        job_package: dict[str, Any],
        task_packages: list[dict[str, Any]],
        params: dict[str, Any] | None = None,
        run_date: str | None = None,
        dag: Any = None,
        dag_run: Any = None,
    ) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.download import resolve_destination, write_bytes_atomically

        assert params is not None
        summary = {
            "workflow_id": job["workflow_id"],
            "job_id": job["job_id"],
            "status": job["status"],
            "max_cost": params["max_cost"],
            "job_package": {key: job_package[key] for key in ("path", "size", "sha256")},
            "task_packages": [
                {"task_id": entry["task_id"], **{key: entry[key] for key in ("path", "size", "sha256")}}
                for entry in task_packages
            ],
        }
        target = resolve_destination(f"{params['output_dir']}/{dag.dag_id}/{run_date}", "summary.json")
        written = write_bytes_atomically(json.dumps(summary, indent=2).encode(), target)
        print(f"Summary written to {written.path}:\n{json.dumps(summary, indent=2)}")
        return summary

    summarize(run_job.output, download_job_package.output, download_task_outputs.output, run_date=RUN_DATE)

    run_job >> download_job_package
