"""Setting up what a benchmark measures, through the simulator's API with a plain ``requests``
session (so the set-up never depends on the code under test)."""

from __future__ import annotations

import time
from typing import Any

from benchmarks._common import api_session

SETUP_TIMEOUT_SECONDS = 60.0


def first_workflow(base_url: str, session: Any) -> dict[str, Any]:
    response = session.get(f"{base_url}/v0/workflows", timeout=30)
    response.raise_for_status()
    workflow: dict[str, Any] = response.json()["workflows"][0]
    return workflow


def create_jobs(base_url: str, count: int) -> tuple[str, list[str], int]:
    """``count`` new jobs of the first seeded workflow: (workflow id, job ids, tasks per job)."""
    session = api_session()
    workflow = first_workflow(base_url, session)
    job_ids, tasks = [], 0
    for _ in range(count):
        response = session.post(
            f"{base_url}/v0/workflows/{workflow['id']}/jobs",
            params={"project_id": workflow["project_id"]},
            timeout=30,
        )
        response.raise_for_status()
        job = response.json()
        job_ids.append(job["id"])
        tasks = len(job.get("tasks") or [])
    return workflow["id"], job_ids, tasks


def package_url(base_url: str) -> str:
    """The signed URL of a finished job's download package (the simulator must run at ``speed=0``)."""
    session = api_session()
    workflow_id, (job_id,), _ = create_jobs(base_url, 1)
    job_url = f"{base_url}/v0/workflows/{workflow_id}/jobs/{job_id}"
    deadline = time.monotonic() + SETUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if session.get(job_url, timeout=30).json().get("status") == "completed":
            break
        time.sleep(0.05)
    while time.monotonic() < deadline:
        response = session.put(f"{job_url}/download", timeout=30)
        response.raise_for_status()
        url: str = response.json().get("signed_url") or ""
        if url:
            return url
        time.sleep(0.05)
    raise RuntimeError("the simulator did not produce a signed package URL in time")
