"""Run an insight (one processing block over an AOI), and delete insights.

An insight's ``input`` is a list of the block's own input descriptions, each with a value added.
:func:`build_insight_input` builds that list from the block's spec and a plain
``{input name: value}`` dict, so a DAG does not have to copy the spec by hand. Insights cost tokens:
the operator asks for an estimate first (``estimate=true``) and refuses to run above ``max_cost``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelError
from airflow_provider_pixxel.links import PixxelAuroraInsightLink
from airflow_provider_pixxel.operators.base import (
    PixxelBaseOperator,
    PixxelResumableOperator,
    check_max_cost,
    refuse_above_max_cost,
)
from airflow_provider_pixxel.operators.purchase import BUDGET_TEMPLATE_FIELDS, PixxelPurchaseMixin
from airflow_provider_pixxel.utils.arguments import non_empty_list, require_text
from airflow_provider_pixxel.utils.dates import iso_date, rfc3339

if TYPE_CHECKING:
    from airflow.sdk import Context

# Keys a caller may give for one raster input instead of a plain value.
RASTER_VALUE_KEYS = frozenset({"value", "stac_url", "asset_source"})


def _block_spec(block_version: Any) -> Mapping[str, Any]:
    """The ``spec`` of a ``get_block_version`` answer (a BlockSpecItem, or ``{"blocks": [item]}``)."""
    item = block_version
    if isinstance(item, Mapping) and isinstance(item.get("blocks"), list) and item["blocks"]:
        item = item["blocks"][0]
    spec = item.get("spec") if isinstance(item, Mapping) else None
    if not isinstance(spec, Mapping) or not isinstance(spec.get("inputs"), list):
        raise PixxelError("the block's description from the API has no spec.inputs list to build input from")
    return spec


def _input_value(name: str, value: Any) -> str:
    # The API wants every value as a string; its "type" says how to read it (the block's input spec).
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return rfc3339(value, field=f"input_values[{name!r}]")
    if isinstance(value, date):
        return iso_date(value, field=f"input_values[{name!r}]")
    if isinstance(value, (str, int, float)):
        return str(value)
    raise PixxelConfigError(
        f"input_values[{name!r}] must be a string, number, boolean or date, or for a raster a dict with "
        f"{', '.join(sorted(RASTER_VALUE_KEYS))}; got {type(value).__name__}"
    )


def build_insight_input(block_version: Any, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``input`` list of ``create_insights`` from a block's spec and ``{input name: value}``.

    Each input of the block's ``spec.inputs`` is copied unchanged and given its value: ``value`` (a
    string; numbers, booleans and dates are converted) or, for rasters, a dict of ``stac_url``,
    ``asset_source`` and/or ``value``. Every input of the block needs a value, and every value must
    name an input of the block; both mistakes are refused with the names the block expects.

    :param block_version: the answer of ``PixxelHook.get_block_version(name, version)``.
    :param values: the value of each input, by input name.
    """
    if not isinstance(values, Mapping):
        raise PixxelConfigError(
            f"input_values must be a dict of input name to value, got {type(values).__name__}"
        )
    spec = _block_spec(block_version)
    block = f"{spec.get('name')} {spec.get('version')}"
    inputs = [item for item in spec["inputs"] if isinstance(item, Mapping) and item.get("name")]
    expected = [str(item["name"]) for item in inputs]
    unknown = sorted(set(values) - set(expected))
    missing = [name for name in expected if name not in values]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"unknown input(s) {', '.join(unknown)}")
        if missing:
            problems.append(f"no value for {', '.join(missing)}")
        raise PixxelConfigError(
            f"input_values do not match block {block}: {'; '.join(problems)}. "
            f"The block's inputs are: {', '.join(expected)}"
        )
    built: list[dict[str, Any]] = []
    for item in inputs:
        name = str(item["name"])
        value = values[name]
        entry = dict(item)
        if isinstance(value, Mapping):
            extra = sorted(set(value) - RASTER_VALUE_KEYS)
            if extra or not value:
                raise PixxelConfigError(
                    f"input_values[{name!r}] may only hold {', '.join(sorted(RASTER_VALUE_KEYS))}; "
                    f"got {', '.join(extra) or 'an empty dict'}"
                )
            entry.update({key: val for key, val in value.items() if key != "value"})
            if "value" in value:
                entry["value"] = _input_value(name, value["value"])
        else:
            entry["value"] = _input_value(name, value)
        built.append(entry)
    return built


