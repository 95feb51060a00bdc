"""create_exactly_once and the per-kind lookups, with a scripted hook (no HTTP).

The same code runs end to end against the simulator with real lost answers in
tests/reliability/test_crash_retry.py and in the chaos runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_pixxel.exceptions import (
    PixxelApiError,
    PixxelOutcomeUnknownError,
    PixxelTransportError,
)
from airflow_provider_pixxel.hooks.reconcile import (
    PENDING_CREATION_KEY,
    CreationLookup,
    Watermark,
    aoi_lookup,
    create_exactly_once,
    insight_lookup,
    job_lookup,
    order_lookup,
    store_lookup,
    visualization_lookup,
)
from airflow_provider_pixxel.hooks.retry import RetryPolicy
from tests.task_runner import DictTaskStateStore

SETTLE = (0.0, 1.0, 3.0)
#: created_at of the resources the scripted lookups see, in the API's different forms.
CREATED = {
    "old": "2026-11-25T10:00:00Z",
    "o-before": "2026-11-25 10:00:00+00:00",
    "o-same-instant": "2026-11-25T10:00:00+00:00",
    "o-new": "2026-11-25T10:00:01.5Z",
    "o-a": "2026-11-25T10:00:02Z",
    "o-b": "2026-11-25T10:00:03Z",
    "o-undated": None,
}


def lost_answer() -> PixxelOutcomeUnknownError:
    cause = PixxelApiError(
        message="service unavailable", status=503, method="POST", url="https://api/v0/orders"
    )
    return PixxelOutcomeUnknownError(
        "POST https://api/v0/orders may have created an order",
        method="POST",
        url="https://api/v0/orders",
        cause=cause,
    )


class ScriptedCreation:
    """A create request and its lookup: ``answers`` are what each send does, ``sightings`` what each
    lookup sees (the last one repeats)."""

    def __init__(self, answers: list[Any], sightings: list[set[str] | Exception]) -> None:
        self.answers = list(answers)
        self.sightings = list(sightings)
        self.sends = 0
        self.looks = 0
        self.events: list[str] = []

    def send(self) -> Any:
        self.sends += 1
        self.events.append("send")
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def matching(self) -> dict[str, str | None]:
        self.looks += 1
        self.events.append("look")
        sighting = self.sightings.pop(0) if len(self.sightings) > 1 else self.sightings[0]
        if isinstance(sighting, Exception):
            raise sighting
        return {resource_id: CREATED.get(resource_id) for resource_id in sighting}

    def lookup(self) -> CreationLookup:
        return CreationLookup("an order", self.matching, lambda found: {"id": found, "adopted": True})


def fake_hook(max_retries: int = 2) -> SimpleNamespace:
    waits: list[float] = []
    return SimpleNamespace(
        retry_policy=RetryPolicy(max_retries=max_retries, settle_delays=SETTLE),
        sleep=waits.append,
        waits=waits,
        log=logging.getLogger("test_reconcile"),
    )


def test_an_answered_create_is_sent_once_after_one_look() -> None:
    creation = ScriptedCreation([{"id": "o-1"}], [{"old"}])
    hook = fake_hook()

    assert create_exactly_once(hook, creation.send, creation.lookup()) == {"id": "o-1"}  # type: ignore[arg-type]
    assert creation.events == ["look", "send"]
    assert hook.waits == []


def test_a_lost_answer_whose_resource_exists_adopts_it_without_resending() -> None:
    creation = ScriptedCreation([lost_answer()], [{"old"}, {"old"}, {"old", "o-new"}])
    hook = fake_hook()

    result = create_exactly_once(hook, creation.send, creation.lookup())  # type: ignore[arg-type]

    assert result == {"id": "o-new", "adopted": True}
    assert creation.sends == 1
    # Looked at once (0 s), then after 1 s, where it had appeared.
    assert creation.events == ["look", "send", "look", "look"]
    assert hook.waits == [1.0]


def test_a_lost_answer_with_nothing_new_is_sent_again_after_the_whole_settle_period() -> None:
    creation = ScriptedCreation([lost_answer(), {"id": "o-2"}], [{"old"}])
    hook = fake_hook()

    assert create_exactly_once(hook, creation.send, creation.lookup()) == {"id": "o-2"}  # type: ignore[arg-type]
    assert creation.events == ["look", "send", "look", "look", "look", "send"]
    assert hook.waits == [1.0, 3.0]


def test_resends_stop_at_max_retries_with_the_original_error() -> None:
    errors = [lost_answer() for _ in range(3)]
    creation = ScriptedCreation(list(errors), [set()])
    hook = fake_hook(max_retries=2)

    with pytest.raises(PixxelOutcomeUnknownError) as raised:
        create_exactly_once(hook, creation.send, creation.lookup())  # type: ignore[arg-type]

    assert raised.value is errors[-1]
    assert creation.sends == 3


def test_without_retries_a_lost_answer_is_looked_for_but_never_resent() -> None:
    error = lost_answer()
    creation = ScriptedCreation([error], [set()])

    with pytest.raises(PixxelOutcomeUnknownError) as raised:
        create_exactly_once(fake_hook(max_retries=0), creation.send, creation.lookup())  # type: ignore[arg-type]

    assert raised.value is error
    assert creation.sends == 1
    assert creation.looks == 1 + len(SETTLE)


def test_two_new_candidates_adopt_neither_and_resend_nothing() -> None:
    creation = ScriptedCreation([lost_answer()], [{"old"}, {"old", "o-a", "o-b"}])

    with pytest.raises(PixxelOutcomeUnknownError) as raised:
        create_exactly_once(fake_hook(), creation.send, creation.lookup())  # type: ignore[arg-type]

    assert creation.sends == 1
    message = str(raised.value)
    assert "o-a, o-b" in message
    assert "cannot be told" in message
    assert "(o-a, o-b)" in message, "the resource that existed before is not a candidate"


def test_resources_that_existed_before_the_request_are_never_adopted() -> None:
    creation = ScriptedCreation([lost_answer()], [{"o-before"}])

    with pytest.raises(PixxelOutcomeUnknownError):
        create_exactly_once(fake_hook(max_retries=0), creation.send, creation.lookup())  # type: ignore[arg-type]


def test_a_failing_lookup_leaves_the_outcome_unknown_and_resends_nothing() -> None:
    lookup_failure = PixxelTransportError(
        "connection refused", method="GET", url="https://api", request_sent=False
    )
    creation = ScriptedCreation([lost_answer()], [set(), lookup_failure])

    with pytest.raises(PixxelOutcomeUnknownError) as raised:
        create_exactly_once(fake_hook(), creation.send, creation.lookup())  # type: ignore[arg-type]

    assert creation.sends == 1
    assert "Looking for an order afterwards failed too" in str(raised.value)
    assert raised.value.__cause__ is lookup_failure


def test_a_failing_first_look_stops_before_anything_is_sent() -> None:
    lookup_failure = PixxelTransportError(
        "connection refused", method="GET", url="https://api", request_sent=False
    )
    creation = ScriptedCreation([{"id": "o-1"}], [lookup_failure])

    with pytest.raises(PixxelTransportError):
        create_exactly_once(fake_hook(), creation.send, creation.lookup())  # type: ignore[arg-type]

    assert creation.sends == 0


@pytest.mark.parametrize("settle_delays", [(), (0.0, -1.0)])
def test_retry_policy_refuses_unusable_settle_delays(settle_delays: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="settle_delays"):
        RetryPolicy(settle_delays=settle_delays)


# -- lookups -----------------------------------------------------------------------------------------


class RecordingHook:
    """Answers list calls from fixed data and records them."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        if name not in self.answers:
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            answer = self.answers[name]
            return answer(*args, **kwargs) if callable(answer) else answer

        return call


