"""Stores: credentials only from a connection, masked, never returned; reuse by name; delete."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pixxel.exceptions import PixxelConfigError, PixxelNotFoundError
from airflow_provider_pixxel.operators import stores as stores_module
from airflow_provider_pixxel.operators.stores import PixxelCreateStoreOperator, PixxelDeleteStoreOperator
from tests.operators.adoption import logged, race
from tests.operators.pixxel_sim import context
from tests.task_runner import run_task

ACCESS_KEY = "AKIAEXAMPLEKEY123456"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CONFIGS = {"bucket": "agri-bucket", "region": "eu-west-1", "path_prefix": "pixxel/"}


@pytest.fixture
def bucket_connection(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BUCKET_SECRETS",
        json.dumps({"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY}),
    )
    return "bucket_secrets"


def store_op(conn_id: str, **kwargs: Any) -> PixxelCreateStoreOperator:
    kwargs.setdefault("name", "agri-deliveries")
    kwargs.setdefault("type", "s3")
    kwargs.setdefault("configs", CONFIGS)
    return PixxelCreateStoreOperator(task_id="create_store", secrets_conn_id=conn_id, **kwargs)


def test_store_is_created_with_secrets_from_the_connection_and_masked(
    sim, bucket_connection, monkeypatch, caplog
):
    masked: list[str] = []
    real_mask = stores_module.mask_secret

    def recording_mask(value: str) -> None:
        masked.append(value)
        real_mask(value)

    monkeypatch.setattr(stores_module, "mask_secret", recording_mask)
    caplog.set_level(logging.DEBUG)

    result = run_task(store_op(bucket_connection, labels={"team": "agri"}), context()).result

    assert result["created"] is True
    assert result["type"] == "S3"
    store = sim.state.stores[result["store_id"]]
    assert store["name"] == "agri-deliveries"
    assert sim.state.store_secrets[result["store_id"]] == {
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
    }
    assert set(masked) >= {ACCESS_KEY, SECRET_KEY}
    assert SECRET_KEY not in json.dumps(result)
    assert SECRET_KEY not in caplog.text
    assert "secrets" not in PixxelCreateStoreOperator.template_fields


def test_existing_store_of_the_same_name_is_reused(sim, bucket_connection):
    first = run_task(store_op(bucket_connection), context()).result
    second = run_task(store_op(bucket_connection), context()).result

    assert second == {**first, "created": False}
    assert len(sim.state.requests("POST", "/v0/stores")) == 1


def test_a_daily_task_registers_its_store_once_and_every_later_run_adopts_it(sim, bucket_connection):
    assert bucket_connection == "bucket_secrets"
    # [START howto_get_or_create_store]
    deliveries = PixxelCreateStoreOperator(
        task_id="deliveries",
        name="agri-deliveries",
        type="S3",
        configs={"bucket": "agri-bucket", "region": "eu-west-1", "path_prefix": "pixxel/"},
        secrets_conn_id="bucket_secrets",  # the credentials: only ever from a connection
        reuse_existing=True,  # the default: later runs adopt the store, sending no secrets
    )
    # [END howto_get_or_create_store]

    results = [run_task(deliveries, context()).result for _ in range(3)]

    assert [result["created"] for result in results] == [True, False, False]
    assert len({result["store_id"] for result in results}) == 1
    assert len(sim.state.requests("POST", "/v0/stores")) == 1


def test_reuse_refuses_a_store_pointing_elsewhere(sim, bucket_connection):
    run_task(store_op(bucket_connection), context())
    with pytest.raises(PixxelConfigError, match="bucket is 'agri-bucket', not 'other-bucket'"):
        run_task(store_op(bucket_connection, configs={**CONFIGS, "bucket": "other-bucket"}), context())


def test_duplicate_name_without_reuse_fails(sim, bucket_connection):
    run_task(store_op(bucket_connection), context())
    with pytest.raises(AirflowFailException, match="already exists"):
        run_task(store_op(bucket_connection, reuse_existing=False), context())


def test_adopting_a_store_sends_no_secrets_and_logs_and_returns_none(sim, bucket_connection, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    first_context, second_context = context(), context()
    first = run_task(store_op(bucket_connection), first_context).result

    second = run_task(store_op(bucket_connection), second_context).result

    assert second == {**first, "created": False}
    log = logged(caplog, capfd)
    assert f"Adopted the store named 'agri-deliveries', id {first['store_id']}" in log  # the log is seen
    assert len(sim.state.requests("POST", "/v0/stores")) == 1  # the adopting run sent no secrets
    everything_kept = json.dumps([second, second_context["ti"].xcoms, first, first_context["ti"].xcoms])
    for secret in (ACCESS_KEY, SECRET_KEY):
        assert secret not in log
        assert secret not in everything_kept


def test_runs_racing_to_create_the_same_store_end_with_one(sim, bucket_connection, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    seeded_stores = set(sim.state.stores)

    runs = race([store_op(bucket_connection) for _ in range(4)], "create_store")

    (store_id,) = sim.state.stores.keys() - seeded_stores
    assert sorted(run.result["created"] for run in runs) == [False, False, False, True]
    assert {run.result["store_id"] for run in runs} == {store_id}
    assert sorted(request.status for request in sim.state.requests("POST", "/v0/stores")) == [
        200,
        409,
        409,
        409,
    ]
    log = logged(caplog, capfd)
    assert log.count(f"Adopted the store named 'agri-deliveries', id {store_id}") == 3
    kept = json.dumps([(run.result, run.context["ti"].xcoms) for run in runs])
    for secret in (ACCESS_KEY, SECRET_KEY):
        assert secret not in log
        assert secret not in kept


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "ftp"}, "type must be one of S3, GCS, AZBLOB"),
        ({"configs": {"bucket": "b"}}, "configs needs region"),
        ({"configs": {**CONFIGS, "secret_access_key": "x"}}, "Credentials belong in the secrets_conn_id"),
        ({"type": "GCS"}, "lacks the GCS store secrets project_id:"),
        ({"labels": {"n": 1}}, "labels must map strings to strings"),
    ],
)
def test_bad_store_requests_are_refused_before_any_request(sim, bucket_connection, kwargs, message):
    with pytest.raises(PixxelConfigError, match=message):
        run_task(store_op(bucket_connection, **kwargs), context())
    assert sim.state.requests() == []


def test_gcs_key_given_as_a_json_object_is_sent_as_text(sim, monkeypatch):
    key = {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----abc"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_GCS_SECRETS",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"project": "p-1", "keyfile_dict": key}}),
    )
    result = run_task(store_op("gcs_secrets", type="GCS", name="gcs-store"), context()).result

    assert sim.state.store_secrets[result["store_id"]] == {
        "project_id": "p-1",
        "service_account_credentials": json.dumps(key),
    }


def test_delete_store_then_delete_again(sim, bucket_connection):
    store_id = run_task(store_op(bucket_connection), context()).result["store_id"]

    first = run_task(PixxelDeleteStoreOperator(task_id="drop", store_id=store_id), context()).result
    second = run_task(PixxelDeleteStoreOperator(task_id="drop", store_id=store_id), context()).result

    assert first == {"store_id": store_id, "deleted": True}
    assert second == {"store_id": store_id, "deleted": False}
    assert store_id not in sim.state.stores
    with pytest.raises(PixxelNotFoundError):
        run_task(PixxelDeleteStoreOperator(task_id="drop", store_id=store_id, missing_ok=False), context())
