"""OpenLineage facets for Pixxel operators, when the ``openlineage`` provider is installed.

Pixxel resources are datasets in the namespace ``pixxel://<API host>`` named after their kind and id
(``aoi/<id>``, ``order/<id>``, ``catalog/<id>``, ``order_item/<id>``, ``workflow/<id>/job/<id>``,
``aoi/<id>/insight/<id>``...). What an operator reads is an input; what it creates is an output; files a
download wrote are outputs named as OpenLineage names files: a local path in the ``file`` namespace, an
object-store URL as ``<scheme>://<bucket>`` + key.

The provider is imported lazily: without it, :meth:`PixxelLineageMixin.get_openlineage_facets_on_complete`
returns None and nothing else changes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

DEFAULT_API_HOST = "api.pixxel.space"


def file_dataset_name(location: str) -> tuple[str, str]:
    """``(namespace, name)`` of a written file: ``("file", "/abs/path")`` or ``("s3://bucket", "key")``."""
    parts = urlsplit(location)
    if parts.scheme and parts.scheme != "file" and len(parts.scheme) > 1:  # "C:" is a drive, not a scheme
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")
    path = parts.path if parts.scheme == "file" else location
    return "file", os.path.abspath(path)


class PixxelLineageMixin:
    """Adds ``get_openlineage_facets_on_complete`` to an operator.

    Operators override :meth:`lineage_inputs` / :meth:`lineage_outputs` (dataset names in the Pixxel
    namespace) from the remote ids they recorded in :attr:`lineage_ids`; download operators record
    what they wrote in :attr:`lineage_files`.
    """

    lineage_ids: dict[str, str] | None = None
    lineage_files: list[str] | None = None

    def lineage_inputs(self, ids: Mapping[str, str]) -> list[str]:
        return []

    def lineage_outputs(self, ids: Mapping[str, str]) -> list[str]:
        return []

    def lineage_namespace(self) -> str:
        hook = getattr(self, "__dict__", {}).get("hook")  # only a hook the task already made
        host = DEFAULT_API_HOST
        if hook is not None:
            try:
                host = urlsplit(hook.settings.base_url).netloc or DEFAULT_API_HOST
            except Exception:  # lineage must never fail a task that succeeded
                host = DEFAULT_API_HOST
        return f"pixxel://{host}"

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs and outputs of this run, or None without the openlineage provider or without ids."""
        try:
            from airflow.providers.common.compat.openlineage.facet import Dataset
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        ids = self.lineage_ids
        if not ids:
            return None
        namespace = self.lineage_namespace()
        outputs = [Dataset(namespace=namespace, name=name) for name in self.lineage_outputs(ids)]
        for location in self.lineage_files or []:
            file_namespace, file_name = file_dataset_name(location)
            outputs.append(Dataset(namespace=file_namespace, name=file_name))
        return OperatorLineage(
            inputs=[Dataset(namespace=namespace, name=name) for name in self.lineage_inputs(ids)],
            outputs=outputs,
        )


def id_names(kind: str, ids: Sequence[str]) -> list[str]:
    """``["catalog/a", "catalog/b"]`` from a kind and ids."""
    return [f"{kind}/{value}" for value in ids if value]