def order_items(*items: tuple[str, str, str | None]) -> Iterator[dict[str, Any]]:
    return iter([{"order_id": order, "project_id": project, "name": name} for order, project, name in items])


def test_order_lookup_matches_orders_by_item_count_and_names_in_the_request_projects() -> None:
    hook = RecordingHook(
        iter_order_items=lambda **_: order_items(
            ("o-match", "p1", "field-1"),
            ("o-match", "p1", "field-2"),
            ("o-too-few", "p1", "field-1"),
            ("o-other-names", "p1", "x"),
            ("o-other-names", "p1", "y"),
        ),
        get_order=lambda order_id: {"id": order_id},
    )
    lookup = order_lookup(
        hook,  # type: ignore[arg-type]
        [{"project_id": "p1", "name": "field-1"}, {"project_id": "p1", "name": "field-2"}],
    )

    assert set(lookup.matching()) == {"o-match"}
    assert hook.calls[0] == ("iter_order_items", (), {"project_ids": "p1"})
    assert lookup.read("o-match") == {"id": "o-match"}


def test_order_lookup_without_names_matches_on_item_count() -> None:
    hook = RecordingHook(
        iter_order_items=lambda **_: order_items(
            ("o-1", "p1", "Order Item 1"), ("o-2", "p1", None), ("o-2", "p1", None)
        )
    )
    lookup = order_lookup(hook, [{"project_id": "p1"}])  # type: ignore[arg-type]

    assert set(lookup.matching()) == {"o-1"}


