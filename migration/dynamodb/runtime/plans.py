"""What an access pattern turns into, worked out once and pure: the key slots of the
table or index it reads, its key condition's shape, the parameters it uses."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from migration.contract.key_conditions import (
    KeyConditionError,
    KeyConditionShape,
    key_condition_shape,
)
from migration.contract.keys import KeyTemplate, Placeholder
from migration.contract.model import (
    AccessPattern,
    Entity,
    Index,
    Table,
)
from migration.dynamodb.expressions import (
    Condition,
    Increment,
)
from migration.dynamodb.limits import (
    PARTITION_KEY_BYTES,
    SORT_KEY_BYTES,
)
from migration.dynamodb.runtime.errors import PatternNotRunnable
from migration.mapping.values import AttributeValue, Item, dynamodb_number

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeySlot:
    attribute: str
    template: KeyTemplate
    type: str
    partition: bool

    @property
    def limit(self) -> int:
        return PARTITION_KEY_BYTES if self.partition else SORT_KEY_BYTES


@dataclass(frozen=True)
class Target:
    """The table or index a read goes to, and its key design for this entity."""

    index: Index | None
    partition: tuple[KeySlot, ...]  # one slot per key attribute (GSIs may have up to 4)
    sort: tuple[KeySlot, ...]
    key_attributes: tuple[str, ...]  # what a LastEvaluatedKey holds
    multi_entity: bool
    partial: bool  # the index does not project every attribute


@dataclass(frozen=True)
class Plan:
    pattern: AccessPattern
    target: Target
    key: KeyConditionShape | None  # how a Query's parameters make its key condition
    filter_params: frozenset[str]
    partial: bool
    mixed: bool
    unused: tuple[str, ...] = ()  # declared, but no part of the request uses them
    # Entity parameters validated as partial models: a PutItem's own entity when other
    # entities' parameters may fill its missing fields.
    partial_params: frozenset[str] = frozenset()

    @property
    def range_params(self) -> tuple[str, ...]:
        return self.key.range_params if self.key is not None else ()


    @property
    def range_slot(self) -> KeySlot | None:
        """The sort-key attribute the range condition applies to."""
        if self.key is None or self.key.range_attribute is None:
            return None
        return self.target.sort[self.key.range_attribute]


@dataclass(frozen=True)
class PutSpec:
    """A checked put: the item, the values it holds, and the condition it needs."""

    item: Item
    values: Mapping[str, Any]
    condition: Condition | None
    expected_version: int | None


@dataclass(frozen=True)
class UpdateSpec:
    """A checked update: the item's key, what to SET and REMOVE, and the condition."""

    key: Item
    set_values: Mapping[str, AttributeValue | Increment]
    remove: tuple[str, ...]
    condition: Condition


def number_key(text: str) -> AttributeValue:
    return {"N": dynamodb_number(Decimal(text))}


def index_key_slots_of(index: Index, pk: tuple[KeyTemplate, ...], sk: tuple[KeyTemplate, ...]
                        ) -> tuple[tuple[KeySlot, ...], tuple[KeySlot, ...]]:
    partition = tuple(KeySlot(a.name, t, a.type, True)
                      for a, t in zip(index.partition_attributes, pk, strict=True))
    sort = tuple(KeySlot(a.name, t, a.type, False)
                 for a, t in zip(index.sort_attributes, sk, strict=True))
    return partition, sort


def range_placeholder(template: KeyTemplate, range_params: set[str],
                       supplied: Iterable[str] = ()) -> int | None:
    given = set(supplied) - range_params
    for i, part in enumerate(template.parts):
        if isinstance(part, Placeholder) and part.name not in given:
            return i
    return None



