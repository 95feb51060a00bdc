"""The enums and field sets the operators check come from the contract; cross-field rules stay by hand."""

from __future__ import annotations

from airflow_provider_pixxel.operators import orders
from airflow_provider_pixxel.spec import enum_values, field_names


def test_the_tasking_fields_are_order_item_fields_of_the_contract() -> None:
    # Which fields make an item tasking is the hand-written rule; each must still be a contract field.
    assert orders.TASKING_FIELDS.issubset(field_names(orders.ORDER_ITEM_SCHEMA))
    assert "item_ids" in field_names(orders.ORDER_ITEM_SCHEMA) - orders.TASKING_FIELDS


def test_the_enums_the_provider_checks_are_in_the_contract() -> None:
    assert orders.NOT_APPLICABLE in enum_values(orders.ORDER_ITEM_SCHEMA, "recurrence")
    assert orders.NOT_APPLICABLE in enum_values(orders.ORDER_ITEM_SCHEMA, "delivery_speed")
    assert enum_values("atlas.SLDRequest", "visualization_modes") == enum_values("atlas.VisualizationMode")
    assert set(enum_values("atlas.ExpressionType")) == {"composite", "index", "grayscale"}
    assert set(enum_values("domain.BucketType")) == {"S3", "GCS", "AZBLOB"}