def _resolve_block(block: Any, block_name: Any, block_version: Any) -> dict[str, str]:
    if block is not None and (block_name is not None or block_version is not None):
        raise PixxelConfigError(
            "give either block={'name': ..., 'version': ...} or block_name and block_version, not both"
        )
    if block is not None:
        if not isinstance(block, Mapping):
            raise PixxelConfigError(f"block must be a dict with name and version, got {type(block).__name__}")
        block_name, block_version = block.get("name"), block.get("version")
    hint = "list blocks with PixxelHook.list_blocks(mode='insight')"
    return {
        "name": require_text("block name", block_name, hint=hint),
        "version": require_text(
            "block version", block_version, hint="see PixxelHook.get_block_versions(name)"
        ),
    }


def _check_metadata(metadata: Any) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()
    ):
        raise PixxelConfigError(
            f"metadata must be a dict of strings to strings (the API's map<string,string>), got {metadata!r}"
        )
    return dict(metadata)


def _check_input(input: Any) -> list[dict[str, Any]]:
    entries = non_empty_list(
        "input",
        input,
        of="input objects",
        hint="the block's spec.inputs entries, each with a value; or pass input_values to have it built "
        "from the block's spec",
    )
    if not all(isinstance(item, Mapping) for item in entries):
        raise PixxelConfigError("every entry of input must be a dict (one input object of the block)")
    return [dict(item) for item in entries]


