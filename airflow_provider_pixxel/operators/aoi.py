"""Areas of interest: :class:`PixxelCreateAOIOperator` (``POST /v0/aois``, then wait until processed).

Finding the imagery an AOI is built from lives in :mod:`.images`, custom indices in :mod:`.indices`;
their operators are still importable from here, where they used to live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.links import PixxelAuroraAOILink
from airflow_provider_pixxel.operators.base import PixxelBaseOperator, PixxelResumableOperator
from airflow_provider_pixxel.operators.get_or_create import Existing, create_or_adopt
from airflow_provider_pixxel.utils.arguments import one_of, require_text, require_text_list
from airflow_provider_pixxel.utils.lazy_import import LazyExports, lazy_import

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_pixxel.utils import geometry
else:
    # Needed once the task runs, not while a DAG file is parsed (see utils/lazy_import.py).
    geometry = lazy_import("airflow_provider_pixxel.utils.geometry")

__all__ = ["PixxelCreateAOIOperator"]

#: What ``reuse_existing`` does with a same-named AOI of another geometry: fail the task, or adopt it.
GEOMETRY_MISMATCH_CHOICES = ("fail", "adopt")

# DAGs written before the split import these from here; they load their new module on first use, so a
# DAG that needs only the AOI operator does not pay for the others.
_MOVED = LazyExports(
    "airflow_provider_pixxel.operators",
    {
        "PixxelArchiveSearchOperator": "images",
        "PixxelSearchImagesOperator": "images",
        "PixxelCreateIndexOperator": "indices",
    },
)


def __getattr__(name: str) -> Any:
    return _MOVED.load(name)


class PixxelCreateAOIOperator(PixxelResumableOperator):
    """Create an AOI over a polygon from chosen images and wait until Pixxel has processed it.

    The geometry is checked and normalised (closed rings, RFC 7946 winding, one Polygon) before
    anything is sent. The AOI id is kept in ``task_state_store`` as soon as it exists, so a retried
    task reconnects to it instead of creating a second AOI. Returns ``{"aoi_id", "status"}``.

    AOI names are unique in a project: the API answers a duplicate with 409. With
    ``reuse_existing=True`` an AOI of this name in the project is adopted instead (returned and waited
    on as if created; see :mod:`~airflow_provider_pixxel.operators.get_or_create`), provided it covers
    the same area as ``geometry`` (compared as shapes). It keeps the images it was made from.

    :param name: AOI name (unique in its project).
    :param description: what the AOI is for.
    :param satellite_id: the satellite's UUID (``PixxelHook().list_satellites()``).
    :param provider: ``pixxel`` (TD, Firefly) or ``planetary`` (open data).
    :param geometry: a GeoJSON Polygon (or a Feature / one-feature collection holding one).
    :param item_ids: STAC item ids to include, e.g. the XCom of :class:`PixxelSearchImagesOperator`.
    :param project_id: the project; defaults to the connection's ``project_id`` extra.
    :param reuse_existing: adopt an AOI of this name in the project instead of failing.
    :param on_geometry_mismatch: when the AOI to adopt covers another area: ``"fail"`` (the default)
        fails the task naming both; ``"adopt"`` adopts it all the same, with a warning.

    Waiting (``wait_for_completion``, ``poll_interval``, ``timeout``, ``deferrable``,
    ``allow_partial`` for ``partial_success``) works as in every Pixxel waiting operator.

    Example::

        aoi = PixxelCreateAOIOperator(
            task_id="create_aoi",
            name="field-42",
            description="Field 42 monitoring",
            satellite_id=S2_SATELLITE_ID,
            provider="planetary",
            geometry=FIELD_POLYGON,
            item_ids=search.output,
            reuse_existing=True,  # every run after the first adopts the same AOI
            deferrable=True,
        )
    """

    operator_extra_links = (PixxelAuroraAOILink(),)
    watch_kind = "aoi"
    external_id_key = "pixxel_aoi_ids"
    template_fields: Sequence[str] = (
        *PixxelBaseOperator.template_fields,
        "name",
        "description",
        "satellite_id",
        "provider",
        "project_id",
        "geometry",
        "item_ids",
    )
    template_fields_renderers = {"geometry": "json", "item_ids": "json"}

    def __init__(
        self,
        *,
        name: str,
        description: str,
        satellite_id: str,
        provider: str,
        geometry: Any,
        item_ids: Sequence[str],
        project_id: str | None = None,
        reuse_existing: bool = False,
        on_geometry_mismatch: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.reuse_existing = reuse_existing
        self.on_geometry_mismatch = one_of(
            "on_geometry_mismatch", on_geometry_mismatch, GEOMETRY_MISMATCH_CHOICES, case="exact", quoted=True
        )
        self.name = name
        self.description = description
        self.satellite_id = satellite_id
        self.provider = provider
        self.geometry = geometry
        self.item_ids = item_ids
        self.project_id = project_id

    def build_request(self) -> dict[str, Any]:
        """The ``create_aoi`` arguments, checked; raises :class:`PixxelConfigError` before any request."""
        return {
            "name": require_text("name", self.name),
            "description": require_text("description", self.description),
            "satellite_id": require_text("satellite_id", self.satellite_id),
            "provider": require_text("provider", self.provider).lower(),
            "geometry": geometry.normalize_aoi_geometry(self.geometry, field="geometry", want="polygon"),
            "item_ids": require_text_list("item_ids", self.item_ids),
            "project_id": self.hook.resolve_project_id(
                None if self.project_id in (None, "") else require_text("project_id", self.project_id)
            ),
        }

    def lineage_outputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"aoi/{ids['aoi_id']}"]

    def start(self, context: Context) -> dict[str, str]:
        from airflow_provider_pixxel.hooks.reconcile import aoi_lookup, create_exactly_once

        request = self.build_request()
        aoi, adopted = create_or_adopt(
            self.log,
            self._existing(request),
            lambda: create_exactly_once(
                self.hook,
                lambda: self.hook.create_aoi(**request),
                aoi_lookup(self.hook, request["name"]),
                journal=self.creation_journal(context),
            ),
            reuse_existing=self.reuse_existing,
        )
        aoi_id = (aoi or {}).get("aoi_id")
        if not aoi_id:
            raise AirflowFailException(
                f"The API created AOI {request['name']!r} but returned no aoi_id: {aoi!r}"
            )
        if not adopted:
            self.log.info("Created AOI %s (%s), status %s", aoi_id, request["name"], aoi.get("status"))
        return {"aoi_id": str(aoi_id)}

    def _existing(self, request: Mapping[str, Any]) -> Existing:
        """The AOI of this name in this project, whose geometry must be the requested one."""
        name, project_id = request["name"], request["project_id"]

        def find(conflict: Any) -> list[Mapping[str, Any]]:
            # The name filter of GET /v0/aois matches parts of names too: the exact name is picked here.
            return [
                aoi
                for aoi in self.hook.iter_aois(aoi_name=name)
                if aoi.get("name") == name and aoi.get("project_id") == project_id
            ]

        def differences(aoi: Mapping[str, Any]) -> list[str]:
            if _same_area(aoi.get("geometry"), request["geometry"]):
                return []
            difference = (
                f"its geometry (bbox {_bbox_text(aoi.get('geometry'))}) is not the requested one "
                f"(bbox {_bbox_text(request['geometry'])})"
            )
            if self.on_geometry_mismatch == "adopt":
                self.log.warning(
                    "AOI %s (%s): %s; adopting it as on_geometry_mismatch='adopt' says",
                    aoi.get("aoi_id"),
                    name,
                    difference,
                )
                return []
            return [difference]

        return Existing.named(
            "AOI",
            name,
            where=f"in project {project_id}",
            rule="AOI names are unique in a project",
            find=find,
            differences=differences,
            mismatch_fix=(
                f"give this area another name than {name!r}, or set on_geometry_mismatch='adopt' to use "
                "the existing AOI as it is"
            ),
            id_field="aoi_id",
        )


def _same_area(existing: Any, requested: Mapping[str, Any]) -> bool:
    """Whether an AOI as the API lists it covers ``requested``; an unreadable geometry does not."""
    try:
        return geometry.same_area(existing, requested, first_field="the existing AOI's geometry")
    except PixxelConfigError:
        return False


def _bbox_text(value: Any) -> str:
    """``west,south,east,north`` of a geometry, or what was there when it is not one."""
    try:
        return ",".join(f"{edge:.6f}" for edge in geometry.bbox(value))
    except PixxelConfigError:
        return f"unreadable: {value!r:.80}"
