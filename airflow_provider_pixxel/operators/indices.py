"""Custom spectral indices: :class:`PixxelCreateIndexOperator` (``POST /v0/indices``).

Every argument is checked in ``execute`` before the first request, so a bad template value fails the
task with a message naming the field, and nothing is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError
from airflow_provider_pixxel.operators.base import PixxelBaseOperator
from airflow_provider_pixxel.operators.get_or_create import Existing, create_or_adopt
from airflow_provider_pixxel.utils.arguments import decode_json_text, one_of, require_text

if TYPE_CHECKING:
    from airflow.sdk import Context

EXPRESSION_TYPES = ("index", "composite", "grayscale")


def _rescale(value: Any) -> list[int]:
    value = decode_json_text("rescale", value)
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise PixxelConfigError(f"rescale must be [min, max] whole numbers, e.g. [0, 1]; got {value!r}")
    low, high = value
    if low >= high:
        raise PixxelConfigError(f"rescale min must be below max; got [{low}, {high}]")
    return [low, high]


def _same_expression(first: Any, second: Any) -> bool:
    return re.sub(r"\s+", "", str(first or "")) == re.sub(r"\s+", "", str(second or ""))


class PixxelCreateIndexOperator(PixxelBaseOperator):
    """Create a custom spectral index (a band expression) and return its id.

    Index names are unique: a second index with the same name is refused with HTTP 409. By default
    that fails the task with a message saying so; with ``reuse_existing=True`` the task adopts the
    index of that name and returns its id instead, provided its expression and type match (see
    :mod:`~airflow_provider_pixxel.operators.get_or_create`).

    :param name: index name, e.g. ``"NDVI-custom"``.
    :param description: what the index shows.
    :param expression: band expression, e.g. ``"(B08-B04)/(B08+B04)"``.
    :param expression_type: ``index``, ``composite`` or ``grayscale``.
    :param rescale: ``[min, max]`` whole numbers.
    :param colormap: colormap name, e.g. ``"rdylgn"``.
    :param satellite_id: the satellite whose band names the expression uses.
    :param reuse_existing: adopt an existing index of this name (same expression) instead of failing.

    Example::

        index = PixxelCreateIndexOperator(
            task_id="create_index",
            name="ndvi-custom",
            description="NDVI",
            expression="(B08-B04)/(B08+B04)",
            expression_type="index",
            rescale=[-1, 1],
            colormap="rdylgn",
            satellite_id=S2_SATELLITE_ID,
            reuse_existing=True,
        )
    """

    template_fields: Sequence[str] = (
        *PixxelBaseOperator.template_fields,
        "name",
        "description",
        "expression",
        "expression_type",
        "rescale",
        "colormap",
        "satellite_id",
    )
    template_fields_renderers = {"rescale": "json"}

    def __init__(
        self,
        *,
        name: str,
        description: str,
        expression: str,
        expression_type: str,
        rescale: Sequence[int],
        colormap: str,
        satellite_id: str,
        reuse_existing: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.description = description
        self.expression = expression
        self.expression_type = expression_type
        self.rescale = rescale
        self.colormap = colormap
        self.satellite_id = satellite_id
        self.reuse_existing = reuse_existing

    def build_request(self) -> dict[str, Any]:
        """The ``create_index`` arguments, checked; raises :class:`PixxelConfigError` before any request."""
        expression_type = one_of("expression_type", self.expression_type, EXPRESSION_TYPES)
        return {
            "name": require_text("name", self.name),
            "description": require_text("description", self.description),
            "expression": require_text("expression", self.expression),
            "expression_type": expression_type,
            "rescale": _rescale(self.rescale),
            "colormap": require_text("colormap", self.colormap),
            "satellite_id": require_text("satellite_id", self.satellite_id),
        }

    def execute(self, context: Context) -> str:
        request = self.build_request()
        created, adopted = create_or_adopt(
            self.log,
            self._existing(request),
            lambda: self.hook.create_index(**request),
            reuse_existing=self.reuse_existing,
        )
        index_id = (created or {}).get("id")
        if not index_id:
            raise AirflowFailException(
                f"The API created index {request['name']!r} but returned no id: {created!r}"
            )
        if not adopted:
            self.log.info("Created index %s (%s)", index_id, request["name"])
        return str(index_id)

    def _existing(self, request: Mapping[str, Any]) -> Existing:
        name = request["name"]

        def differences(index: Mapping[str, Any]) -> list[str]:
            return [
                f"{field}: existing {index.get(field)!r} vs requested {request[field]!r}"
                for field in ("expression", "expression_type")
                if not _same_expression(index.get(field), request[field])
            ]

        return Existing.named(
            "index",
            name,
            rule="index names are unique",
            find=lambda conflict: [index for index in self.hook.iter_indices() if index.get("name") == name],
            differences=differences,
        )