class PixxelCreateInsightsOperator(PixxelResumableOperator, PixxelPurchaseMixin):
    """Run a processing block over an AOI as an insight, after checking its price, and wait for it.

    ``input`` is either given whole (the block's ``spec.inputs`` entries with values added)
    or built from ``input_values`` (``{input name: value}``) and the block's spec, which the
    operator reads with ``get_block_version``; unknown or missing input names fail before anything is
    sent to be run. The price is asked first (``estimate=true``), logged, and compared with
    ``max_cost`` and, with a budget (``budget_tokens``), with what the project has left this period;
    with ``pixxel_dry_run`` on, the estimate is pushed to XCom and the task skipped. The insight's
    metadata records the task that ran it (``airflow_dag_id``, ``airflow_task_id``,
    ``airflow_run_id``) for ``pixxel-spend``. The insight's ids are stored in ``task_state_store`` as
    soon as it exists, so a retry reconnects to it instead of paying again.
    Killing the task deletes the insight (``stop_on_kill=True``, the default), in the worker or, when
    deferred, in the triggerer.

    Returns ``{"aoi_id", "insight_id", "status"}``.

    .. code-block:: python

        crops = PixxelCreateInsightsOperator(
            task_id="crop_classification",
            aoi_id="{{ ti.xcom_pull('create_aoi')['aoi_id'] }}",
            block_name="cropclassification",
            block_version="1.1.0",
            input_values={
                "input_image": {
                    "stac_url": "https://stac.pixxel.space/collections/pixxel-td2/items/TD2_...",
                    "asset_source": {"id": "asset_12345", "type": "raw_mosaic"},
                },
                "start_date": "2024-01-01",
                "end_date": "2024-03-01",
            },
            name="crops-{{ ds }}",
            max_cost=500,
            deferrable=True,
        )

    :param aoi_id: the AOI to run the insight on.
    :param block: ``{"name": ..., "version": ...}`` of the block to run; or use ``block_name`` and
        ``block_version``.
    :param input: the insight's ``input`` list as the API takes it; or use ``input_values``.
    :param input_values: ``{input name: value}``, turned into ``input`` with :func:`build_insight_input`.
    :param name: a title for the insight.
    :param project_id: the project; defaults to the connection's ``project_id`` (deleting needs one).
    :param metadata: string key/value pairs kept with the insight.
    :param max_cost: the most tokens the insight may cost; unset: no limit (the estimate is logged).
    :param budget_tokens, budget_period: the project's spend budget across runs, see
        :class:`~airflow_provider_pixxel.operators.purchase.PixxelPurchaseMixin`.
    :param stop_on_kill: delete the insight when the task is killed (default True).
    :param wait_for_completion, poll_interval, timeout, deferrable, allow_partial: see
        :class:`~airflow_provider_pixxel.operators.base.PixxelWaitingOperator`.
    """

    operator_extra_links = (PixxelAuroraInsightLink(),)
    watch_kind = "insight"
    external_id_key = "pixxel_insight"
    template_fields: Sequence[str] = (
        *PixxelResumableOperator.template_fields,
        "aoi_id",
        "block",
        "block_name",
        "block_version",
        "input",
        "input_values",
        "name",
        "project_id",
        "metadata",
        "max_cost",
        *BUDGET_TEMPLATE_FIELDS,
    )
    template_fields_renderers = {"block": "json", "input": "json", "input_values": "json", "metadata": "json"}

    def __init__(
        self,
        *,
        aoi_id: str,
        block: Mapping[str, str] | None = None,
        block_name: str | None = None,
        block_version: str | None = None,
        input: Sequence[Mapping[str, Any]] | None = None,
        input_values: Mapping[str, Any] | None = None,
        name: str | None = None,
        project_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        max_cost: float | None = None,
        stop_on_kill: bool = True,
        budget_tokens: int | str | None = None,
        budget_period: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.budget_tokens = budget_tokens
        self.budget_period = budget_period
        self.aoi_id = aoi_id
        self.block = block
        self.block_name = block_name
        self.block_version = block_version
        self.input = input
        self.input_values = input_values
        self.name = name
        self.project_id = project_id
        self.metadata = metadata
        self.max_cost = max_cost
        self.stop_on_kill = stop_on_kill

    def _checked_arguments(self) -> tuple[str, dict[str, str], dict[str, str] | None, float | None]:
        aoi_id = require_text("aoi_id", self.aoi_id, hint="the id of the AOI to run the insight on")
        block = _resolve_block(self.block, self.block_name, self.block_version)
        if (self.input is None) == (self.input_values is None):
            raise PixxelConfigError(
                "give exactly one of input (the API's input list) or input_values ({input name: value}, "
                "built into input from the block's spec)"
            )
        if self.input is not None:
            _check_input(self.input)
        elif not isinstance(self.input_values, Mapping) or not self.input_values:
            raise PixxelConfigError(
                f"input_values must be a non-empty dict of input name to value, got {self.input_values!r}"
            )
        if self.project_id is not None:
            require_text("project_id", self.project_id, hint="or leave it unset to use the connection's")
        return aoi_id, block, _check_metadata(self.metadata), check_max_cost(self.max_cost)

    def execute(self, context: Context) -> Any:
        # Every argument is checked before the first request, reconnect reads included.
        self._checked_arguments()
        self.budget()
        return super().execute(context)

    def lineage_inputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"aoi/{ids['aoi_id']}"]

    def lineage_outputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"aoi/{ids['aoi_id']}/insight/{ids['insight_id']}"]

    def start(self, context: Context) -> dict[str, str]:
        aoi_id, block, metadata, max_cost = self._checked_arguments()
        if self.input is not None:
            insight_input = _check_input(self.input)
        else:
            assert self.input_values is not None  # checked above
            insight_input = build_insight_input(
                self.hook.get_block_version(block["name"], block["version"]), self.input_values
            )
        request: dict[str, Any] = {
            "block": block,
            "input": insight_input,
            "name": self.name,
            "project_id": self.project_id,
            "metadata": metadata,
        }
        estimate = self.hook.create_insights(aoi_id, estimate=True, **request)
        price = estimate.get("estimate") if isinstance(estimate, Mapping) else None
        self.log.info(
            "Insight %s %s on AOI %s is estimated to cost %s tokens (max_cost=%s)",
            block["name"],
            block["version"],
            aoi_id,
            price,
            max_cost,
        )
        subject = f"insight {block['name']} {block['version']} on AOI {aoi_id}"
        amount = refuse_above_max_cost(price, max_cost, subject=subject, consequence="it was not run")
        project_id = self.project_id or self.hook.settings.project_id
        self.before_purchase(context, amount, subject=subject, project_ids=[project_id] if project_id else [])
        attribution = self.attribution(context)
        if attribution is not None:
            # The caller's own metadata keys win: the mark is added, never put over what was set.
            request["metadata"] = {**attribution.metadata(), **(metadata or {})}
        from airflow_provider_pixxel.hooks.reconcile import create_exactly_once, insight_lookup

        created = create_exactly_once(
            self.hook,
            lambda: self.hook.create_insights(aoi_id, **request),
            insight_lookup(self.hook, aoi_id, name=self.name, block_name=block["name"]),
            journal=self.creation_journal(context),
        )
        insight_id = created.get("id") if isinstance(created, Mapping) else None
        if not insight_id:
            raise PixxelError(
                f"the API answered the insight creation on AOI {aoi_id} without an insight id; look for it "
                f"with list_insights({aoi_id!r}) before running again"
            )
        self.log.info("Created insight %s on AOI %s", insight_id, aoi_id)
        return {"aoi_id": aoi_id, "insight_id": str(insight_id)}

    def project_id_for_stop(self) -> str | None:
        return self.project_id

    def stop_remote_work(self, ids: Mapping[str, str]) -> None:
        try:
            self.hook.delete_insights(ids["aoi_id"], ids["insight_id"], project_id=self.project_id)
        except PixxelError as error:
            self.log.error(
                "Could not delete insight %s after the task was killed: %s", ids["insight_id"], error
            )
            return
        self.log.info("Deleted insight %s after the task was killed", ids["insight_id"])

    def finish(self, context: Context, ids: Mapping[str, str], event: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "aoi_id": ids["aoi_id"],
            "insight_id": ids["insight_id"],
            "status": event.get("remote_status"),
        }


