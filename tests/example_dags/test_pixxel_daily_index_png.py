"""The daily index PNG example DAG, one logical date at a time, against the simulator.

``airflow backfill create`` needs a running scheduler to execute its runs, so the per-day behaviour a
backfill relies on is tested here with ``dag.test(logical_date=...)``: each day its own partition, a
day without an image of its own, and a re-run day overwritten atomically. A manual run without a
logical date (``dag.test(logical_date=None)``, as ``airflow dags trigger`` without ``--logical-date``)
renders for the date it runs.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from tests.example_dags.dag_runner import run_dag, task_states
from tests.example_dags.outputs import (
    assert_every_task_succeeded,
    assert_png,
    load_example_dag,
    set_example_connections,
    sha256_of,
)

pytestmark = pytest.mark.e2e

DAG_ID = "pixxel_daily_index_png"


def day(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(f"{text}T00:00:00+00:00")


def seeded_visualization(sim: Any) -> dict[str, Any]:
    (visualization,) = [v for v in sim.state.visualizations.values() if v.get("seeded")]
    return visualization


def served_png_sha256(sim: Any, image_date: str) -> str:
    """The digest of the PNG the simulator renders for ``image_date``, fetched directly."""
    import hashlib

    from airflow_provider_pixxel.hooks.pixxel import PixxelHook

    visualization = seeded_visualization(sim)
    with PixxelHook() as hook:
        content = hook.generate_index_png(
            visualization["aoi_id"],
            visualization["id"],
            index_id=visualization["index_id"],
            date=image_date.replace("-", "_"),
            visualization_mode="dynamic",
        )
    return hashlib.sha256(content).hexdigest()


def assert_sidecar_matches(path: Path) -> None:
    """``<file>.sha256`` (``sha256sum`` format) names the file and holds the digest of its bytes."""
    digest, name = (path.parent / f"{path.name}.sha256").read_text().split()
    assert (digest, name) == (sha256_of(path), path.name)


def check_partition(sim: Any, tmp_path: Path, ds: str, image_date: str) -> dict[str, Any]:
    partition = tmp_path / DAG_ID / seeded_visualization(sim)["id"] / ds
    manifest = json.loads((partition / "manifest.json").read_text())
    assert (manifest["ds"], manifest["image_date"]) == (ds, image_date)
    assert manifest["png"]["image_date"] == image_date <= ds
    png = Path(manifest["png"]["path"])
    assert png == partition / "ndvi.png"
    assert_png(png, manifest["png"]["sha256"])
    assert_sidecar_matches(png)
    assert manifest["png"]["sha256"] == served_png_sha256(sim, image_date)
    assert sorted(Path(f["path"]).name for f in manifest["sld"]) == [
        "ndvi_dynamic.sld",
        "ndvi_theoretical.sld",
    ]
    for entry in manifest["sld"]:
        assert entry["date"] == image_date.replace("-", "_")
        assert sha256_of(Path(entry["path"])) == entry["sha256"]
        assert_sidecar_matches(Path(entry["path"]))
        assert b"StyledLayerDescriptor" in Path(entry["path"]).read_bytes()
    assert not list(partition.glob("*.part")), "a temporary file was left behind"
    return manifest


def test_a_day_without_its_own_image_renders_the_newest_earlier_one_within_the_age_limit(
    sim: Any, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deferrable_mode: bool
) -> None:
    # The DAG has no waits today; both modes run so one added later is covered either way.
    set_example_connections(sim, monkeypatch)
    dag = load_example_dag("pixxel_daily_index_png.py")

    # No age limit: any earlier image will do (also what lets this conf render a run dated today).
    dag_run = run_dag(
        dag,
        logical_date=day("2025-03-04"),
        run_conf={"output_dir": str(tmp_path), "max_image_age_days": None},
    )

    assert_every_task_succeeded(dag_run)
    check_partition(sim, tmp_path, "2025-03-04", "2025-03-02")
    png_requests = len(sim.state.requests("POST", "/v0/aois/*/visualizations/*/png"))

    # With a limit of 7 days (the default), 2025-03-20 is 18 days after the newest image: skipped, not failed.
    dag_run = run_dag(
        dag,
        logical_date=day("2025-03-20"),
        run_conf={"output_dir": str(tmp_path), "max_image_age_days": 7},
    )

    # Only finding the visualization ran; everything that renders or writes was skipped.
    states = task_states(dag_run)
    assert states == {
        "find_visualization": "success",
        "render_png": "skipped",
        "write_sld": "skipped",
        "write_manifest": "skipped",
    }, states
    assert str(dag_run.state) == "success"
    assert not (tmp_path / DAG_ID / seeded_visualization(sim)["id"] / "2025-03-20").exists()
    assert len(sim.state.requests("POST", "/v0/aois/*/visualizations/*/png")) == png_requests


def test_each_logical_date_gets_its_own_partition_and_a_rerun_overwrites_it_atomically(
    sim: Any, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_example_connections(sim, monkeypatch)
    dag = load_example_dag("pixxel_daily_index_png.py")

    for ds in ("2025-02-05", "2025-03-02"):
        assert_every_task_succeeded(
            run_dag(dag, logical_date=day(ds), run_conf={"output_dir": str(tmp_path)})
        )
    first = check_partition(sim, tmp_path, "2025-02-05", "2025-02-05")
    second = check_partition(sim, tmp_path, "2025-03-02", "2025-03-02")
    assert first["png"]["sha256"] != second["png"]["sha256"]
    partitions = sorted(p.name for p in (tmp_path / DAG_ID / seeded_visualization(sim)["id"]).iterdir())
    assert partitions == ["2025-02-05", "2025-03-02"]

    # Re-run one day over a damaged file: the file is replaced whole (a new inode), never edited in place.
    png = Path(second["png"]["path"])
    png.write_bytes(b"not a png")
    damaged_inode = png.stat().st_ino
    dag_run = run_dag(dag, logical_date=day("2025-03-02"), run_conf={"output_dir": str(tmp_path)})

    assert_every_task_succeeded(dag_run)
    rerun = check_partition(sim, tmp_path, "2025-03-02", "2025-03-02")
    assert rerun["png"] == second["png"]
    assert png.stat().st_ino != damaged_inode
    assert len(sim.state.requests("POST", "/v0/aois/*/visualizations/*/png")) == 3 + 3  # runs + checks


def test_a_run_without_logical_date_renders_for_the_day_it_runs(
    sim: Any, airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``airflow dags trigger`` without ``--logical-date``: no ``ds`` in the context, yet the run works."""
    set_example_connections(sim, monkeypatch)
    dag = load_example_dag("pixxel_daily_index_png.py")
    run_after = datetime.datetime(2025, 3, 6, 15, 30, tzinfo=datetime.timezone.utc)

    dag_run = run_dag(
        dag,
        logical_date=None,
        run_after=run_after,
        run_conf={"output_dir": str(tmp_path), "max_image_age_days": None},
    )

    assert dag_run.logical_date is None
    assert_every_task_succeeded(dag_run)
    # Partitioned by the date it ran, rendering the newest image on or before it.
    check_partition(sim, tmp_path, "2025-03-06", "2025-03-02")
