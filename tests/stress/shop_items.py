"""Reading the shop's DynamoDB tables whole, as plain values, for the stress tests' checks."""

from __future__ import annotations

from typing import Any

from migration.mapping.values import from_attribute
from migration.shop.dual_write import Shop


def scan(shop: Shop, table: str) -> list[dict[str, Any]]:
    """Every item of one of the shop's tables, read consistently."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": shop.ddb.table_name(table), "ConsistentRead": True}
    while True:
        answer = shop.ddb.call("Scan", **params)
        items.extend(answer.get("Items", []))
        if "LastEvaluatedKey" not in answer:
            return items
        params["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: from_attribute(value) for name, value in item.items()}
