"""Buy imagery: tasking (new captures) and archive order items, priced before anything is bought.

:class:`PixxelCreateOrderOperator` checks every order item locally (geometry, tasking window, required
fields, enums), prices the order with a dry run (which charges nothing), refuses it when the dry run
reports validation errors or the total is above ``max_cost``, and only then places it. The order id is
kept in ``task_state_store`` the moment the order exists, so a retried task waits on that order
instead of buying a second one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import (
    PixxelConfigError,
    PixxelValidationError,
)
from airflow_provider_pixxel.links import PixxelAuroraOrderLink
from airflow_provider_pixxel.operators.base import (
    PixxelResumableOperator,
    check_max_cost,
    refuse_above_max_cost,
)
from airflow_provider_pixxel.operators.purchase import BUDGET_TEMPLATE_FIELDS, PixxelPurchaseMixin
from airflow_provider_pixxel.spec import component, enum_values, field_names
from airflow_provider_pixxel.utils.arguments import (
    decode_json_text,
    non_empty_list,
    one_of,
    require_text,
    whole_number,
)
from airflow_provider_pixxel.utils.dates import check_tasking_window, order_item_date
from airflow_provider_pixxel.utils.lazy_import import lazy_import

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_pixxel import resources
    from airflow_provider_pixxel.utils import geometry
else:
    # Needed once the task runs, not while a DAG file is parsed (see utils/lazy_import.py).
    resources = lazy_import("airflow_provider_pixxel.resources")
    geometry = lazy_import("airflow_provider_pixxel.utils.geometry")

# The spec's one schema for both kinds of order item: its fields, enums and name length are read from it
# when a task runs. Which fields make an item tasking is a cross-field rule the spec cannot state.
ORDER_ITEM_SCHEMA = "clerk.docOriginalOrderItem"
NOT_APPLICABLE = "NOT_APPLICABLE"
MAX_OFF_NADIR_DEGREES = 90

TASKING_FIELDS = frozenset(
    {
        "bandset",
        "recurrence",
        "start_date",
        "end_date",
        "no_of_occurrences",
        "cloud_cover",
        "off_nadir",
        "delivery_speed",
    }
)
_ORDER_ITEM_IDS_SEPARATOR = ","


def _sendable(field: str) -> tuple[str, ...]:
    """The contract's values of an order item's enum ``field`` but NOT_APPLICABLE, which the service
    writes on items the field does not apply to."""
    return tuple(value for value in enum_values(ORDER_ITEM_SCHEMA, field) if value != NOT_APPLICABLE)


def _text(item: Mapping[str, Any], key: str, where: str, *, required: bool) -> str | None:
    value = item.get(key)
    if not required and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    return require_text(f"{where}.{key}", value)


def _whole_number(item: Mapping[str, Any], key: str, where: str, low: int, high: int | None) -> int | None:
    value = item.get(key)
    return None if value is None else whole_number(f"{where}.{key}", value, low=low, high=high)


def _enum(item: Mapping[str, Any], key: str, where: str, allowed: Sequence[str]) -> str | None:
    if _text(item, key, where, required=False) is None:
        return None
    return one_of(f"{where}.{key}", item[key], allowed, case="upper")


def _cloud_delivery(value: Any, where: str) -> dict[str, str]:
    if (
        not isinstance(value, Mapping)
        or not isinstance(value.get("config"), str)
        or not value["config"].strip()
    ):
        raise PixxelConfigError(
            f"{where}.cloud_delivery must be {{'config': '<store id>', 'path': '<prefix>'}} (the store id "
            "from PixxelCreateStoreOperator or PixxelHook.list_stores())"
        )
    unknown = sorted(set(value) - {"config", "path"})
    if unknown:
        raise PixxelConfigError(
            f"{where}.cloud_delivery has unknown keys {unknown}; it takes config and path"
        )
    delivery = {"config": value["config"].strip()}
    if value.get("path") is not None:
        if not isinstance(value["path"], str):
            raise PixxelConfigError(f"{where}.cloud_delivery.path must be a string")
        delivery["path"] = value["path"]
    return delivery


def order_item_kind(item: Mapping[str, Any], where: str) -> str:
    """``"ARCHIVE"`` for an item with ``item_ids``, ``"TASKING"`` for one with tasking fields."""
    tasking_given = sorted(
        key for key in TASKING_FIELDS & set(item) if item[key] is not None and item[key] != NOT_APPLICABLE
    )
    if item.get("item_ids") is not None:
        if tasking_given:
            raise PixxelConfigError(
                f"{where} has item_ids (an archive item) and tasking fields {tasking_given}; an archive "
                "item takes only project_id, name, geometry, usecase, item_ids and cloud_delivery. Put "
                "new captures in a separate tasking item"
            )
        return "ARCHIVE"
    if tasking_given:
        return "TASKING"
    raise PixxelConfigError(
        f"{where} is neither a tasking item (bandset, recurrence, start_date, end_date) nor an archive "
        "item (item_ids from PixxelHook.search_archive())"
    )


def validate_order_item(
    item: Any, index: int, *, default_project_id: str | None, now: Any = None
) -> dict[str, Any]:
    """One order item checked and normalised as ``POST /v0/orders`` takes it.

    :param default_project_id: used when the item has no ``project_id`` (the connection's default).
    :param now: when the order is placed (tests pass a fixed time); default: now.
    :raises PixxelConfigError: naming ``order_items[index].<field>`` and how to fix it.
    """
    where = f"order_items[{index}]"
    if not isinstance(item, Mapping):
        raise PixxelConfigError(f"{where} must be an object (dict), got {type(item).__name__}")
    known = field_names(ORDER_ITEM_SCHEMA)
    unknown = sorted(set(item) - known)
    if unknown:
        raise PixxelConfigError(
            f"{where} has unknown fields {unknown}; order items take {', '.join(sorted(known))}"
        )
    kind = order_item_kind(item, where)
    project_id = _text(item, "project_id", where, required=False) or default_project_id
    if not project_id:
        raise PixxelConfigError(
            f"{where}.project_id is required: set it on the item, or set the 'project_id' extra on the "
            "Pixxel connection (find ids with PixxelHook.list_projects())"
        )
    if "geometry" not in item or item["geometry"] is None:
        raise PixxelConfigError(
            f"{where}.geometry is required: a GeoJSON FeatureCollection of Polygon/MultiPolygon features "
            "(a bare Polygon or MultiPolygon is wrapped for you)"
        )
    result: dict[str, Any] = {
        "project_id": project_id,
        "geometry": geometry.normalize_aoi_geometry(
            item["geometry"], field=f"{where}.geometry", want="feature_collection"
        ),
        "usecase": _text(item, "usecase", where, required=True),
    }
    name = _text(item, "name", where, required=False)
    if name is not None:
        longest = component(ORDER_ITEM_SCHEMA)["properties"]["name"]["maxLength"]
        if len(name) > longest:
            raise PixxelConfigError(f"{where}.name is {len(name)} characters; at most {longest}")
        result["name"] = name
    if item.get("cloud_delivery") is not None:
        result["cloud_delivery"] = _cloud_delivery(item["cloud_delivery"], where)
    if kind == "ARCHIVE":
        item_ids = non_empty_list(f"{where}.item_ids", item["item_ids"], of="STAC item id strings")
        result["item_ids"] = [
            require_text(f"{where}.item_ids[{n}]", value, hint="a STAC item id")
            for n, value in enumerate(item_ids)
        ]
        return result
    result.update(_tasking_fields(item, where, now=now))
    return result


def _tasking_fields(item: Mapping[str, Any], where: str, *, now: Any) -> dict[str, Any]:
    bandset = item.get("bandset")
    if (
        not isinstance(bandset, Mapping)
        or not isinstance(bandset.get("bandset_id"), str)
        or not bandset["bandset_id"].strip()
    ):
        raise PixxelConfigError(
            f"{where}.bandset must be {{'bandset_id': '<id>'}} for a tasking item (ids from "
            "PixxelHook.list_bandsets())"
        )
    recurrences = _sendable("recurrence")
    recurrence = _enum(item, "recurrence", where, recurrences)
    if recurrence is None:
        raise PixxelConfigError(
            f"{where}.recurrence is required for a tasking item: one of {', '.join(recurrences)} "
            "(ONCE for a single capture window)"
        )
    occurrences = _whole_number(item, "no_of_occurrences", where, 1, None)
    if item.get("start_date") is None:
        raise PixxelConfigError(f"{where}.start_date is required for a tasking item")
    end = item.get("end_date")
    if end is None and (recurrence == "ONCE" or occurrences is None):
        needs = "end_date" if recurrence == "ONCE" else "end_date or no_of_occurrences"
        raise PixxelConfigError(f"{where} is a {recurrence} tasking item and needs {needs}")
    start_date, end_date = check_tasking_window(item["start_date"], end, now=now, field_prefix=f"{where}.")
    fields: dict[str, Any] = {
        "bandset": {"bandset_id": bandset["bandset_id"].strip()},
        "recurrence": recurrence,
        "start_date": order_item_date(start_date),
    }
    if end_date is not None:
        fields["end_date"] = order_item_date(end_date)
    if occurrences is not None:
        fields["no_of_occurrences"] = occurrences
    for key, high in (("cloud_cover", 100), ("off_nadir", MAX_OFF_NADIR_DEGREES)):
        value = _whole_number(item, key, where, 0, high)
        if value is not None:
            fields[key] = value
    speed = _enum(item, "delivery_speed", where, _sendable("delivery_speed"))
    if speed is not None:
        fields["delivery_speed"] = speed
    return fields


def _amount(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _format_amount(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g}"


def _validation_messages(errors: Any) -> list[str]:
    """``[{"start_date": ["too early"]}]`` → ``["start_date: too early"]``."""
    messages: list[str] = []
    for entry in errors or []:
        if isinstance(entry, Mapping):
            for field, problems in entry.items():
                texts = problems if isinstance(problems, list) else [problems]
                messages.extend(f"{field}: {text}" for text in texts)
        elif entry:
            messages.append(str(entry))
    return messages


class PixxelCreateOrderOperator(PixxelResumableOperator, PixxelPurchaseMixin):
    """Price, check and place an order for tasking and/or archive imagery, then wait until it is done.

    Before anything is sent, each order item is checked: its geometry (a FeatureCollection of Polygons /
    MultiPolygons; polygons of one item at most 200 km apart), the tasking window (start at least 24 h
    ahead, end after start; dates are sent as ``YYYY-MM-DDT00:00:00Z``, the API uses the UTC date,
    start inclusive, end exclusive), the required fields (``usecase``; ``bandset`` and ``recurrence``
    for tasking; ``item_ids`` for archive) and the enums. ``project_id`` defaults to the connection's.

    Then the order is priced with a dry run, which charges nothing: each item's price, uplifts and
    feasibility are logged with the total. The task fails, having bought nothing, if the dry run reports
    validation errors, the total is above ``max_cost``, or the total plus what the project spent this
    period is above the budget (``budget_tokens``). With ``pixxel_dry_run`` on in the run's conf or
    params, the price is pushed to XCom (``pixxel_price``) and the task is skipped, having bought
    nothing. Only then is the order placed, each item named with the task that bought it
    (``@airflow:<dag_id>/<task_id>/<run_id>`` appended to its name) for ``pixxel-spend``. Its id and its
    order item ids are kept in ``task_state_store`` at once: a retried task waits on this order and
    never places another. If the API does not answer the order request (so it may or may not have been
    placed), the task fails without Airflow retries and says where to look.

    Returns ``{"order_id", "order_item_ids", "total_amount", "status", "payment_status",
    "order_item_statuses"}``; ``status`` is ``success``/``partial`` once every item is terminal
    (``running`` with ``wait_for_completion=False``).

    :param order_items: order items as the API takes them, e.g. a tasking item ``{"name", "geometry",
        "usecase", "bandset": {"bandset_id"}, "recurrence": "ONCE", "start_date", "end_date",
        "cloud_cover", "off_nadir"}`` or an archive item ``{"geometry", "usecase", "item_ids": [...]}``.
        Dates may be dates, datetimes, ``{{ ds }}``-style strings or RFC 3339 texts.
    :param max_cost: the most the order may cost, in wallet tokens. ``None`` (the default) means no cap:
        the price is still logged before buying. Zero or negative is a configuration error.
    :param budget_tokens, budget_period: the project's spend budget across runs, see
        :class:`~airflow_provider_pixxel.operators.purchase.PixxelPurchaseMixin`.
    :param wait_for_completion: wait until every order item is fulfilled, failed or cancelled (tasking
        can take days: use ``deferrable=True`` and a long ``timeout``).

    Example::

        order = PixxelCreateOrderOperator(
            task_id="place_order",
            order_items=[{
                "name": "field-42",
                "geometry": field_polygon,
                "usecase": "agriculture",
                "bandset": {"bandset_id": "b7f0..."},
                "recurrence": "ONCE",
                "start_date": "{{ macros.ds_add(ds, 2) }}",
                "end_date": "{{ macros.ds_add(ds, 9) }}",
            }],
            max_cost=5000,
            deferrable=True,
            poll_interval=3600,
            timeout=14 * 24 * 3600,
        )
    """

    operator_extra_links = (PixxelAuroraOrderLink(),)
    watch_kind = "order"
    external_id_key = "pixxel_order_ids"
    template_fields: Sequence[str] = ("pixxel_conn_id", "order_items", "max_cost", *BUDGET_TEMPLATE_FIELDS)
    template_fields_renderers = {"order_items": "json"}
    ui_color = "#fdf1e0"

    def __init__(
        self,
        *,
        order_items: Sequence[Mapping[str, Any]],
        max_cost: float | str | None = None,
        budget_tokens: int | str | None = None,
        budget_period: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.order_items = order_items
        self.max_cost = max_cost
        self.budget_tokens = budget_tokens
        self.budget_period = budget_period

    # -- checks before any call -------------------------------------------------------------------

    def cost_cap(self) -> float | None:
        return check_max_cost(self.max_cost)

    def checked_items(self) -> list[dict[str, Any]]:
        items = decode_json_text("order_items", self.order_items)
        items = non_empty_list(
            "order_items", [items] if isinstance(items, Mapping) else items, of="order item objects"
        )
        default_project = None
        if any(not (isinstance(item, Mapping) and item.get("project_id")) for item in items):
            default_project = self.hook.settings.project_id
        return [
            validate_order_item(item, index, default_project_id=default_project)
            for index, item in enumerate(items)
        ]

    def execute(self, context: Context) -> Any:
        store = context.get("task_state_store")
        if store is None or not store.get(self.external_id_key):
            # Checked up front, so a bad argument never reaches the API. A retry that holds an order
            # skips this: its tasking window may have started since, and it must still reconnect.
            self.cost_cap()
            self.budget()
            self.checked_items()
        return super().execute(context)

    # -- pricing and buying -----------------------------------------------------------------------

    def price(self, items: list[dict[str, Any]], cap: float | None) -> float | None:
        """Dry-run the order, log its price, and refuse it (nothing bought) when it must not go ahead."""
        try:
            quote = self.hook.create_order(order_items=items, dry_run=True) or {}
        except PixxelValidationError as error:
            # The API's own checks (unknown bandset, archive item outside the geometry...): a retry
            # would be refused the same way.
            raise AirflowFailException(f"The dry run was refused; nothing was bought: {error}") from error
        quoted_items = [entry for entry in quote.get("order_items") or [] if isinstance(entry, Mapping)]
        problems: list[str] = []
        item_total = 0.0
        all_priced = bool(quoted_items)
        for index, item in enumerate(items):
            quoted = quoted_items[index] if index < len(quoted_items) else {}
            label = f"order_items[{index}]" + (f" {item['name']!r}" if item.get("name") else "")
            final = _amount(quoted.get("final_amount"))
            if final is None:
                all_priced = False
            else:
                item_total += final
            uplifts = quoted.get("uplifts") or []
            feasibility = quoted.get("feasibility_status")
            self.log.info(
                "Dry run: %s (%s, %.1f km² billed) costs %s tokens (base %s%s)%s",
                label,
                "archive" if "item_ids" in item else "tasking",
                geometry.billed_area_km2(item["geometry"], field=f"{label}.geometry"),
                _format_amount(final),
                _format_amount(_amount(quoted.get("base_amount"))),
                f", uplifts {uplifts}" if uplifts else "",
                f", feasibility {feasibility}" if feasibility else "",
            )
            if str(feasibility or "").upper() == "FAILED":
                self.log.warning(
                    "%s: Pixxel rates a capture in this window as unlikely (feasibility FAILED); consider "
                    "a longer window or higher cloud_cover/off_nadir",
                    label,
                )
            problems.extend(
                f"{label}: {message}" for message in _validation_messages(quoted.get("validation_errors"))
            )
        total = _amount(quote.get("total_amount"))
        if total is None and all_priced:
            total = item_total
        self.log.info(
            "Dry run: the order costs %s tokens in total%s",
            _format_amount(total),
            f" (max_cost {cap:g})" if cap is not None else " (no max_cost set)",
        )
        if problems:
            raise AirflowFailException(
                "The dry run found validation errors; nothing was bought: " + "; ".join(problems)
            )
        refuse_above_max_cost(
            total,
            cap,
            subject="the order",
            consequence="nothing was bought (reduce the area, window or items)",
        )
        return total

    def lineage_outputs(self, ids: Mapping[str, str]) -> list[str]:
        return [f"order/{ids['order_id']}"]

    def attributed(self, items: list[dict[str, Any]], context: Context) -> list[dict[str, Any]]:
        """The items with this task instance appended to their names, where it fits (100 characters)."""
        attribution = self.attribution(context)
        if attribution is None:
            return items
        from airflow_provider_pixxel.hooks.spend import name_with_attribution

        named = []
        for index, item in enumerate(items):
            name = name_with_attribution(item.get("name"), attribution)
            if name is None:
                self.log.warning(
                    "order_items[%d]: its name leaves no room for the @airflow:<dag>/<task>/<run> mark, "
                    "so pixxel-spend cannot tell which task bought it; shorten the name to fix that",
                    index,
                )
                named.append(item)
            else:
                named.append({**item, "name": name})
        return named

    def start(self, context: Context) -> dict[str, str]:
        cap = self.cost_cap()
        items = self.checked_items()
        quoted_total = self.price(items, cap)
        self.before_purchase(
            context,
            quoted_total,
            subject="the order",
            project_ids=sorted({str(item["project_id"]) for item in items}),
        )
        items = self.attributed(items, context)
        from airflow_provider_pixxel.hooks.reconcile import create_exactly_once, order_lookup

        # A lost answer is followed by a look for the order (adopted if it was placed, re-sent if not);
        # an outcome that stays unknown ends the task without Airflow retries: see start_once.
        order = (
            create_exactly_once(
                self.hook,
                lambda: self.hook.create_order(order_items=items, dry_run=False),
                order_lookup(self.hook, items),
                journal=self.creation_journal(context),
            )
            or {}
        )
        order_id = str(order.get("id") or "")
        if not order_id:
            raise AirflowFailException(
                f"Pixxel answered the order request without an order id; check PixxelHook.list_orders() "
                f"before running this task again (answer: {order})"
            )
        item_ids = [
            str(entry.get("id")) for entry in order.get("order_items") or [] if isinstance(entry, Mapping)
        ]
        placed_total = _amount(order.get("total_amount"))
        self.log.info(
            "Placed order %s (%d order items: %s) for %s tokens, payment status %s",
            order_id,
            len(item_ids),
            ", ".join(item_ids),
            _format_amount(placed_total),
            order.get("status"),
        )
        if placed_total is not None and quoted_total is not None and placed_total != quoted_total:
            self.log.warning(
                "Order %s was charged %g tokens; the dry run quoted %g", order_id, placed_total, quoted_total
            )
        return {"order_id": order_id, "order_item_ids": _ORDER_ITEM_IDS_SEPARATOR.join(item_ids)}

    # -- results ----------------------------------------------------------------------------------

    def order_result(self, order_id: str) -> dict[str, Any]:
        """The small JSON this task returns, from one read of the order."""
        order = self.hook.get_order(order_id) or {}
        observation = resources.observe(self.watch_kind, order, {"order_id": order_id})
        items = [entry for entry in order.get("order_items") or [] if isinstance(entry, Mapping)]
        return {
            "order_id": order_id,
            "order_item_ids": [str(entry.get("id")) for entry in items],
            "total_amount": _amount(order.get("total_amount")),
            "status": observation.phase.value,
            "payment_status": order.get("status"),
            "order_item_statuses": {str(entry.get("id")): entry.get("status") for entry in items},
        }

    def wait_for(self, context: Context, ids: Mapping[str, str]) -> Any:
        if not self.wait_for_completion:
            return self.order_result(ids["order_id"])
        return super().wait_for(context, ids)

    def finish(self, context: Context, ids: Mapping[str, str], event: Mapping[str, Any]) -> Any:
        return self.order_result(ids["order_id"])
