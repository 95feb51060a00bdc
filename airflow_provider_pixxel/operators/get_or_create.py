"""Get-or-create: create a named resource, or adopt the one that already exists.

The API refuses a second resource with the identity of an existing one with HTTP 409 Conflict: index
and store names are unique in the workspace, AOI names in their project, and an AOI has one
visualization of an index per set of source assets and resolution. A daily DAG that uses one name, or
the runs of a backfill that create the same resource at the same moment, therefore meet a resource
already made. :func:`create_or_adopt` is the one routine the create operators share for that:

* with ``reuse_existing`` off, the conflict fails the task with a message naming the existing resource;
* with it on, the existing resource is looked up (first, when it can be found without the conflict
  answer, so a daily run sends no create at all), checked to be the one asked for, and adopted: the
  task returns it as if it had created it. Runs racing to create it end with exactly one: the service
  lets one create through and answers the others 409, and each of those looks the winner up.

Nothing is deleted to settle a clash: an existing resource may have been paid for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelExistingResourceError, PixxelValidationError

__all__ = ["Existing", "create_or_adopt"]

#: Finds the existing resource(s) a create clashes with; given the 409 answer once there is one.
Finder = Callable[[PixxelValidationError | None], Sequence[Mapping[str, Any]]]


def _no_differences(record: Mapping[str, Any]) -> list[str]:
    return []


@dataclass(frozen=True)
class Existing:
    """The resource a create request may find already made: how to find, name and check it.

    :param description: what is created, for messages: ``"the AOI named 'field-42' in project p-1"``.
    :param conflict: the sentence saying it exists, e.g. ``"An AOI named 'field-42' already exists"``.
    :param rule: the API's uniqueness rule, e.g. ``"AOI names are unique in a project"``.
    :param fix: how to create a separate one instead, e.g. ``"choose another name"``.
    :param find: the existing resources of that identity (normally one), read from the API.
    :param differences: what in an existing resource differs from the request, one phrase each; any
        forbids the adoption.
    :param mismatch_fix: how to resolve a difference; by default ``fix``.
    :param id_field: the record's id field (``"aoi_id"`` for AOIs).
    :param look_first: look before creating (when ``find`` works without the conflict answer).
    """

    description: str
    conflict: str
    rule: str
    fix: str
    find: Finder
    differences: Callable[[Mapping[str, Any]], list[str]] = field(default=_no_differences)
    mismatch_fix: str | None = None
    id_field: str = "id"
    look_first: bool = True

    @classmethod
    def named(
        cls, kind: str, name: str, *, rule: str, find: Finder, where: str = "", **options: Any
    ) -> Existing:
        """One known by its unique name, e.g. ``Existing.named("AOI", "f-1", where="in project p")``."""
        place = f" {where}" if where else ""
        article = "An" if kind[:1].upper() in "AEIOU" else "A"
        return cls(
            description=f"the {kind} named {name!r}{place}",
            conflict=f"{article} {kind} named {name!r} already exists{place}",
            rule=rule,
            fix="choose another name",
            find=find,
            **options,
        )


def create_or_adopt(
    log: Any,
    existing: Existing,
    create: Callable[[], Any],
    *,
    reuse_existing: bool,
) -> tuple[Any, bool]:
    """``create()``, or adopt the existing resource that it clashes with.

    :param log: the task's ``self.log`` (or any logger): says what was adopted.

    :return: ``(create's answer, False)``, or ``(the existing record as listed, True)``.
    :raises PixxelExistingResourceError: it exists and ``reuse_existing`` is off, or it differs.
    :raises AirflowFailException: the API answered 409 but no such resource can be found, or several.
    """
    if reuse_existing and existing.look_first:
        found = existing.find(None)
        if found:
            return _adopt(log, existing, found, None), True
    try:
        return create(), False
    except PixxelValidationError as conflict:
        if conflict.status != 409:
            raise
        found = existing.find(conflict)
        if not reuse_existing:
            ids = ", ".join(str(record.get(existing.id_field)) for record in found)
            raise PixxelExistingResourceError(
                f"{existing.conflict}{f' (id {ids})' if ids else ''}: {existing.rule}. "
                f"{_capitalized(existing.fix)}, or set reuse_existing=True to adopt it. "
                f"API said: {conflict.message}"
            ) from conflict
        return _adopt(log, existing, found, conflict), True


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _adopt(
    log: Any,
    existing: Existing,
    found: Sequence[Mapping[str, Any]],
    conflict: PixxelValidationError | None,
) -> Mapping[str, Any]:
    said = f" ({conflict.message})" if conflict is not None else ""
    if not found:
        raise AirflowFailException(
            f"Creating {existing.description} was refused as a conflict{said}, but none is visible to "
            "this service user, so there is nothing to adopt. Check the connection's workspace and project"
        ) from conflict
    if len(found) > 1:
        ids = ", ".join(str(record.get(existing.id_field)) for record in found)
        raise AirflowFailException(
            f"{len(found)} resources match {existing.description} ({ids}) and nothing tells which one "
            f"this task asks for, so none is adopted. {_capitalized(existing.fix)}"
        ) from conflict
    (record,) = found
    resource_id = record.get(existing.id_field)
    differences = existing.differences(record)
    if differences:
        raise PixxelExistingResourceError(
            f"{existing.conflict} (id {resource_id}) but differs from the one asked for: "
            f"{'; '.join(differences)}. Adopting it would give you something else: "
            f"{existing.mismatch_fix or existing.fix}"
        ) from conflict
    log.info(
        "Adopted %s, id %s, instead of creating it (reuse_existing=True; status %s)",
        existing.description,
        resource_id,
        record.get("status", "n/a"),
    )
    return record
