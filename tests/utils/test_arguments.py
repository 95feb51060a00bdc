"""The one set of argument checks: unit cases, and the guards seen from the operators over loopback HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.hooks.pixxel import PixxelHook
from airflow_provider_pixxel.operators.catalog import PixxelSearchCatalogsOperator
from airflow_provider_pixxel.operators.images import PixxelArchiveSearchOperator
from airflow_provider_pixxel.operators.orders import PixxelCreateOrderOperator
from airflow_provider_pixxel.utils.arguments import (
    bounding_box,
    decode_json_text,
    id_list,
    non_empty_list,
    one_of,
    require_text,
    require_text_list,
    true_or_false,
    whole_number,
)
from tests.operators.pixxel_sim import tasking_item
from tests.task_runner import make_context, run_task

# -- text ------------------------------------------------------------------------------------------


def test_require_text() -> None:
    assert require_text("workflow_id", " wf-1 ", hint="hint") == "wf-1"
    with pytest.raises(PixxelConfigError, match=r"workflow_id is required .*\(list them\)"):
        require_text("workflow_id", " ", hint="list them")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "name is required: name must be a non-empty string, got None"),
        ("  ", "name is required: name must be a non-empty string, got '  '"),
        (5, "name must be a non-empty string, got int 5"),
    ],
)
def test_require_text_says_what_was_given(value: Any, message: str) -> None:
    with pytest.raises(PixxelConfigError) as caught:
        require_text("name", value)
    assert str(caught.value) == message


def test_require_text_list_reads_rendered_text_and_names_the_bad_element() -> None:
    assert require_text_list("ids", "['a', ' b ']") == ["a", "b"]
    assert require_text_list("ids", "a") == ["a"]
    with pytest.raises(PixxelConfigError, match=r"ids\[1\] is required"):
        require_text_list("ids", ["a", ""])
    with pytest.raises(PixxelConfigError, match="at least one value"):
        require_text_list("ids", [])


def test_decode_json_text_takes_json_then_python_literals() -> None:
    assert decode_json_text("f", '{"a": [1, 2]}') == {"a": [1, 2]}
    assert decode_json_text("f", "{'a': (1, 2)}") == {"a": (1, 2)}
    assert decode_json_text("f", "plain text") == "plain text"
    with pytest.raises(
        PixxelConfigError, match="f looks like a list or mapping but is neither JSON nor a Python"
    ):
        decode_json_text("f", "[oops")


# -- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "low", "high", "expected"),
    [(5, 1, 10, 5), (" 7 ", 1, None, 7), ("-3", None, None, -3), (0, 0, 100, 0)],
)
def test_whole_number_accepts_integers_and_their_text(value: Any, low: Any, high: Any, expected: int) -> None:
    assert whole_number("n", value, low=low, high=high) == expected


@pytest.mark.parametrize(
    ("value", "low", "high", "message"),
    [
        (0, 1, 10, "n must be a whole number from 1 to 10; got 0"),
        (11, 1, 10, "n must be a whole number from 1 to 10; got 11"),
        (0, 1, None, "n must be a whole number of 1 or more; got 0"),
        (2.5, None, None, "n must be a whole number (the API takes integers); got 2.5"),
        (True, None, None, "n must be a whole number (the API takes integers); got True"),
        ("twenty", 1, None, "n must be a whole number of 1 or more; got 'twenty'"),
    ],
)
def test_whole_number_refuses_with_the_bounds(value: Any, low: Any, high: Any, message: str) -> None:
    with pytest.raises(PixxelConfigError) as caught:
        whole_number("n", value, low=low, high=high)
    assert str(caught.value) == message


# -- id lists (moved from the catalog operator tests) ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("a", ["a"]),
        ("a, b,a", ["a", "b"]),
        ('["a", "b"]', ["a", "b"]),
        ("['a', 'b']", ["a", "b"]),
        (("a", "b"), ["a", "b"]),
    ],
)
def test_id_list_reads_what_templates_render(value, expected):
    assert id_list(value, field="ids") == expected


@pytest.mark.parametrize("value", [[1], [""], "[oops", {"a": 1}, ["a,b"]])
def test_id_list_refuses_non_ids(value):
    with pytest.raises(PixxelConfigError, match="ids"):
        id_list(value, field="ids")


# -- bounding boxes: one rule, four numbers (the API documents no other form) -------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([77.5, 12.9, 77.6, 13.0], [77.5, 12.9, 77.6, 13.0]),
        ("77.5, 12.9, 77.6, 13", [77.5, 12.9, 77.6, 13.0]),  # the query-string form
        ("[77.5, 12.9, 77.6, 13.0]", [77.5, 12.9, 77.6, 13.0]),
        ([160.6, -55.95, -170, -25.89], [160.6, -55.95, -170.0, -25.89]),  # across the antimeridian
        (None, None),
    ],
)
def test_bounding_box_accepts(value: Any, expected: Any) -> None:
    assert bounding_box("bbox", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2, 3], "bbox must be four numbers"),
        ([77.5, 12.9, 0, 77.6, 13.0, 100], "bbox must be four numbers"),
        (["a", 1, 2, 3], "bbox must be four numbers"),
        ("1,2,x,4", "bbox must be four numbers"),
        ([float("nan"), 1, 2, 3], "bbox must be four numbers"),
        ([200, 0, 10, 10], "longitudes must be within -180..180"),
        ([0, -91, 10, 10], "latitudes must be within -90..90"),
        ([0, 10, 10, 5], "south <= north"),
    ],
)
def test_bounding_box_refuses(value: Any, message: str) -> None:
    with pytest.raises(PixxelConfigError, match=message):
        bounding_box("bbox", value)


@pytest.mark.parametrize("bbox", [[200, 12.9, 77.6, 13.0], [77.5, 13.0, 77.6, 12.9]])
def test_catalog_search_applies_the_range_checks_before_any_request(sim: Any, bbox: list[float]) -> None:
    """Catalog search used to take any four numbers and send them."""
    with pytest.raises(PixxelConfigError, match=r"bbox (longitudes|latitudes)"):
        run_task(PixxelSearchCatalogsOperator(task_id="find", bbox=bbox), make_context())
    assert sim.state.requests() == []


def test_catalog_search_sends_the_checked_box(sim: Any) -> None:
    run_task(PixxelSearchCatalogsOperator(task_id="find", bbox="77.5,12.9,77.6,13"), make_context())
    (search, *_) = sim.state.requests("POST", "/v0/catalogs/search")
    assert search.body["bbox"] == [77.5, 12.9, 77.6, 13.0]


def test_archive_search_refuses_a_six_number_box_before_any_request(sim: Any) -> None:
    """Archive search used to send six numbers, a form neither bbox parameter of the API documents."""
    with pytest.raises(PixxelConfigError, match="bbox must be four numbers"):
        run_task(PixxelArchiveSearchOperator(task_id="archive", bbox=[77.5, 12.9, 0, 77.6, 13.0, 100]))
    assert sim.state.requests() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(True, True), ("true", True), (" YES ", True), ("on", True), ("1", True)],
        *[(False, False), ("False", False), ("no", False), ("off", False), ("0", False)],
    ],
)
def test_true_or_false_reads_booleans_and_their_text(value: object, expected: bool) -> None:
    assert true_or_false("switch", value) is expected


@pytest.mark.parametrize("value", ["", "maybe", 1, None, ["true"]])
def test_true_or_false_refuses_anything_else(value: object) -> None:
    with pytest.raises(PixxelConfigError, match=r"switch must be true or false; got"):
        true_or_false("switch", value)


# -- choices and lists -----------------------------------------------------------------------------

MODES = ("dynamic", "theoretical")


@pytest.mark.parametrize(
    ("value", "choices", "case", "expected"),
    [
        ("dynamic", MODES, "lower", "dynamic"),
        (" Theoretical\n", MODES, "lower", "theoretical"),
        (" s3 ", ("S3", "GCS", "AZBLOB"), "upper", "S3"),
        ("AzBlob", ("S3", "GCS", "AZBLOB"), "upper", "AZBLOB"),
        (" adopt", ("fail", "adopt"), "exact", "adopt"),
    ],
)
def test_one_of_strips_and_folds_to_the_choices_case(
    value: Any, choices: Any, case: Any, expected: str
) -> None:
    assert one_of("field", value, choices, case=case) == expected


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("static", {}, "mode must be one of dynamic, theoretical; got 'static'"),
        ("", {}, "mode must be one of dynamic, theoretical; got ''"),
        (None, {}, "mode must be one of dynamic, theoretical; got None"),
        (["dynamic"], {}, "mode must be one of dynamic, theoretical; got ['dynamic']"),
        (1, {}, "mode must be one of dynamic, theoretical; got 1"),
        ("DYNAMIC", {"case": "exact"}, "mode must be one of dynamic, theoretical; got 'DYNAMIC'"),
        (
            "Dynamic",
            {"case": "exact", "quoted": True},
            "mode must be one of 'dynamic', 'theoretical'; got 'Dynamic'",
        ),
        ("dynamic", {"case": "upper"}, "mode must be one of dynamic, theoretical; got 'dynamic'"),
        (
            "fancy",
            {"hint": "how the legend is built"},
            "mode must be one of dynamic, theoretical (how the legend is built); got 'fancy'",
        ),
    ],
)
def test_one_of_refuses_with_the_choices(value: Any, kwargs: Any, message: str) -> None:
    with pytest.raises(PixxelConfigError) as refused:
        one_of("mode", value, MODES, **kwargs)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["a", "b"], ["a", "b"]),
        (("a",), ["a"]),
        ((part for part in "ab"), ["a", "b"]),
        ([{"id": 1}], [{"id": 1}]),
        ('["a", "b"]', ["a", "b"]),
        (" ['a'] ", ["a"]),
        ([None], [None]),
    ],
)
def test_non_empty_list_takes_sequences_iterables_and_their_text(value: Any, expected: list[Any]) -> None:
    assert non_empty_list("ids", value, of="ids") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "ids must be a non-empty list of asset ids; got []"),
        ("[]", "ids must be a non-empty list of asset ids; got []"),
        ((), "ids must be a non-empty list of asset ids; got ()"),
        (None, "ids must be a non-empty list of asset ids; got None"),
        ("", "ids must be a non-empty list of asset ids; got ''"),
        ("a1", "ids must be a non-empty list of asset ids; got 'a1'"),
        (b"a1", "ids must be a non-empty list of asset ids; got b'a1'"),
        ({"id": "a1"}, "ids must be a non-empty list of asset ids; got {'id': 'a1'}"),
        ('{"id": "a1"}', "ids must be a non-empty list of asset ids; got {'id': 'a1'}"),
        (7, "ids must be a non-empty list of asset ids; got 7"),
    ],
)
def test_non_empty_list_refuses_text_mappings_and_empty_lists(value: Any, message: str) -> None:
    with pytest.raises(PixxelConfigError) as refused:
        non_empty_list("ids", value, of="asset ids")
    assert str(refused.value) == message


def test_non_empty_list_shows_the_hint() -> None:
    with pytest.raises(PixxelConfigError) as refused:
        non_empty_list("input", [], of="input objects", hint="or pass input_values")
    assert (
        str(refused.value) == "input must be a non-empty list of input objects (or pass input_values); got []"
    )


def test_the_hook_refuses_a_mapping_given_for_a_list_before_any_request(sim: Any) -> None:
    """The hook used to send a lone mapping as the list of its keys."""
    item = tasking_item(sim)
    with pytest.raises(
        PixxelConfigError, match=r"^order_items must be a non-empty list of order item objects; got \{"
    ):
        PixxelHook().create_order(order_items=item, dry_run=True)
    assert sim.state.requests() == []


@pytest.mark.parametrize(
    "as_text", [json.dumps, lambda items: json.dumps(items[0])], ids=["list", "one-item"]
)
def test_order_items_rendered_as_json_text_are_placed(sim: Any, as_text: Any) -> None:
    """A template rendered without native objects gives the order items as text; it used to be refused."""
    items = [tasking_item(sim, recurrence=" once ")]
    operator = PixxelCreateOrderOperator(
        task_id="place_order", order_items=as_text(items), poll_interval=0.01
    )
    run_task(operator, make_context())
    (placed,) = [r for r in sim.state.requests("POST", "/v0/orders") if not r.body.get("dry_run")]
    (sent,) = placed.body["order_items"]
    assert (sent["name"], sent["recurrence"]) == ("field-42", "ONCE")


@pytest.mark.parametrize("order_items", [[], "[]", " ", None, "field-42"])
def test_order_items_that_are_no_list_are_refused_before_any_request(sim: Any, order_items: Any) -> None:
    operator = PixxelCreateOrderOperator(task_id="place_order", order_items=order_items)
    with pytest.raises(
        PixxelConfigError, match=r"^order_items must be a non-empty list of order item objects; got"
    ):
        run_task(operator, make_context())
    assert sim.state.requests() == []
