"""Settings and small helpers shared by the Pixxel example DAGs (this module defines no DAG).

Everything here is safe to import while a DAG file is parsed: no connection is read and no API is
called. The run-time helpers (``resolve_*``) are called from inside tasks only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from airflow_provider_pixxel.exceptions import PixxelConfigError

OWNER = "eo-data-engineering"
DEFAULT_ARGS: dict[str, Any] = {"owner": OWNER, "retries": 2, "retry_delay": timedelta(minutes=5)}


def poll_interval_seconds() -> float:
    """Seconds between status reads, from ``PIXXEL_EXAMPLE_POLL_INTERVAL`` (default 60).

    Not templatable (operators take a number when the DAG is built), so it comes from the
    environment: the demo sets 1 s, the tests a few milliseconds. A function, called by each DAG file
    when it is parsed: this module is imported once per process and would keep the first value.
    """
    return float(os.environ.get("PIXXEL_EXAMPLE_POLL_INTERVAL", "60"))


# Tasking takes days; downloads and jobs hours at most.
LONG_WAIT_SECONDS = 14 * 24 * 3600.0
SHORT_WAIT_SECONDS = 6 * 3600.0

OUTPUT_DIR = "/tmp/pixxel-examples"


# Smallholder farms east of Bengaluru: covered by the simulator's seeded TD1/TD2 archive scenes.
FIELD_AREA: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "bengaluru-east-farms"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[77.52, 12.92], [77.58, 12.92], [77.58, 12.98], [77.52, 12.98], [77.52, 12.92]]
                ],
            },
        }
    ],
}


# [START howto_run_date]
# Keys of the task context that only a run with a logical date has, and that are also filters.
_RUN_DATE_KEYS = ("ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz")


def run_date_template(key: str = "ds") -> str:
    """A template of the run's date like ``{{ ds }}`` (or ``ds_nodash``, ``ts``, ``ts_nodash``) that
    works in every run: the logical date when the run has one, else the time it was queued to run
    after (``run_after``), in the same form.

    Airflow 3 gives a manually triggered run no logical date unless one is asked for
    (``airflow dags trigger --logical-date``); a bare ``{{ ds }}`` then fails to render ('ds' is
    undefined). Airflow's filters of the same names format ``run_after`` the way the keys would.
    """
    if key not in _RUN_DATE_KEYS:
        raise ValueError(f"run_date_template takes one of {', '.join(_RUN_DATE_KEYS)}; got {key!r}")
    return f"{{{{ {key} if {key} is defined else dag_run.run_after | {key} }}}}"


# Use it wherever a template would say {{ ds }}. A TaskFlow task gets it as an argument: the
# arguments a task is called with are templated.
RUN_DATE = run_date_template("ds")
# [END howto_run_date]


def output_path(*parts: str) -> str:
    """A templated path under the ``output_dir`` param, partitioned by DAG and run date (``RUN_DATE``)."""
    return "/".join(("{{ params.output_dir }}", "{{ dag.dag_id }}", RUN_DATE, *parts))


def check_area(geojson: Any) -> dict[str, Any]:
    """Validate an AOI locally and describe it: the forms the API takes, its area and bounding box.

    :raises PixxelConfigError: naming the ring and position at fault.
    """
    from airflow_provider_pixxel.utils.geometry import (
        bbox,
        billed_area_km2,
        geometry_area_km2,
        normalize_aoi_geometry,
    )

    feature_collection = normalize_aoi_geometry(geojson, field="aoi_geojson", want="feature_collection")
    try:
        polygon: dict[str, Any] | None = normalize_aoi_geometry(geojson, field="aoi_geojson", want="polygon")
    except PixxelConfigError:
        polygon = None  # several polygons: fine for an order, not for one AOI
    return {
        "feature_collection": feature_collection,
        "polygon": polygon,
        "area_km2": round(geometry_area_km2(feature_collection), 3),
        "billed_area_km2": round(billed_area_km2(feature_collection), 3),
        "bbox": list(bbox(feature_collection)),
    }


def pick(records: Iterable[Mapping[str, Any]], wanted: str, what: str, *, id_key: str = "id") -> str:
    """The id of the record whose id or name is ``wanted`` (names compared case-insensitively)."""
    records = list(records)
    for record in records:
        if str(record.get(id_key)) == wanted:
            return wanted
    matches = [r for r in records if str(r.get("name") or "").lower() == wanted.strip().lower()]
    if len(matches) != 1:
        known = ", ".join(sorted(str(r.get("name")) for r in records)) or "none"
        found = "no" if not matches else f"{len(matches)}"
        raise PixxelConfigError(f"{found} {what} named or with id {wanted!r}; known: {known}")
    return str(matches[0][id_key])


def resolve_project(hook: Any, wanted: str | None) -> str:
    """A project id from an id, a name, or (when empty) the connection's ``project_id`` extra."""
    if not wanted:
        return str(hook.resolve_project_id(None))
    return pick(hook.iter_projects(), wanted, "project")