def test_job_lookup_lists_the_workflows_jobs_and_reads_one_with_get_job() -> None:
    hook = RecordingHook(
        list_jobs={
            "jobs": [{"id": "j-1", "created_at": "2026-11-25T10:00:00Z"}, {"id": "j-2"}, {"status": "no id"}]
        },
        get_job=lambda workflow_id, job_id: {"id": job_id, "workflow": workflow_id},
    )
    lookup = job_lookup(hook, "wf-1")  # type: ignore[arg-type]

    assert lookup.matching() == {"j-1": "2026-11-25T10:00:00Z", "j-2": None}
    assert hook.calls[0] == ("list_jobs", ("wf-1",), {})
    assert lookup.read("j-2") == {"id": "j-2", "workflow": "wf-1"}


def test_insight_lookup_skips_deleted_insights_and_other_names() -> None:
    hook = RecordingHook(
        list_insights={
            "insights": [
                {"id": "i-1", "name": "water"},
                {"id": "i-2", "name": "water", "deleted_at": "2026-11-25T00:00:00Z"},
                {"id": "i-3", "name": "crops"},
            ]
        }
    )
    assert set(insight_lookup(hook, "aoi-1", name="water", block_name="wbd").matching()) == {"i-1"}  # type: ignore[arg-type]
    assert set(insight_lookup(hook, "aoi-1", name=None, block_name="wbd").matching()) == {"i-1", "i-3"}  # type: ignore[arg-type]
    assert insight_lookup(hook, "aoi-1", name=None, block_name="wbd").read("i-3") == {"id": "i-3"}  # type: ignore[arg-type]


def test_aoi_lookup_matches_the_exact_name_only() -> None:
    hook = RecordingHook(
        iter_aois=lambda **_: iter(
            [{"aoi_id": "a-1", "name": "field"}, {"aoi_id": "a-2", "name": "field-2"}]
        ),
        get_aoi=lambda aoi_id: {"aoi_id": aoi_id},
    )
    lookup = aoi_lookup(hook, "field")  # type: ignore[arg-type]

    assert set(lookup.matching()) == {"a-1"}
    assert hook.calls[0] == ("iter_aois", (), {"aoi_name": "field"})
    assert lookup.read("a-1") == {"aoi_id": "a-1"}


def test_visualization_lookup_filters_by_index_and_reads_the_listed_record() -> None:
    hook = RecordingHook(
        iter_visualizations=lambda aoi_id, **filters: iter([{"id": "v-1"}, {"id": "v-2"}]),
        list_visualizations=lambda aoi_id, **filters: {
            "visualization": [{"id": filters["visualization_id"], "status": "creating"}]
        },
    )
    lookup = visualization_lookup(hook, "aoi-1", "ndvi")  # type: ignore[arg-type]

    assert set(lookup.matching()) == {"v-1", "v-2"}
    assert hook.calls[0] == ("iter_visualizations", ("aoi-1",), {"index_id": "ndvi"})
    assert lookup.read("v-2") == {"id": "v-2", "status": "creating"}


