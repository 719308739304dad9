"""Compare what MySQL says DynamoDB should hold with what it holds, in memory.

Small datasets only (tests, the demo, spot checks): `reconcile` is the
scalable, spill-to-disk version for whole tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.errors import ItemError
from migration.mapping.item import ItemMapper
from migration.mapping.values import AttributeValue, Item
from migration.source.records import RecordReader

ItemKey = tuple[str, tuple[tuple[str, str], ...]]


def item_key(table: str, item: Mapping[str, AttributeValue], key_names: Iterable[str]) -> ItemKey:
    return table, tuple(sorted((k, str(next(iter(item[k].values())))) for k in key_names))


def normalized(value: AttributeValue) -> Any:
    """A comparable form: numbers by value (1.50 == 1.5), sets unordered."""
    (kind, inner), = value.items()
    if kind == "N":
        return ("N", Decimal(inner))
    if kind == "NS":
        return ("NS", frozenset(Decimal(v) for v in inner))
    if kind in ("SS", "BS"):
        return (kind, frozenset(inner))
    if kind == "M":
        return ("M", tuple(sorted((k, normalized(v)) for k, v in inner.items())))
    if kind == "L":
        return ("L", tuple(normalized(v) for v in inner))
    if kind == "B":
        return ("B", bytes(inner))
    return (kind, inner)


def field_differences(expected: Mapping[str, AttributeValue], actual: Mapping[str, AttributeValue],
                      ignore: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Attributes whose values differ: {name: {"expected": ..., "actual": ...}}."""
    skip = set(ignore)
    out: dict[str, dict[str, Any]] = {}
    for name in (set(expected) | set(actual)) - skip:
        left, right = expected.get(name), actual.get(name)
        if (left is None) != (right is None) or (
                left is not None and right is not None and normalized(left) != normalized(right)):
            out[name] = {"expected": left, "actual": right}
    return out


@dataclass
class Comparison:
    expected: int = 0
    actual: int = 0
    missing: list[ItemKey] = field(default_factory=list)
    extra: list[ItemKey] = field(default_factory=list)
    mismatched: dict[ItemKey, dict[str, dict[str, Any]]] = field(default_factory=dict)
    collisions: list[ItemKey] = field(default_factory=list)
    unmappable: list[ItemError] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.mismatched or self.collisions
                    or self.unmappable)

    def summary(self) -> str:
        return (f"expected {self.expected}, found {self.actual}: {len(self.missing)} missing, "
                f"{len(self.extra)} extra, {len(self.mismatched)} mismatched, "
                f"{len(self.collisions)} collisions, {len(self.unmappable)} unmappable")


def expected_items(contract: Contract, engine: Engine, ddb: DynamoDB,
                   entities: Iterable[str] | None = None) -> tuple[dict[ItemKey, Item], Comparison]:
    """Every item (guards included) the MySQL rows map to, by key; collisions noted."""
    wanted = set(entities) if entities is not None else None
    items: dict[ItemKey, Item] = {}
    result = Comparison()
    with engine.connect() as conn:
        for entity in contract.source_entities():
            if wanted is not None and entity.name not in wanted:
                continue
            reader, mapper = RecordReader(contract, entity), ItemMapper(contract, entity)
            table = ddb.table_name(entity.table)
            names = [mapper.partition_key] + ([mapper.sort_key] if mapper.sort_key else [])
            for chunk in reader.stream(conn, chunk_size=2000):
                for record in chunk:
                    try:
                        mapped = mapper.items(record)
                    except ItemError as err:
                        result.unmappable.append(err)
                        continue
                    for item in mapped:
                        key = item_key(table, item, names)
                        if key in items:
                            result.collisions.append(key)
                        items[key] = item
    return items, result


def actual_items(contract: Contract, ddb: DynamoDB) -> dict[ItemKey, Item]:
    """Every item of the contract's tables, by key (a full scan)."""
    items: dict[ItemKey, Item] = {}
    for table in contract.tables:
        name = ddb.table_name(table.name)
        names = [table.partition_key] + ([table.sort_key] if table.sort_key else [])
        params: dict[str, Any] = {"TableName": name}
        while True:
            page = ddb.call("Scan", **params)
            for item in page.get("Items", []):
                items[item_key(name, item, names)] = item
            if "LastEvaluatedKey" not in page:
                break
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items


def compare_all(contract: Contract, engine: Engine, ddb: DynamoDB,
                entities: Iterable[str] | None = None) -> Comparison:
    """MySQL's expected items against DynamoDB's, attribute by attribute.

    With `entities`, items of other entities found in DynamoDB are ignored.
    """
    expected, result = expected_items(contract, engine, ddb, entities)
    actual = actual_items(contract, ddb)
    type_attribute = contract.entity_type_attribute
    if entities is not None:
        wanted_types = {contract.entity(e).entity_type for e in entities} | {"_unique"}
        actual = {k: v for k, v in actual.items()
                  if v.get(type_attribute, {}).get("S") in wanted_types}
    result.expected, result.actual = len(expected), len(actual)
    for key, item in expected.items():
        stored = actual.get(key)
        if stored is None:
            result.missing.append(key)
            continue
        diff = field_differences(item, stored, ignore=[contract.version_attribute])
        if diff:
            result.mismatched[key] = diff
    result.extra = [key for key in actual if key not in expected]
    return result
