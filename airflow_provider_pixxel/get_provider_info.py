"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_pixxel import __version__

INTEGRATION = "Pixxel"

HOOK_MODULES = [
    "airflow_provider_pixxel.hooks.download",
    "airflow_provider_pixxel.hooks.operations",
    "airflow_provider_pixxel.hooks.pagination",
    "airflow_provider_pixxel.hooks.pixxel",
    "airflow_provider_pixxel.hooks.pixxel_async",
    "airflow_provider_pixxel.hooks.reconcile",
    "airflow_provider_pixxel.hooks.retry",
    "airflow_provider_pixxel.hooks.sessions",
    "airflow_provider_pixxel.hooks.spend",
    "airflow_provider_pixxel.hooks.transport",
    "airflow_provider_pixxel.hooks.transport_deadline",
]
OPERATOR_MODULES = [
    "airflow_provider_pixxel.operators.aoi",
    "airflow_provider_pixxel.operators.base",
    "airflow_provider_pixxel.operators.catalog",
    "airflow_provider_pixxel.operators.downloads",
    "airflow_provider_pixxel.operators.get_or_create",
    "airflow_provider_pixxel.operators.images",
    "airflow_provider_pixxel.operators.indices",
    "airflow_provider_pixxel.operators.insights",
    "airflow_provider_pixxel.operators.jobs",
    "airflow_provider_pixxel.operators.orders",
    "airflow_provider_pixxel.operators.purchase",
    "airflow_provider_pixxel.operators.stores",
    "airflow_provider_pixxel.operators.visualizations",
]
SENSOR_MODULES = [
    "airflow_provider_pixxel.sensors.aoi",
    "airflow_provider_pixxel.sensors.base",
    "airflow_provider_pixxel.sensors.catalog",
    "airflow_provider_pixxel.sensors.downloads",
    "airflow_provider_pixxel.sensors.insights",
    "airflow_provider_pixxel.sensors.jobs",
    "airflow_provider_pixxel.sensors.orders",
    "airflow_provider_pixxel.sensors.visualizations",
]
TRIGGER_MODULES = [
    "airflow_provider_pixxel.triggers.catalog",
    "airflow_provider_pixxel.triggers.poller",
    "airflow_provider_pixxel.triggers.status",
]
EXTRA_LINKS: list[str] = [
    "airflow_provider_pixxel.links.PixxelAuroraAOILink",
    "airflow_provider_pixxel.links.PixxelAuroraCatalogDownloadLink",
    "airflow_provider_pixxel.links.PixxelAuroraDeliveryLink",
    "airflow_provider_pixxel.links.PixxelAuroraInsightLink",
    "airflow_provider_pixxel.links.PixxelAuroraJobLink",
    "airflow_provider_pixxel.links.PixxelAuroraOrderLink",
    "airflow_provider_pixxel.links.PixxelAuroraVisualizationLink",
]


def get_provider_info() -> dict[str, Any]:
    """What ``airflow providers list`` / ``airflow providers hooks`` show, and the connection form."""

    def section(modules: list[str]) -> list[dict[str, Any]]:
        return [{"integration-name": INTEGRATION, "python-modules": modules}] if modules else []

    return {
        "package-name": "airflow-provider-pixxel",
        "name": "Pixxel",
        "description": "Tasking and archive orders, workflow jobs, insights, index visualizations and "
        "downloads on the Pixxel Earth-observation platform (Aurora API).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.pixxel.space",
                "tags": ["service"],
            }
        ],
        "hooks": section(HOOK_MODULES),
        "operators": section(OPERATOR_MODULES),
        "sensors": section(SENSOR_MODULES),
        "triggers": section(TRIGGER_MODULES),
        "extra-links": EXTRA_LINKS,
        "connection-types": [
            {
                "connection-type": "pixxel",
                "hook-class-name": "airflow_provider_pixxel.hooks.pixxel.PixxelHook",
                "hook-name": "Pixxel",
                "conn-fields": {
                    "project_id": {
                        "label": "Default project ID",
                        "schema": {"type": ["string", "null"]},
                        "description": "Used by calls that need a project when none is given.",
                    },
                    "auth_prefix": {
                        "label": "Authorization prefix",
                        "schema": {"type": ["string", "null"], "default": ""},
                        "description": "Empty: the key is sent as 'Authorization: <key>' as the Pixxel "
                        "docs show. Set 'Bearer' only if your deployment requires it.",
                    },
                    "timeout": {
                        "label": "Timeouts (connect, read) in seconds",
                        "schema": {"type": ["string", "null"], "default": "10,60"},
                    },
                    "call_timeout": {
                        "label": "Longest one API call may take, answer included (seconds)",
                        "schema": {"type": ["number", "null"], "default": 300},
                        "description": "Bounds a whole attempt, where the read timeout bounds each read: "
                        "an answer trickling in byte by byte ends in a timeout.",
                    },
                    "max_response_mib": {
                        "label": "Largest API answer read into memory (MiB)",
                        "schema": {"type": ["number", "null"], "default": 32},
                        "description": "A larger answer is refused, without being read further.",
                    },
                    "aurora_url": {
                        "label": "Aurora web app URL (for task links)",
                        "schema": {"type": ["string", "null"], "default": "https://aurora.pixxel.space"},
                    },
                    "budget_tokens": {
                        "label": "Spend budget per period (tokens), shared by every DAG on this connection",
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                        "description": "Before an order, workflow job or insight is bought, its price plus "
                        "what the project spent in the period (read from the API) must fit. Empty: none.",
                    },
                    "budget_period": {
                        "label": "Budget period (UTC calendar)",
                        "schema": {"type": ["string", "null"], "enum": ["day", "week", "month", None]},
                        "description": "day, week (from Monday) or month (the default).",
                    },
                    "max_retries": {
                        "label": "Retries on rate limits and transient errors",
                        "schema": {"type": ["integer", "null"], "default": 5},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"host": "API base URL", "password": "API key"},
                    "placeholders": {
                        "host": "https://api.pixxel.space",
                        "password": "Aurora > Workspace Settings > API",
                    },
                },
            }
        ],
    }
