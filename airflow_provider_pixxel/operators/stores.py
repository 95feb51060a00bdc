"""Register and remove the cloud buckets ("stores") Pixxel delivers imagery to.

Store credentials are the most sensitive values this provider handles, so
:class:`PixxelCreateStoreOperator` takes them only from an Airflow connection (``secrets_conn_id``),
never as an operator argument: an argument would sit in the DAG file, in the serialized DAG and, if
templated, in the rendered-fields view of every task instance. Every value read from that connection
is passed to ``mask_secret`` before anything is logged or sent, and none of them is returned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseHook, mask_secret

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelNotFoundError
from airflow_provider_pixxel.operators.base import PixxelBaseOperator
from airflow_provider_pixxel.operators.get_or_create import Existing, create_or_adopt
from airflow_provider_pixxel.utils.arguments import one_of, require_text

if TYPE_CHECKING:
    from airflow.sdk import Context

# The secrets each bucket type needs, and where in a connection each may come from:
# an extra named as the API names it, then the listed fallbacks ("login"/"password" are the
# connection's own fields; other names are extras as other providers' connections spell them).
SECRET_SOURCES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "S3": {
        "access_key_id": ("aws_access_key_id", "login"),
        "secret_access_key": ("aws_secret_access_key", "password"),
    },
    "GCS": {
        "project_id": ("project",),
        "service_account_credentials": ("keyfile_dict", "password"),
    },
    "AZBLOB": {
        "account_name": (),
        "tenant_id": (),
        "client_id": ("login",),
        "client_secret": ("password",),
    },
}
STORE_TYPES = tuple(SECRET_SOURCES)


def _connection_value(connection: Any, extras: Mapping[str, Any], key: str, fallbacks: Sequence[str]) -> Any:
    for source in (key, *fallbacks):
        own_field = source in ("login", "password")
        value = getattr(connection, source, None) if own_field else extras.get(source)
        if value not in (None, ""):
            return value
    return None


def store_secrets(conn_id: str, store_type: str) -> dict[str, str]:
    """The secrets a store of ``store_type`` needs, read from connection ``conn_id`` and masked.

    :raises PixxelConfigError: naming the missing keys (never a value).
    """
    connection = BaseHook.get_connection(conn_id)
    extras = connection.extra_dejson or {}
    secrets: dict[str, str] = {}
    missing: list[str] = []
    for key, fallbacks in SECRET_SOURCES[store_type].items():
        value = _connection_value(connection, extras, key, fallbacks)
        if value is None:
            missing.append(key)
            continue
        # A service-account key pasted as a JSON object in the extras is sent as its JSON text.
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        mask_secret(text)
        secrets[key] = text
    if missing:
        raise PixxelConfigError(
            f"connection {conn_id!r} lacks the {store_type} store secrets {', '.join(missing)}: put them "
            f"in its extra as {{{', '.join(repr(k) + ': ...' for k in SECRET_SOURCES[store_type])}}}"
        )
    return secrets


class PixxelCreateStoreOperator(PixxelBaseOperator):
    """Register a cloud bucket (S3, GCS or Azure Blob) that Pixxel can deliver imagery to.

    The bucket credentials come from the Airflow connection ``secrets_conn_id`` only (see the module
    docstring for why), in its extra JSON under the API's names, with these fallbacks:

    * ``S3``: ``access_key_id`` (or ``aws_access_key_id`` / the login), ``secret_access_key`` (or
      ``aws_secret_access_key`` / the password): an ``aws`` connection with keys works as is;
    * ``GCS``: ``project_id`` (or ``project``), ``service_account_credentials`` (or ``keyfile_dict``,
      a JSON object or its text / the password);
    * ``AZBLOB``: ``account_name``, ``tenant_id``, ``client_id`` (or the login), ``client_secret`` (or
      the password).

    Store names are unique in a workspace. With ``reuse_existing=True`` (the default) a store of the
    same name is adopted instead of failing, provided its type, bucket and region match (see
    :mod:`~airflow_provider_pixxel.operators.get_or_create`); this also makes the task safe to retry
    and lets racing runs end with one store. Adopting sends no secrets and reads none back: the
    existing store keeps the credentials it was registered with.

    Returns ``{"store_id", "name", "type", "created"}``; no secret is ever returned.

    :param name: unique name of the store.
    :param type: ``S3``, ``GCS`` or ``AZBLOB``.
    :param configs: ``{"bucket": ..., "region": ..., "path_prefix": ...}`` (bucket and region required;
        for Azure the bucket is the container).
    :param secrets_conn_id: the Airflow connection holding the bucket credentials.
    :param labels: string labels, e.g. ``{"team": "agri"}``.
    :param reuse_existing: adopt an existing store of the same name instead of failing.

    Example::

        store = PixxelCreateStoreOperator(
            task_id="create_store",
            name="agri-deliveries",
            type="S3",
            configs={"bucket": "my-bucket", "region": "eu-west-1", "path_prefix": "pixxel/"},
            secrets_conn_id="aws_pixxel_delivery",
        )
    """

    template_fields: Sequence[str] = (
        "pixxel_conn_id",
        "name",
        "type",
        "configs",
        "labels",
        "secrets_conn_id",
    )
    template_fields_renderers = {"configs": "json", "labels": "json"}

    def __init__(
        self,
        *,
        name: str,
        type: str,
        configs: Mapping[str, Any],
        secrets_conn_id: str,
        labels: Mapping[str, str] | None = None,
        reuse_existing: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.type = type
        self.configs = configs
        self.secrets_conn_id = secrets_conn_id
        self.labels = labels
        self.reuse_existing = reuse_existing

    def checked_request(self) -> tuple[str, str, dict[str, Any], dict[str, str] | None]:
        """Name, type, configs and labels, checked before anything is sent."""
        name = require_text("name", self.name, hint="unique within the workspace")
        store_type = one_of("type", self.type, STORE_TYPES, case="upper")
        if not isinstance(self.configs, Mapping):
            raise PixxelConfigError(
                "configs must be an object such as {'bucket': 'my-bucket', 'region': 'us-east-2', "
                "'path_prefix': 'data/'}"
            )
        configs = dict(self.configs)
        unknown = sorted(set(configs) - {"bucket", "region", "path_prefix"})
        if unknown:
            raise PixxelConfigError(
                f"configs has unknown keys {unknown}; it takes bucket, region and path_prefix. Credentials "
                "belong in the secrets_conn_id connection, never in configs"
            )
        missing = [key for key in ("bucket", "region") if not str(configs.get(key) or "").strip()]
        if missing:
            raise PixxelConfigError(f"configs needs {' and '.join(missing)}")
        labels = None
        if self.labels is not None:
            if not isinstance(self.labels, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.labels.items()
            ):
                raise PixxelConfigError("labels must map strings to strings, e.g. {'team': 'agri'}")
            labels = dict(self.labels)
        if not isinstance(self.secrets_conn_id, str) or not self.secrets_conn_id.strip():
            raise PixxelConfigError(
                "secrets_conn_id must name the Airflow connection holding the bucket secrets"
            )
        return name, store_type, configs, labels

    def _existing(self, name: str, store_type: str, configs: Mapping[str, Any]) -> Existing:
        """The store of this name, which must point at the same bucket. Its secrets are never read."""

        def find(conflict: Any) -> list[Mapping[str, Any]]:
            return [
                store
                for store in (self.hook.list_stores() or {}).get("stores") or []
                if isinstance(store, Mapping) and store.get("name") == name
            ]

        def differences(store: Mapping[str, Any]) -> list[str]:
            existing_configs = store.get("configs") or {}
            return [
                f"{key} is {existing!r}, not {wanted!r}"
                for key, existing, wanted in (
                    ("type", str(store.get("type") or "").upper(), store_type),
                    ("bucket", existing_configs.get("bucket"), configs.get("bucket")),
                    ("region", existing_configs.get("region"), configs.get("region")),
                )
                if existing != wanted
            ]

        return Existing.named(
            "store",
            name,
            rule="store names are unique in the workspace",
            find=find,
            differences=differences,
            mismatch_fix="choose another name, or delete it with PixxelDeleteStoreOperator",
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_pixxel.hooks.reconcile import create_exactly_once, store_lookup

        name, store_type, configs, labels = self.checked_request()
        secrets = store_secrets(self.secrets_conn_id, store_type)
        store, adopted = create_or_adopt(
            self.log,
            self._existing(name, store_type, configs),
            lambda: create_exactly_once(
                self.hook,
                lambda: self.hook.create_store(
                    name=name, type=store_type, configs=configs, secrets=secrets, labels=labels
                ),
                store_lookup(self.hook, name),
            ),
            reuse_existing=self.reuse_existing,
        )
        store_id = str((store or {}).get("id") or "")
        if not store_id:
            raise AirflowFailException(
                f"Pixxel created store {name!r} but returned no id; find it with list_stores()"
            )
        if not adopted:
            self.log.info(
                "Created %s store %r (id %s) for bucket %s", store_type, name, store_id, configs["bucket"]
            )
        return {"store_id": store_id, "name": name, "type": store_type, "created": not adopted}


class PixxelDeleteStoreOperator(PixxelBaseOperator):
    """Remove a registered store. Deliveries already made stay in the bucket.

    Returns ``{"store_id", "deleted"}``; ``deleted`` is False when the store was already gone and
    ``missing_ok`` is True.

    :param store_id: the store's id.
    :param missing_ok: succeed when no such store exists (default True), so the task can be retried.

    Example::

        PixxelDeleteStoreOperator(
            task_id="drop_store", store_id="{{ ti.xcom_pull('create_store')['store_id'] }}"
        )
    """

    template_fields: Sequence[str] = ("pixxel_conn_id", "store_id")

    def __init__(self, *, store_id: str, missing_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store_id = store_id
        self.missing_ok = missing_ok

    def execute(self, context: Context) -> dict[str, Any]:
        store_id = require_text("store_id", self.store_id, hint="see PixxelHook.list_stores()")
        try:
            self.hook.delete_store(store_id)
        except PixxelNotFoundError:
            if not self.missing_ok:
                raise
            self.log.info("Store %s does not exist; nothing to delete", store_id)
            return {"store_id": store_id, "deleted": False}
        self.log.info("Deleted store %s", store_id)
        return {"store_id": store_id, "deleted": True}
