"""Wait until a visualization has been computed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_pixxel.sensors.base import PixxelStatusSensor


class PixxelVisualizationSensor(PixxelStatusSensor):
    """Wait until a visualization of an AOI is computed (``GET /v0/aois/{aoi_id}/visualizations``).

    Succeeds on ``success`` (and on ``partial_success`` with ``allow_partial=True``); a ``failed``
    visualization fails the task with the API's reason (or skips it with ``soft_fail=True``). Works in
    poke, reschedule and deferrable mode; its XCom is ``{"aoi_id", "visualization_id", "status"}``.

    :param aoi_id: the AOI the visualization belongs to.
    :param visualization_id: the visualization to watch.

    Example::

        wait_for_ndvi = PixxelVisualizationSensor(
            task_id="wait_for_ndvi",
            aoi_id=AOI_ID,
            visualization_id="{{ ti.xcom_pull('ndvi', key='pixxel_ids')['visualization_id'] }}",
            deferrable=True,
        )
    """

    watch_kind = "visualization"
    id_fields: Sequence[str] = ("aoi_id", "visualization_id")
    template_fields: Sequence[str] = (*PixxelStatusSensor.template_fields, "aoi_id", "visualization_id")

    def __init__(self, *, aoi_id: str, visualization_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aoi_id = aoi_id
        self.visualization_id = visualization_id
