"""Ping, projects, satellites, bandsets and stores."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from airflow_provider_pixxel.simulator import progress
from airflow_provider_pixxel.simulator.routing import Call, operation
from airflow_provider_pixxel.simulator.state import (
    SimulatorState,
    bad_request,
    conflict,
    format_seconds,
    not_found,
)

# Credentials each bucket type needs, as the API's store documentation lists them.
STORE_SECRET_KEYS = {
    "S3": ("access_key_id", "secret_access_key"),
    "AZBLOB": ("account_name", "tenant_id", "client_id", "client_secret"),
    "GCS": ("project_id", "service_account_credentials"),
}


def register(router: APIRouter, state: SimulatorState) -> None:
    @operation(router, state, "GET", "/ping")
    def ping(state: SimulatorState, call: Call) -> Any:
        return "pong"

    @operation(router, state, "GET", "/v0/projects")
    def list_projects(state: SimulatorState, call: Call) -> Any:
        page_num = call.int_query("page_num", 1)
        page_size = call.int_query("page_size", 10)
        if page_num < 1 or page_size < 1:
            raise bad_request("page_num and page_size must be 1 or more")
        projects = list(state.projects.values())
        start = (page_num - 1) * page_size
        return {"count": len(projects), "projects": projects[start : start + page_size]}

    @operation(router, state, "GET", "/v0/projects/{id}")
    def get_project(state: SimulatorState, call: Call) -> Any:
        project = state.projects.get(call.path_params["id"])
        if project is None:
            raise not_found("project", call.path_params["id"])
        return {"project": {k: v for k, v in project.items() if k != "members_count"}}

    @operation(router, state, "GET", "/v0/satellites")
    def list_satellites(state: SimulatorState, call: Call) -> Any:
        return {"satellites": list(state.satellites.values())}

    @operation(router, state, "GET", "/v0/bandsets")
    def list_bandsets(state: SimulatorState, call: Call) -> Any:
        return {"bandsets": list(state.bandsets.values())}

    @operation(router, state, "GET", "/v0/stores")
    def list_stores(state: SimulatorState, call: Call) -> Any:
        return {"stores": list(state.stores.values())}

    @operation(router, state, "POST", "/v0/stores")
    def create_store(state: SimulatorState, call: Call) -> Any:
        body = call.body
        name = body["name"].strip()
        if not name:
            raise bad_request("name: must not be empty")
        if any(s["name"] == name for s in state.stores.values()):
            raise conflict(f"a store named {name!r} already exists", details={"name": name})
        secrets = body["secrets"]
        missing = [key for key in STORE_SECRET_KEYS[body["type"]] if not secrets.get(key)]
        if missing:
            raise bad_request(
                f"secrets: a {body['type']} store needs {', '.join(missing)}",
                details={"missing": missing},
            )
        if not body["configs"]["bucket"].strip() or not body["configs"]["region"].strip():
            raise bad_request("configs: bucket and region must not be empty")
        store_id = state.new_id()
        now = format_seconds(state.now())
        store = {
            "id": store_id,
            "name": name,
            "type": body["type"],
            "configs": {
                "bucket": body["configs"]["bucket"],
                "region": body["configs"]["region"],
                "path_prefix": body["configs"].get("path_prefix", ""),
            },
            "labels": dict(body.get("labels") or {}),
            "created_by": state.user_id,
            "created_at": now,
            "updated_at": now,
        }
        state.stores[store_id] = store
        state.store_secrets[store_id] = dict(secrets)
        state.record_created("store", store_id, store)
        return store

    @operation(router, state, "DELETE", "/v0/stores/{id}", status=204)
    def delete_store(state: SimulatorState, call: Call) -> Any:
        store_id = call.path_params["id"]
        if store_id not in state.stores:
            raise not_found("store", store_id)
        busy = [
            d["delivery_id"]
            for d in state.deliveries.values()
            if d["cloud_delivery"]["config"] == store_id
            and progress.delivery_status(state, d) in ("CREATED", "IN_PROGRESS")
        ]
        if busy:
            raise conflict(
                "the store is in use by deliveries that have not finished", details={"delivery_ids": busy}
            )
        del state.stores[store_id]
        state.store_secrets.pop(store_id, None)
        return None