class Planner:
    """Works out, once per pattern, what an access pattern of one entity turns into: its
    target table or index, its key condition's shape, the parameters it uses. Pure: it
    reads the contract and sends nothing."""

    def __init__(self, entity: Entity, table: Table, partition: KeySlot, sort: KeySlot | None):
        self.entity = entity
        self.table = table
        self._partition = partition
        self._sort = sort
        self._multi_entity = len(table.entities) > 1
        self._plans: dict[str, Plan] = {}

    def plan(self, pattern: AccessPattern) -> Plan:
        plan = self._plans.get(pattern.name)
        if plan is None:
            plan = self._plans[pattern.name] = self._make(pattern)
        return plan

    def _target(self, pattern: AccessPattern) -> Target:
        table, entity = self.table, self.entity
        index = table.index(pattern.index_name) if pattern.index_name else None
        key_attributes = [table.partition_key] + ([table.sort_key] if table.sort_key else [])
        if index is None:
            return Target(None, (self._partition,), (self._sort,) if self._sort else (),
                           tuple(key_attributes), self._multi_entity, False)
        keys = entity.index_key(index.name)
        assert keys is not None
        partition, sort = index_key_slots_of(index, keys.pk, keys.sk)
        if index.kind != "GSI":
            partition = (self._partition,)  # an LSI shares the table's partition key
        names = [a.name for a in index.key_attributes]
        key_attributes += names
        # DynamoDB indexes every item that holds the index's key attributes: an entity
        # whose fields are those attributes shares the index without a mapping.
        sharing = [e for e in table.entities.values() if e.index_key(index.name) is not None
                   or all(e.field(n) is not None for n in names)]
        return Target(index, partition, sort, tuple(dict.fromkeys(key_attributes)),
                       len(sharing) > 1, index.projection != "ALL")

    def _make(self, pattern: AccessPattern) -> Plan:
        owner = f"{self.entity.name}.{pattern.name}"
        target = self._target(pattern)
        filter_params: set[str] = set()
        if pattern.filter_expression is not None:
            for cond in pattern.filter_expression.conditions:
                filter_params |= {p for p in (cond.param, cond.param2, *cond.params) if p}
        scalars = [p.name for p in pattern.parameters if p.type != "entity"]
        shape: KeyConditionShape | None = None
        if pattern.operation == "Query":
            try:
                shape = key_condition_shape([s.template for s in target.partition],
                                            [s.template for s in target.sort],
                                            [s.attribute for s in target.sort], scalars,
                                            filter_params, pattern.range_condition)
            except KeyConditionError as err:
                raise PatternNotRunnable(owner, err.reason) from err
            if shape.range_attribute is not None:
                self._check_range(owner, pattern, target.sort[shape.range_attribute],
                                  shape.range_params)
        unused = shape.unused if shape is not None else ()
        if pattern.operation == "Scan":
            unused = tuple(n for n in scalars if n not in filter_params)
        if unused:
            # The schema declares them but the pattern has no place for them (no key
            # condition, range_condition or filter uses them): they are checked, never
            # sent. `migrate contract validate` reports the same as warnings.
            log.warning("%s: parameters %s are not used by the request (no key condition, "
                        "range_condition or filter_expression refers to them)", owner,
                        ", ".join(unused))
        if pattern.operation in ("GetItem", "DeleteItem", "UpdateItem"):
            for slot, missing in self.given_key_attributes(pattern):
                # `migrate contract validate` reports the same as a warning.
                log.warning("%s: takes %s, a key attribute, as given: %s of %r cannot be rebuilt "
                            "from the parameters", owner, slot.attribute,
                            ", ".join(f"{{{name}}}" for name in missing), slot.template.source)
        mixed = pattern.return_type == "mixed_data"
        partial = bool(pattern.projection) or target.partial
        own = [p.name for p in pattern.parameters
               if p.type == "entity" and (p.entity_type or self.entity.name) == self.entity.name]
        others = [p for p in pattern.parameters if p.type == "entity" and p.name not in own]
        partial_params = frozenset(own) if pattern.operation == "PutItem" and others else frozenset()
        return Plan(pattern=pattern, target=target, key=shape,
                     filter_params=frozenset(filter_params), partial=partial, mixed=mixed,
                     unused=unused, partial_params=partial_params)

    def _check_range(self, owner: str, pattern: AccessPattern, slot: KeySlot,
                     range_params: tuple[str, ...]) -> None:
        if slot.type != "S":
            kind = "number" if slot.type == "N" else "binary"
            if slot.template.single_field is None:
                raise PatternNotRunnable(owner, f"a {kind} sort key must be a bare {{field}}")
            if pattern.range_condition == "begins_with" and slot.type == "N":
                raise PatternNotRunnable(owner, "begins_with does not apply to a number sort key")
            return
        if range_placeholder(slot.template, set(range_params)) is None:
            raise PatternNotRunnable(owner, f"sort key template {slot.template.source!r} "
                                     "has no placeholder left for the range parameter")

    def given_key_attributes(self, pattern: AccessPattern) -> list[tuple[KeySlot, list[str]]]:
        """The table's key attributes this single-item pattern takes as given (a parameter
        of that name), with the template placeholders no parameter supplies."""
        scalars = {p.name for p in pattern.parameters if p.type != "entity"}
        out = []
        for slot in (self._partition, self._sort):
            if slot is None or slot.attribute not in scalars or \
                    slot.attribute in slot.template.fields:
                continue
            missing = [name for name in slot.template.fields if name not in scalars]
            if missing:
                out.append((slot, missing))
        return out


