"""Benchmark 2: waiting at scale.

1,000 :class:`~airflow_provider_pixxel.triggers.status.PixxelStatusTrigger` runs in one asyncio event
loop, as Airflow's triggerer runs them, each polling a simulator job every few seconds until the job
completes: peak RSS, CPU seconds per poll, and how late polls run against their schedule (the time
from when a poll's sleep should have ended to when its request started). Compared with the same waits
as poke-mode sensors: one :class:`~airflow_provider_pixxel.sensors.jobs.PixxelJobSensor` process is
measured and multiplied (each poke-mode sensor holds a worker slot and a process for the whole wait).

    python -m benchmarks.bench_waiting [--triggers 1000] [--poll-interval 5] [--step-seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks._common import (
    Row,
    airflow_environment,
    cpu_seconds,
    current_rss_mib,
    emit,
    peak_rss_mib,
    percentile,
    pixxel_connection_json,
    python_worker,
    run_worker,
    simulator_process,
    worker_result,
)
from benchmarks.setup_api import create_jobs


class PollRecorder:
    """Wraps the async hook's one request method: when each poll started and ended, per hook.

    Each trigger run owns one hook, so consecutive requests of one hook are one trigger's polls.
    """

    def __init__(self, poll_interval: float) -> None:
        self.poll_interval = poll_interval
        self.lateness: list[float] = []
        self.latency: list[float] = []
        self.polls = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def install(self) -> None:
        from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook

        original = PixxelAsyncHook._send_once
        recorder = self

        async def timed(hook: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            previous_end = getattr(hook, "_bench_last_poll_end", None)
            if previous_end is not None:
                recorder.lateness.append(started - (previous_end + recorder.poll_interval))
            recorder.in_flight += 1
            recorder.max_in_flight = max(recorder.max_in_flight, recorder.in_flight)
            try:
                return await original(hook, *args, **kwargs)
            finally:
                recorder.in_flight -= 1
                ended = time.monotonic()
                recorder.latency.append(ended - started)
                hook._bench_last_poll_end = ended
                recorder.polls += 1

        PixxelAsyncHook._send_once = timed  # type: ignore[method-assign,assignment]


async def _run_triggers(triggers: list[Any], poll_interval: float) -> dict[str, int]:
    # Triggers reach a real triggerer at different times; start them spread over one poll interval.
    starts = random.Random(0)
    statuses: dict[str, int] = defaultdict(int)

    async def one(trigger: Any, delay: float) -> None:
        await asyncio.sleep(delay)
        async for event in trigger.run():
            statuses[event.payload["status"]] += 1
            return

    await asyncio.gather(*(one(trigger, starts.uniform(0, poll_interval)) for trigger in triggers))
    return dict(statuses)


def _work_triggers(jobs_file: str, poll_interval: float, wait_limit: float) -> None:
    from airflow_provider_pixxel.hooks.pixxel_async import PixxelAsyncHook  # noqa: F401
    from airflow_provider_pixxel.triggers.status import PixxelStatusTrigger

    jobs = json.loads(Path(jobs_file).read_text())
    recorder = PollRecorder(poll_interval)
    recorder.install()
    baseline_rss = current_rss_mib()
    deadline = time.time() + wait_limit
    triggers = [
        PixxelStatusTrigger(
            kind="job",
            ids={"workflow_id": jobs["workflow_id"], "job_id": job_id},
            poll_interval=poll_interval,
            deadline=deadline,
        )
        for job_id in jobs["job_ids"]
    ]
    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    statuses = asyncio.run(_run_triggers(triggers, poll_interval))
    cpu_used, wall = cpu_seconds() - cpu_before, time.monotonic() - wall_before
    worker_result(
        {
            "triggers": len(triggers),
            "statuses": statuses,
            "polls": recorder.polls,
            "cpu_seconds": cpu_used,
            "wall_seconds": wall,
            "baseline_rss_mib": baseline_rss,
            "peak_rss_mib": peak_rss_mib(),
            "lateness_p50": percentile(recorder.lateness, 0.5),
            "lateness_p99": percentile(recorder.lateness, 0.99),
            "lateness_max": max(recorder.lateness, default=float("nan")),
            "latency_p50": percentile(recorder.latency, 0.5),
            "latency_p99": percentile(recorder.latency, 0.99),
            "max_in_flight": recorder.max_in_flight,
        }
    )


def _work_sensor(jobs_file: str, poll_interval: float, wait_limit: float) -> None:
    from airflow_provider_pixxel.sensors.jobs import PixxelJobSensor

    jobs = json.loads(Path(jobs_file).read_text())
    sensor = PixxelJobSensor(
        task_id="wait_for_job",
        workflow_id=jobs["workflow_id"],
        job_id=jobs["job_ids"][0],
        mode="poke",
        deferrable=False,
        poke_interval=poll_interval,
        timeout=wait_limit,
    )
    baseline_rss = current_rss_mib()
    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    pokes = 0
    # What poke mode does for the whole wait: poke, sleep, poke... in one process.
    while True:
        pokes += 1
        if sensor.poke({}):
            break
        if time.monotonic() - wall_before > wait_limit:
            raise SystemExit("the sensor's job did not finish in time")
        time.sleep(poll_interval)
    worker_result(
        {
            "pokes": pokes,
            "cpu_seconds": cpu_seconds() - cpu_before,
            "wall_seconds": time.monotonic() - wall_before,
            "baseline_rss_mib": baseline_rss,
            "peak_rss_mib": peak_rss_mib(),
        }
    )


def measure(triggers: int, poll_interval: float, step_seconds: float) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="pixxel-bench-waiting-") as scratch,
        simulator_process(speed=step_seconds) as simulator,
    ):
        workflow_id, job_ids, tasks = create_jobs(simulator.base_url, triggers)
        jobs_file = os.path.join(scratch, "jobs.json")
        Path(jobs_file).write_text(json.dumps({"workflow_id": workflow_id, "job_ids": job_ids}))
        job_seconds = tasks * step_seconds
        wait_limit = job_seconds * 3 + 60
        # Each trigger with its own client and reads (batch_polling off): this benchmark times each
        # trigger's own polls; bench_batched_polling measures the shared poller side by side.
        connection = {
            **json.loads(pixxel_connection_json(simulator.base_url)),
            "extra": {"batch_polling": False},
        }
        env = airflow_environment({"AIRFLOW_CONN_PIXXEL_DEFAULT": json.dumps(connection)})
        arguments = [jobs_file, str(poll_interval), str(wait_limit)]
        trigger_run = run_worker(python_worker("bench_waiting", "--worker", "triggers", *arguments), env=env)
        # The sensor waits for a job of its own, created now, so it waits as long as the triggers did.
        workflow_id, job_ids, _ = create_jobs(simulator.base_url, 1)
        Path(jobs_file).write_text(json.dumps({"workflow_id": workflow_id, "job_ids": job_ids}))
        sensor_run = run_worker(python_worker("bench_waiting", "--worker", "sensor", *arguments), env=env)
    result, sensor = trigger_run.result, sensor_run.result
    polls = max(result["polls"], 1)
    trigger_peak = trigger_run.peak_rss_mib
    sensor_peak = sensor_run.peak_rss_mib
    sensors_total = sensor_peak * triggers
    per_trigger_kib = (trigger_peak - result["baseline_rss_mib"]) * 1024 / triggers
    trigger_cpu_per_poll = result["cpu_seconds"] / polls
    sensor_cpu_per_poke = sensor["cpu_seconds"] / max(sensor["pokes"], 1)
    finished = result["statuses"].get("success", 0)
    rows = [
        Row(
            "waiting",
            f"{triggers} triggers in one loop: jobs finished / polls / wall",
            f"{finished}/{triggers} / {polls} / {result['wall_seconds']:.0f} s",
        ),
        Row(
            "waiting",
            "triggerer process peak RSS (after imports; per trigger)",
            f"{trigger_peak:.0f} MiB ({result['baseline_rss_mib']:.0f} MiB; {per_trigger_kib:.0f} KiB)",
        ),
        Row("waiting", "CPU seconds per poll (trigger)", f"{trigger_cpu_per_poll * 1000:.2f} ms"),
        Row(
            "waiting",
            f"poll lateness vs schedule p50 / p99 / max (interval {poll_interval:g} s)",
            f"{result['lateness_p50'] * 1000:.0f} / {result['lateness_p99'] * 1000:.0f} / "
            f"{result['lateness_max'] * 1000:.0f} ms",
        ),
        Row(
            "waiting",
            "poll request latency p50 / p99",
            f"{result['latency_p50'] * 1000:.0f} / {result['latency_p99'] * 1000:.0f} ms",
        ),
        Row(
            "waiting",
            f"one poke-mode sensor process: peak RSS, CPU per poke ({sensor['pokes']} pokes)",
            f"{sensor_peak:.0f} MiB, {sensor_cpu_per_poke * 1000:.2f} ms",
        ),
        Row(
            "waiting",
            f"memory: {triggers} poke-mode sensors / {triggers} triggers",
            f"{sensors_total / 1024:.1f} GiB / {trigger_peak:.0f} MiB = {sensors_total / trigger_peak:.0f}x",
        ),
    ]
    emit(rows, triggers=result, sensor=sensor, job_seconds=job_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--worker", nargs=4, metavar=("KIND", "JOBS", "INTERVAL", "LIMIT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=5.0, help="seconds between polls")
    parser.add_argument(
        "--step-seconds", type=float, default=15.0, help="simulator seconds per job status step"
    )
    args = parser.parse_args()
    if args.worker:
        kind, jobs_file, interval, limit = args.worker
        work = {"triggers": _work_triggers, "sensor": _work_sensor}[kind]
        work(jobs_file, float(interval), float(limit))
        return
    measure(args.triggers, args.poll_interval, args.step_seconds)


if __name__ == "__main__":
    main()