class PixxelDeleteInsightsOperator(PixxelBaseOperator):
    """Delete an insight from an AOI.

    Returns ``{"aoi_id", "insight_id", "deleted": True}``.

    .. code-block:: python

        PixxelDeleteInsightsOperator(
            task_id="delete_crops",
            aoi_id="{{ ti.xcom_pull('crop_classification')['aoi_id'] }}",
            insight_id="{{ ti.xcom_pull('crop_classification')['insight_id'] }}",
        )

    :param aoi_id: the AOI the insight was run on.
    :param insight_id: the insight to delete.
    :param project_id: the AOI's project; defaults to the connection's ``project_id``.
    """

    template_fields: Sequence[str] = (
        *PixxelBaseOperator.template_fields,
        "aoi_id",
        "insight_id",
        "project_id",
    )

    def __init__(self, *, aoi_id: str, insight_id: str, project_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aoi_id = aoi_id
        self.insight_id = insight_id
        self.project_id = project_id

    def execute(self, context: Context) -> dict[str, Any]:
        aoi_id = require_text("aoi_id", self.aoi_id, hint="the AOI the insight was run on")
        insight_id = require_text("insight_id", self.insight_id, hint="the id create_insights returned")
        if self.project_id is not None:
            require_text("project_id", self.project_id, hint="or leave it unset to use the connection's")
        self.hook.delete_insights(aoi_id, insight_id, project_id=self.project_id)
        self.log.info("Deleted insight %s of AOI %s", insight_id, aoi_id)
        return {"aoi_id": aoi_id, "insight_id": insight_id, "deleted": True}