def test_store_lookup_matches_the_exact_name_and_reads_the_listed_store() -> None:
    hook = RecordingHook(
        list_stores={"stores": [{"id": "s-1", "name": "bucket"}, {"id": "s-2", "name": "other"}]}
    )
    lookup = store_lookup(hook, "bucket")  # type: ignore[arg-type]

    assert set(lookup.matching()) == {"s-1"}
    assert lookup.read("s-1") == {"id": "s-1", "name": "bucket"}


def test_order_lookup_dates_an_order_by_its_earliest_item() -> None:
    hook = RecordingHook(
        iter_order_items=lambda **_: iter(
            [
                {"order_id": "o-1", "project_id": "p1", "created_at": "2026-11-25T10:00:02Z"},
                {"order_id": "o-1", "project_id": "p1", "created_at": "2026-11-25T10:00:01Z"},
            ]
        )
    )
    assert order_lookup(hook, [{"project_id": "p1"}, {"project_id": "p1"}]).matching() == {  # type: ignore[arg-type]
        "o-1": "2026-11-25T10:00:01Z"
    }


# -- a try that died with the request on its way ---------------------------------------------------


def test_the_watermark_keeps_the_newest_instant_and_the_ids_made_at_it() -> None:
    matching = {i: CREATED[i] for i in ("old", "o-before", "o-same-instant", "o-undated")}

    watermark = Watermark.of(matching)

    assert watermark == Watermark("2026-11-25T10:00:00+00:00", ("o-before", "o-same-instant", "old"))
    assert Watermark.from_json(watermark.to_json("an order")) == watermark
    assert watermark.newer({**matching, "o-new": CREATED["o-new"]}) == ["o-new"]
    # Made at the very same instant as the newest one before, but not among them: new.
    assert watermark.newer({**matching, "o-also-then": "2026-11-25T10:00:00Z"}) == ["o-also-then"]
    assert Watermark.of({}).newer({"o-new": CREATED["o-new"], "o-undated": None}) == ["o-new"]


def test_a_request_is_noted_before_it_is_sent() -> None:
    journal = DictTaskStateStore()
    creation = ScriptedCreation([{"id": "o-1"}], [{"old"}])
    noted_when_sent: list[Any] = []
    send = creation.send

    def send_and_check() -> Any:
        noted_when_sent.append(journal.get(PENDING_CREATION_KEY))
        return send()

    create_exactly_once(fake_hook(), send_and_check, creation.lookup(), journal=journal)  # type: ignore[arg-type]

    assert noted_when_sent == [
        {"creates": "an order", "latest": "2026-11-25T10:00:00+00:00", "ids_at_latest": ["old"]}
    ]


def _journal_of_a_try_that_died(existing: set[str]) -> DictTaskStateStore:
    journal = DictTaskStateStore()
    watermark = Watermark.of({i: CREATED[i] for i in existing})
    journal.set(PENDING_CREATION_KEY, watermark.to_json("an order"))
    return journal


def test_the_next_try_adopts_what_the_dead_try_made_without_sending() -> None:
    journal = _journal_of_a_try_that_died({"old"})
    creation = ScriptedCreation([], [{"old", "o-new", "o-undated"}])

    result = create_exactly_once(fake_hook(), creation.send, creation.lookup(), journal=journal)  # type: ignore[arg-type]

    assert result == {"id": "o-new", "adopted": True}
    assert creation.sends == 0


def test_the_next_try_sends_when_the_dead_try_made_nothing() -> None:
    journal = _journal_of_a_try_that_died({"old"})
    creation = ScriptedCreation([{"id": "o-1"}], [{"old"}])

    assert create_exactly_once(fake_hook(), creation.send, creation.lookup(), journal=journal) == {
        "id": "o-1"
    }  # type: ignore[arg-type]
    assert creation.sends == 1


def test_the_next_try_with_two_candidates_sends_nothing_and_names_them() -> None:
    journal = _journal_of_a_try_that_died({"old"})
    creation = ScriptedCreation([], [{"old", "o-a", "o-b"}])

    with pytest.raises(PixxelOutcomeUnknownError, match=r"2 matching resources were made \(o-a, o-b\)"):
        create_exactly_once(fake_hook(), creation.send, creation.lookup(), journal=journal)  # type: ignore[arg-type]
    assert creation.sends == 0
    assert journal.get(PENDING_CREATION_KEY) is not None, "kept, so the next try still knows"
