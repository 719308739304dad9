"""Entity repositories: every access pattern of a contract (or a plain seed-002 schema),
run by name against DynamoDB.

Owns the validation of a pattern's parameters (before any call), the
translation of each declared pattern into one DynamoDB operation (GetItem,
PutItem, DeleteItem, UpdateItem, Query, Scan, BatchGetItem, BatchWriteItem)
with keys built from the templates, sort-key range conditions, filter
expressions, projections and consistent reads, the resumable cursors of
paginated results, optimistic locking on entities that declare a
`version_field`, and turning items back into typed entity models.

Items are built only by `ItemMapper.to_item` and read only through
`ItemMapper.values`, so a repository writes exactly what backfill and
dual-write write. Every request goes through `DynamoDB.call`."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from migration.contract.keys import KeyTemplate, Placeholder
from migration.contract.model import (
    AccessPattern,
    Contract,
    Entity,
    Table,
)
from migration.dynamodb.batches import until_processed
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.expressions import (
    Between,
    Compare,
    Condition,
    Function,
    Increment,
    Names,
    Or,
    Path,
    UnboundParameter,
    Value,
    all_of,
    filter_condition,
    key_conditions,
    projection_expression,
    render,
    update_expression,
    value,
)
from migration.dynamodb.limits import (
    BATCH_GET_KEYS,
    BATCH_WRITE_ITEMS,
)
from migration.dynamodb.models import EntityModel, ModelSet, model_fields
from migration.dynamodb.runtime.errors import (
    ItemAlreadyExists,
    ParameterError,
    PatternNotRunnable,
    StoredItemInvalid,
    UnknownEntity,
    UnknownPattern,
    VersionConflict,
)
from migration.dynamodb.runtime.pagination import Page, decode_cursor, encode_cursor
from migration.dynamodb.runtime.parameters import Options, bind_parameters, coerce_entity, validation_text
from migration.dynamodb.runtime.plans import (
    KeySlot,
    Plan,
    Planner,
    PutSpec,
    UpdateSpec,
    index_key_slots_of,
    number_key,
    range_placeholder,
)
from migration.errors import (
    ConditionFailed,
    KeyTemplateError,
)
from migration.mapping.item import ItemMapper
from migration.mapping.key_values import KeyValueError, bytes_key, text_key
from migration.mapping.values import AttributeValue, Item, converter_for, dynamodb_number

BATCH_ATTEMPTS = 8
# Sorts after any character a key can hold, so "ORDER#x#" + AFTER_ALL is past
# every key that starts with "ORDER#x#".
AFTER_ALL = "\U0010ffff"
log = logging.getLogger(__name__)


class Repository:
    """One entity's repository: its access patterns by name, plus plain CRUD.

    `run("get_user_by_email", email="a@b")` validates the parameters and sends
    the pattern's request; single_entity patterns return a model or None,
    entity_list patterns a `Page` of models, success_flag patterns a bool.
    Thread-safe.
    """

    def __init__(self, contract: Contract, entity: str | Entity, ddb: DynamoDB, *,
                 models: ModelSet | None = None):
        name = entity if isinstance(entity, str) else entity.name
        try:
            self.entity = contract.entity(name)
        except KeyError:
            raise UnknownEntity(name, (e.name for e in contract.entities())) from None
        self.contract = contract
        self.ddb = ddb
        self.models = models or ModelSet(contract)
        self.model = self.models.full(self.entity.name)
        self.table: Table = contract.table_of(self.entity)
        self.mapper = ItemMapper(contract, self.entity)
        self.type_attribute = contract.entity_type_attribute
        self._types = self.table.attribute_types()
        self._field_types = {f.name: f.type for f in self.entity.fields}
        self._item_types = {f.name: f.item_type for f in self.entity.fields}
        self._partition, self._sort = self._primary_slots()
        self._index_key_slots = self._index_slots()
        self._slots = [self._partition] + ([self._sort] if self._sort else []) + self._index_key_slots
        self._model_names = {f.name for f in model_fields(self.entity)}
        self._multi_entity = len(self.table.entities) > 1
        self._planner = Planner(self.entity, self.table, self._partition, self._sort)
        self._mappers: dict[str, ItemMapper] = {}
        self._others: dict[str, Repository] = {}

    # -- public API -----------------------------------------------------------------
    @property
    def patterns(self) -> tuple[str, ...]:
        """Names of the entity's access patterns, in contract order."""
        return tuple(p.name for p in self.entity.access_patterns)

    def pattern(self, name: str) -> AccessPattern:
        """The declared pattern; UnknownPattern lists the known ones."""
        found = self.entity.access_pattern(name)
        if found is None:
            raise UnknownPattern(self.entity.name, name, self.patterns)
        return found

    def run(self, pattern: str, /, *, limit: int | None = None, cursor: str | None = None,
            consistent_read: bool | None = None, descending: bool = False,
            updates: Mapping[str, Any] | None = None, expected_version: int | None = None,
            **params: Any) -> Any:
        """Run an access pattern by name with its parameters as keyword arguments.

        Options: `limit` (most results in one page) and `cursor` (resume after a
        page) for lists; `consistent_read` (refused on a GSI); `descending`
        (Query in reverse sort-key order); `updates` (more fields to SET in an
        UpdateItem); `expected_version` (optimistic locking on UpdateItem and
        DeleteItem). A parameter whose name is one of these options can be given
        through `run_with`.
        """
        options = Options(limit=limit, cursor=cursor, consistent_read=consistent_read,
                          descending=descending, updates=updates,
                          expected_version=expected_version)
        return self.run_with(pattern, params, options)

    def run_with(self, pattern: str, params: Mapping[str, Any],
                 options: Options | None = None) -> Any:
        """`run` with the parameters as one mapping (what generated code calls)."""
        declared = self.pattern(pattern)
        opts = options or Options()
        owner = f"{self.entity.name}.{declared.name}"
        opts.check(owner, declared.operation)
        plan = self._planner.plan(declared)
        values = bind_parameters(owner, declared.parameters, params, self.models, self.entity.name,
                                 partial=plan.partial_params)
        handler = {
            "GetItem": self._get_item, "PutItem": self._put_item,
            "DeleteItem": self._delete_item, "UpdateItem": self._update_item,
            "Query": self._query, "Scan": self._scan, "BatchGetItem": self._batch_get,
            "BatchWriteItem": self._batch_write,
        }[declared.operation]
        return handler(plan, owner, values, opts)

    def get(self, key: Mapping[str, Any], *, consistent_read: bool = False) -> EntityModel | None:
        """The item with this key (values of the key placeholders), or None."""
        owner = f"{self.entity.name}.get"
        request: dict[str, Any] = {"TableName": self._table_name(),
                                   "Key": self._primary_key(owner, key)}
        if consistent_read:
            request["ConsistentRead"] = True
        item = self.ddb.call("GetItem", **request).get("Item")
        return self.from_item(item) if item and self._mine(item) else None

    def put(self, entity: EntityModel | Mapping[str, Any], *,
            condition: Condition | None = None) -> EntityModel:
        """Write the entity (replacing any item with its key) and return it as written.

        On an entity with a `version_field`, a version of None/0 means "new"
        (the item must not exist) and any other version must match the stored
        one; the stored version is then one higher. A failed check raises
        VersionConflict.
        """
        owner = f"{self.entity.name}.put"
        model = coerce_entity(owner, "entity", self.entity.name, entity, self.models)
        return self._put(owner, model.values(), condition)

    def create(self, entity: EntityModel | Mapping[str, Any]) -> EntityModel:
        """Write the entity only if no item has its key; ItemAlreadyExists otherwise."""
        owner = f"{self.entity.name}.create"
        model = coerce_entity(owner, "entity", self.entity.name, entity, self.models)
        return self._put(owner, model.values(), None, creating=True)

    def update(self, key: Mapping[str, Any], updates: Mapping[str, Any], *,
               expected_version: int | None = None) -> EntityModel | None:
        """SET (or REMOVE, for None) the given fields of an existing item; returns the
        item as it is afterwards, or None when there is no such item."""
        owner = f"{self.entity.name}.update"
        Options(expected_version=expected_version).check(owner)
        return self._update(owner, dict(key), dict(updates), expected_version)

    def delete(self, key: Mapping[str, Any], *,
               expected_version: int | None = None) -> EntityModel | None:
        """Delete the item; returns it as it was, or None when there was none."""
        owner = f"{self.entity.name}.delete"
        Options(expected_version=expected_version).check(owner)
        return self._delete(owner, dict(key), expected_version)

    def to_item(self, entity: EntityModel | Mapping[str, Any]) -> Item:
        """The item an entity model maps to (through the one row-to-item function)."""
        model = coerce_entity(f"{self.entity.name}.to_item", "entity", self.entity.name, entity,
                              self.models)
        return self.mapper.to_item(self.mapper.record_of(model.values()))

    def from_item(self, item: Mapping[str, AttributeValue], *,
                  partial: bool = False) -> EntityModel:
        """The model of an item: its fields, plus key values parsed from its keys."""
        values = self.mapper.values(item)
        self._fill_from_keys(item, values)
        model = self.models.partial(self.entity.name) if partial else self.model
        try:
            return model.model_validate(values)
        except ValidationError as err:
            key = {name: item[name] for name in (self.table.partition_key, self.table.sort_key)
                   if name and name in item}
            raise StoredItemInvalid(self.entity.name, key, validation_text(err)) from err

    def _mine(self, item: Mapping[str, AttributeValue] | None) -> bool:
        # On a table shared by entities a key can hold another entity's item.
        return bool(item) and (not self._multi_entity or self.mapper.is_mine(item or {}))

    def key_from_values(self, values: Mapping[str, Any]) -> Item:
        """The primary key (wire form) for the values of the key placeholders."""
        return self._primary_key(f"{self.entity.name}.key", values)

    # -- keys -----------------------------------------------------------------------
    def _table_name(self) -> str:
        return self.ddb.table_name(self.table.name)

    def _primary_slots(self) -> tuple[KeySlot, KeySlot | None]:
        partition = KeySlot(self.table.partition_key, self.entity.pk,
                             self._types[self.table.partition_key], True)
        sort = None
        if self.table.sort_key and self.entity.sk is not None:
            sort = KeySlot(self.table.sort_key, self.entity.sk, self._types[self.table.sort_key],
                            False)
        return partition, sort

    def _index_slots(self) -> list[KeySlot]:
        # An index attribute that is the table's own key attribute is the item's key:
        # nothing to build or to update for it.
        primary = {self.table.partition_key, self.table.sort_key}
        slots = []
        for keys in self.entity.index_keys:
            index = self.table.index(keys.index)
            assert index is not None
            partition, sort = index_key_slots_of(index, keys.pk, keys.sk)
            slots += [slot for slot in (*partition, *sort) if slot.attribute not in primary]
        return slots

    def _key_value(self, owner: str, slot: KeySlot, values: Mapping[str, Any]) -> AttributeValue:
        name = slot.template.single_field
        try:
            if slot.type == "B":
                return bytes_key(values.get(name) if name else None, slot.template.source,
                                 slot.limit)
            try:
                text = slot.template.format(values)
            except KeyTemplateError as err:
                raise ParameterError(owner, err.field,
                                     f"cannot build {slot.attribute}: {err.reason}") from err
            return text_key(text, slot.type, slot.limit)
        except KeyValueError as err:
            reason = f" would be over {err.limit} bytes" if err.limit is not None else err.reason
            raise ParameterError(owner, name, f"{slot.attribute}{reason}") from err

    def _primary_key(self, owner: str, values: Mapping[str, Any]) -> Item:
        key = {self._partition.attribute: self._primary_value(owner, self._partition, values)}
        if self._sort is not None:
            key[self._sort.attribute] = self._primary_value(owner, self._sort, values)
        return key

    def _primary_value(self, owner: str, slot: KeySlot, values: Mapping[str, Any]) -> AttributeValue:
        """A key attribute built from its template's placeholders, or, when they are not
        all given, the value given for the key attribute itself (a parameter named
        `sort_key` after the table's sort key): the key as it is."""
        given = values.get(slot.attribute) if slot.attribute not in slot.template.fields else None
        if given is None or all(values.get(name) is not None for name in _needed(slot.template)):
            built = self._key_value(owner, slot, values)
            if given is not None and given != _plain_key(built):
                raise ParameterError(owner, slot.attribute, f"is {given!r}, but the key "
                                     f"{slot.template.source!r} makes of the other values is "
                                     f"{_plain_key(built)!r}")
            return built
        return self._given_key(owner, slot, given)

    def _given_key(self, owner: str, slot: KeySlot, given: Any) -> AttributeValue:
        if slot.type == "B":
            if not isinstance(given, bytes | bytearray) or not given:
                raise ParameterError(owner, slot.attribute, "is a binary key and needs non-empty "
                                     f"bytes, got {type(given).__name__}")
            return {"B": bytes(given)}
        if slot.type == "N":
            try:
                return number_key(str(given))
            except (InvalidOperation, ValueError) as err:
                raise ParameterError(owner, slot.attribute, f"is a number key; {given!r} is not a "
                                     "number DynamoDB holds") from err
        if not isinstance(given, str) or not given:
            raise ParameterError(owner, slot.attribute, f"is a string key; got {given!r}")
        if len(given.encode("utf-8")) > slot.limit:
            raise ParameterError(owner, slot.attribute, f"would be over {slot.limit} bytes")
        if not slot.template.matches(given):
            log.warning("%s: %s %r does not match %r: it is used as given, and no %s item can "
                        "have that key unless another writer made it", owner, slot.attribute,
                        given, slot.template.source, self.entity.name)
        return {"S": given}

    def _fill_from_keys(self, item: Mapping[str, AttributeValue], values: dict[str, Any]) -> None:
        # Key values (and fields a projection left out) are recovered from the keys.
        wanted_types = dict(self._field_types)
        for slot in self._slots:
            attribute = item.get(slot.attribute)
            if attribute is None or not any(n not in values for n in slot.template.fields):
                continue
            (kind, inner), = attribute.items()
            if kind not in ("S", "N"):
                continue
            try:
                parsed = slot.template.parse(str(inner))
            except KeyTemplateError:
                continue
            for name, text in parsed.items():
                if name in values or text is None:
                    continue
                converted = _from_key_text(text, wanted_types.get(name, "string"))
                if converted is not None:
                    values[name] = converted

    def _mapper_for_type(self, type_value: str | None) -> ItemMapper | None:
        for entity in self.table.entities.values():
            if entity.entity_type == type_value:
                mapper = self._mappers.get(entity.name)
                if mapper is None:
                    mapper = self._mappers[entity.name] = ItemMapper(self.contract, entity)
                return mapper
        return None

    # -- sort-key conditions -----------------------------------------------------------
    def _range_bound(self, owner: str, plan: Plan, values: Mapping[str, Any], param: str,
                     upper: bool) -> AttributeValue:
        sort = plan.range_slot
        assert sort is not None
        raw = values[param]
        if sort.type == "B":
            if not isinstance(raw, bytes | bytearray):
                raise ParameterError(owner, param, f"{sort.attribute} is binary; "
                                     f"{type(raw).__name__} is not bytes")
            return {"B": bytes(raw)}
        if sort.type == "N":
            try:
                number = raw if isinstance(raw, Decimal) else Decimal(str(raw))
                if isinstance(raw, bool) or not number.is_finite():
                    raise InvalidOperation
            except (InvalidOperation, ValueError) as err:
                raise ParameterError(owner, param, f"{sort.attribute} is a number; "
                                     f"{raw!r} is not a number") from err
            try:
                return {"N": dynamodb_number(number)}
            except ValueError as err:  # a number DynamoDB cannot hold exactly
                raise ParameterError(owner, param, f"{sort.attribute}: {err}") from err
        template = sort.template
        supplied = {n: values[n] for n in template.fields if n in values and n not in plan.range_params}
        position = range_placeholder(template, set(plan.range_params), supplied)
        assert position is not None
        target = template.parts[position]
        assert isinstance(target, Placeholder)
        # Only the placeholders before the range one: prefix() then stops right after it.
        before = {p.name for p in template.parts[:position] if isinstance(p, Placeholder)}
        rendered = {**{n: v for n, v in supplied.items() if n in before}, target.name: raw}
        try:
            last = position + 1 == len(template.parts)
            text = template.format(rendered) if last else template.prefix(rendered)
        except KeyTemplateError as err:
            raise ParameterError(owner, param, f"cannot compare with {sort.attribute}: {err.reason}") from err
        following = template.parts[position + 1] if position + 1 < len(template.parts) else None
        if isinstance(following, str):
            # prefix() also wrote the literal after the placeholder; the bound stops
            # at the value, and a partial key's upper bound reaches past every key
            # that shares it.
            text = text[: len(text) - len(following)]
            if upper:
                text += following + AFTER_ALL
        return {"S": text}

    def _range_condition(self, owner: str, plan: Plan, values: Mapping[str, Any]) -> Condition:
        sort = plan.range_slot
        assert sort is not None
        op = plan.pattern.range_condition
        path = Path.of(sort.attribute)
        if op == "between":
            low_param, high_param = plan.range_params
            low = self._range_bound(owner, plan, values, low_param, upper=False)
            high = self._range_bound(owner, plan, values, high_param, upper=True)
            return Between(path, Value(low), Value(high))
        (param,) = plan.range_params
        if op == "begins_with":
            return Function("begins_with", path,
                            Value(self._range_bound(owner, plan, values, param, upper=False)))
        assert op is not None
        bound = self._range_bound(owner, plan, values, param, upper=op in (">", "<="))
        return Compare(path, op, Value(bound))

    def _sort_conditions(self, owner: str, plan: Plan, values: Mapping[str, Any]) -> list[Condition]:
        """The sort-key part of a Query's key condition: equalities on the sort-key
        attributes from the left, then the range condition or a `begins_with` on the
        first attribute only partly given; refuses, before any call, a value for an
        attribute after one that is missing."""
        sort = plan.target.sort
        key = plan.key
        assert key is not None
        if key.range_attribute is not None:
            conditions: list[Condition] = []
            for slot in sort[:key.range_attribute]:
                missing = [n for n in slot.template.fields if values.get(n) is None]
                if missing:
                    raise ParameterError(owner, missing[0], f"is needed for sort key attribute "
                                         f"{slot.attribute}: the range condition applies to "
                                         f"{sort[key.range_attribute].attribute} after it, and "
                                         "DynamoDB compares sort-key attributes left to right")
                conditions.append(self._equal(owner, slot, values))
            return [*conditions, self._range_condition(owner, plan, values)]
        # mixed_data reads every item of the partition, whatever its sort key.
        return [] if plan.mixed else self._sort_equalities(owner, plan, values)

    def _equal(self, owner: str, slot: KeySlot, values: Mapping[str, Any]) -> Condition:
        return Compare(Path.of(slot.attribute), "=", Value(self._key_value(owner, slot, values)))

    def _sort_equalities(self, owner: str, plan: Plan, values: Mapping[str, Any]) -> list[Condition]:
        # Without a range condition an entity on a shared table still reads only its
        # own items: its sort keys start with the template's literal prefix (longer
        # when parameters give leading placeholders; the full key when all are given).
        sort = plan.target.sort
        conditions: list[Condition] = []
        covered = {n for slot in plan.target.partition for n in slot.template.fields}
        for position, slot in enumerate(sort):
            template = slot.template
            supplied = {n: values[n] for n in template.fields if values.get(n) is not None}
            covered |= set(template.fields)
            if set(template.fields) <= set(supplied):
                conditions.append(self._equal(owner, slot, supplied))
                continue
            if slot.type == "S":
                try:
                    prefix = template.prefix(supplied)
                except KeyTemplateError as err:
                    raise ParameterError(owner, err.field, err.reason) from err
                if prefix:
                    conditions.append(Function("begins_with", Path.of(slot.attribute),
                                               Value({"S": prefix})))
            for later in sort[position + 1:]:
                named = [n for n in later.template.fields
                         if values.get(n) is not None and n not in covered]
                if named:
                    raise ParameterError(owner, named[0], f"gives sort key attribute "
                                         f"{later.attribute}, but {slot.attribute} before it is "
                                         "not given: DynamoDB compares sort-key attributes left "
                                         "to right")
            break
        return conditions

    def _type_filter(self, plan: Plan) -> Condition | None:
        if not plan.target.multi_entity or plan.mixed:
            return None
        return Compare(Path.of(self.type_attribute), "=", Value({"S": self.entity.entity_type}))

    def _user_filter(self, owner: str, plan: Plan, values: Mapping[str, Any]) -> Condition | None:
        expression = plan.pattern.filter_expression
        if expression is None:
            return None
        try:
            return filter_condition(expression, values, self._field_types, self._item_types)
        except (UnboundParameter, ValueError, TypeError, ArithmeticError) as err:
            raise ParameterError(owner, None, f"cannot build the filter: {err}") from err

    # -- reads ------------------------------------------------------------------------
    def _consistent(self, owner: str, plan: Plan, opts: Options) -> bool:
        wanted = plan.pattern.consistent_read if opts.consistent_read is None else opts.consistent_read
        index = plan.target.index
        if wanted and index is not None and index.kind == "GSI":
            raise ParameterError(owner, "consistent_read", f"DynamoDB does not support strongly "
                                 f"consistent reads on global secondary index {index.name}")
        return wanted

    def _projection(self, plan: Plan, names: Names, request: dict[str, Any]) -> None:
        if not plan.pattern.projection:
            return
        # The key attributes come along for the cursor (and the key values they hold).
        attributes = list(plan.pattern.projection) + list(plan.target.key_attributes)
        attributes.append(self.type_attribute)
        request["ProjectionExpression"] = projection_expression(names, attributes)

    def _query(self, plan: Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
        target = plan.target
        names = Names()
        partition = [(slot.attribute, self._key_value(owner, slot, values))
                     for slot in target.partition]
        sort = self._sort_conditions(owner, plan, values)
        request: dict[str, Any] = {"TableName": self._table_name()}
        request["KeyConditionExpression"] = render(key_conditions(partition, sort), names)
        condition = all_of([self._user_filter(owner, plan, values), self._type_filter(plan)])
        if condition is not None:
            request["FilterExpression"] = render(condition, names)
        if target.index is not None:
            request["IndexName"] = target.index.name
        if self._consistent(owner, plan, opts):
            request["ConsistentRead"] = True
        if opts.descending:
            request["ScanIndexForward"] = False
        self._projection(plan, names, request)
        request.update(names.params())
        return self._collect("Query", plan, owner, request, opts)

    def _scan(self, plan: Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
        names = Names()
        request: dict[str, Any] = {"TableName": self._table_name()}
        condition = all_of([self._user_filter(owner, plan, values), self._type_filter(plan)])
        if condition is not None:
            request["FilterExpression"] = render(condition, names)
        if plan.target.index is not None:
            request["IndexName"] = plan.target.index.name
        if self._consistent(owner, plan, opts):
            request["ConsistentRead"] = True
        if opts.descending:
            raise ParameterError(owner, "descending", "a Scan has no order to reverse")
        self._projection(plan, names, request)
        request.update(names.params())
        return self._collect("Scan", plan, owner, request, opts)

    def _collect(self, operation: str, plan: Plan, owner: str, request: dict[str, Any],
                 opts: Options) -> Any:
        single = plan.pattern.return_type in ("single_entity", "success_flag")
        want = 1 if single else (opts.limit or plan.pattern.limit)
        start = None
        if opts.cursor is not None:
            start = decode_cursor(owner, opts.cursor, plan.target.key_attributes)
        items: list[Item] = []
        cursor_key: Item | None = None
        filtered = "FilterExpression" in request
        while True:
            page_request = dict(request)
            if start is not None:
                page_request["ExclusiveStartKey"] = start
            if want is not None and not filtered:
                # Without a filter every evaluated item is returned, so the page size is exact.
                page_request["Limit"] = want - len(items)
            response = self.ddb.call(operation, **page_request)
            page = response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            stopped = False
            for position, item in enumerate(page):
                items.append(item)
                if want is not None and len(items) >= want:
                    stopped = True
                    at_end = position == len(page) - 1 and last is None
                    cursor_key = None if at_end else {a: item[a] for a in plan.target.key_attributes
                                                      if a in item}
                    break
            if stopped:
                break
            if last is None:
                break
            start = last
        models = [self._decode(plan, item) for item in items]
        return_type = plan.pattern.return_type
        if return_type == "single_entity":
            return models[0] if models else None
        if return_type == "success_flag":
            return bool(models)
        if return_type == "void":
            return None
        cursor = encode_cursor(owner, cursor_key) if cursor_key else None
        return Page(models, cursor)

    def _decode(self, plan: Plan, item: Item) -> Any:
        if not plan.mixed:
            return self.from_item(item, partial=plan.partial)
        type_value = item.get(self.type_attribute, {}).get("S")
        mapper = self._mapper_for_type(type_value)
        if mapper is None or mapper.entity.name == self.entity.name:
            return self.from_item(item, partial=plan.partial)
        other = self._others.get(mapper.entity.name)
        if other is None:
            other = Repository(self.contract, mapper.entity, self.ddb, models=self.models)
            self._others[mapper.entity.name] = other
        return other.from_item(item, partial=plan.partial)

    def _get_item(self, plan: Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
        source = self._key_source(owner, plan.pattern, values)
        request: dict[str, Any] = {"TableName": self._table_name(),
                                   "Key": self._primary_key(owner, source)}
        if self._consistent(owner, plan, opts):
            request["ConsistentRead"] = True
        names = Names()
        self._projection(plan, names, request)
        request.update(names.params())
        item = self.ddb.call("GetItem", **request).get("Item")
        found = self.from_item(item, partial=plan.partial) if item and self._mine(item) else None
        if found is not None and not self._matches(plan.pattern, values, found):
            found = None
        return self._shape_single(plan.pattern, found)

    def _matches(self, pattern: AccessPattern, values: Mapping[str, Any], found: EntityModel) -> bool:
        # GetItem takes no filter: parameters that name non-key fields (a game's
        # verification code) must equal the stored values for the item to count.
        stored = found.values()
        keys = set(self.entity.key_fields)
        for param in pattern.parameters:
            if param.type == "entity" or param.name in keys or param.name not in self._field_types:
                continue
            if stored.get(param.name) != values.get(param.name):
                return False
        return True

    @staticmethod
    def _shape_single(pattern: AccessPattern, found: Any) -> Any:
        if pattern.return_type == "success_flag":
            return found is not None
        if pattern.return_type == "entity_list":
            return Page([found] if found is not None else [])
        if pattern.return_type == "void":
            return None
        return found

    def _key_source(self, owner: str, pattern: AccessPattern, values: Mapping[str, Any]) -> dict[str, Any]:
        # Key placeholders come from scalar parameters, else from this entity's parameter.
        source: dict[str, Any] = {}
        for param in pattern.parameters:
            if param.type == "entity" and (param.entity_type or self.entity.name) == self.entity.name:
                model = values.get(param.name)
                if isinstance(model, EntityModel):
                    source.update(model.values())
        for name in self.entity.key_fields:
            if name in values and values[name] is not None:
                source[name] = values[name]
        for slot, _ in self._planner.given_key_attributes(pattern):
            if values.get(slot.attribute) is not None:
                source[slot.attribute] = values[slot.attribute]
        return source

    def _batch_get(self, plan: Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
        keys = self._batch_keys(owner, plan.pattern, values)
        unique: dict[str, Item] = {}
        for key in keys:
            unique.setdefault(json.dumps(key, sort_keys=True, default=str), key)
        table = self._table_name()
        consistent = self._consistent(owner, plan, opts)
        found: dict[str, Item] = {}
        pending = list(unique.values())
        for chunk_start in range(0, len(pending), BATCH_GET_KEYS):
            chunk = pending[chunk_start:chunk_start + BATCH_GET_KEYS]
            request: dict[str, Any] = {"Keys": chunk}
            if consistent:
                request["ConsistentRead"] = True
            names = Names()
            self._projection(plan, names, request)
            request.update(names.params())
            for item in self._batch_get_chunk(table, request):
                found[json.dumps({a: item[a] for a in chunk[0]}, sort_keys=True, default=str)] = item
        ordered = [found[k] for k in unique if k in found and self._mine(found[k])]
        models = [self.from_item(item, partial=plan.partial) for item in ordered]
        if plan.pattern.return_type == "single_entity":
            return models[0] if models else None
        if plan.pattern.return_type == "success_flag":
            return len(models) == len(unique)
        return Page(models)

    def _batch_get_chunk(self, table: str, request: dict[str, Any]) -> Iterator[Item]:
        for answer in until_processed(
                "BatchGetItem", lambda left: self.ddb.call("BatchGetItem", RequestItems=left),
                {table: request}, lambda left: left, attempts=BATCH_ATTEMPTS):
            yield from answer.get("Responses", {}).get(table, [])

    def _batch_keys(self, owner: str, pattern: AccessPattern, values: Mapping[str, Any]) -> list[Item]:
        """Keys of a batch read or delete: one per row of the array parameters (an array
        named after a key placeholder, or its plural, or an array of objects/entities);
        scalar parameters apply to every row."""
        rows = self._batch_rows(owner, pattern, values)
        return [self._primary_key(owner, row) for row in rows]

    def _batch_rows(self, owner: str, pattern: AccessPattern,
                    values: Mapping[str, Any]) -> list[dict[str, Any]]:
        shared: dict[str, Any] = {}
        columns: dict[str, list[Any]] = {}
        rows: list[dict[str, Any]] | None = None
        key_fields = self.entity.key_fields
        for param in pattern.parameters:
            given = values.get(param.name)
            if given is None:
                continue
            if param.type == "array":
                elements = list(given)
                if elements and all(isinstance(e, Mapping | EntityModel) for e in elements):
                    rows = [e.values() if isinstance(e, EntityModel) else dict(e) for e in elements]
                    continue
                column = next((k for k in key_fields if param.name in (k, k + "s", k + "_list")), None)
                if column is None:
                    raise ParameterError(owner, param.name, "an array parameter of a batch names a "
                                         f"key placeholder ({', '.join(key_fields)}) or its plural")
                columns[column] = elements
            elif param.type == "entity":
                model = given
                if isinstance(model, EntityModel):
                    rows = (rows or []) + [model.values()]
            elif param.name in key_fields:
                shared[param.name] = given
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ParameterError(owner, None, "the array parameters of a batch must be equally long, "
                                 f"got {sorted(lengths)}")
        if columns:
            count = lengths.pop()
            rows = [{**shared, **{k: v[i] for k, v in columns.items()}} for i in range(count)]
        elif rows is not None:
            rows = [{**shared, **row} for row in rows]
        elif shared:
            rows = [shared]
        else:
            rows = []
        return rows

    # -- writes -----------------------------------------------------------------------
    def _record_for_put(self, owner: str, pattern: AccessPattern,
                        values: Mapping[str, Any]) -> dict[str, Any]:
        # This entity's parameter gives the item; other entities' parameters fill the
        # fields it leaves empty (the denormalised copies a single-table design keeps),
        # and scalar parameters that are fields set them. The closest relative (most
        # fields in common) fills first: an order history's status is the order's,
        # not the user's.
        own: dict[str, Any] | None = None
        relatives: list[dict[str, Any]] = []
        names = self._model_names
        for param in pattern.parameters:
            given = values.get(param.name)
            if param.type != "entity" or not isinstance(given, EntityModel):
                continue
            if (param.entity_type or self.entity.name) == self.entity.name and own is None:
                own = given.values()
            else:
                relatives.append({n: v for n, v in given.values().items() if n in names})
        related: dict[str, Any] = {}
        for relative in sorted(relatives, key=len, reverse=True):
            for name, v in relative.items():
                if v is not None:
                    related.setdefault(name, v)
        record = dict(related)
        for name, v in (own or {}).items():
            if v is not None or name not in record:
                record[name] = v
        for param in pattern.parameters:
            if (param.type != "entity" and param.name in self._field_types
                    and values.get(param.name) is not None):
                record[param.name] = values[param.name]
        if not record:
            raise ParameterError(owner, None, f"nothing to write: no {self.entity.name} parameter "
                                 "and no field parameters")
        try:
            return self.model.model_validate(record).values()
        except ValidationError as err:
            raise ParameterError(owner, None, f"not a valid {self.entity.name}: "
                                 f"{validation_text(err)}") from err

    def _put_item(self, plan: Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
        record = self._record_for_put(owner, plan.pattern, values)
        written = self._put(owner, record, None)
        if plan.pattern.return_type == "success_flag":
            return True
        if plan.pattern.return_type == "void":
            return None
        if plan.pattern.return_type == "entity_list":
            return Page([written])
        return written

    def put_spec(self, values: Mapping[str, Any], condition: Condition | None = None, *,
                 creating: bool = False) -> PutSpec:
        """What writing these values means: the item (its version moved on, for a
        versioned entity) and the condition (the caller's, the version check, and for
        `creating` the guard that no item has the key)."""
        record = dict(values)
        version_field = self.entity.version_field
        conditions = [condition]
        expected: int | None = None
        if creating:
            conditions.append(Function("attribute_not_exists", Path.of(self.table.partition_key)))
        if version_field is not None:
            expected = 0 if creating else (record.get(version_field) or 0)
            if expected:
                conditions.append(Compare(Path.of(version_field), "=", value(expected, "integer")))
            elif not creating:
                conditions.append(Function("attribute_not_exists", Path.of(self.table.partition_key)))
            record[version_field] = expected + 1
        return PutSpec(item=self.mapper.to_item(self.mapper.record_of(record)), values=record,
                       condition=all_of(conditions), expected_version=expected)

    def _put(self, owner: str, record: dict[str, Any], condition: Condition | None,
             creating: bool = False) -> EntityModel:
        spec = self.put_spec(record, condition, creating=creating)
        request: dict[str, Any] = {"TableName": self._table_name(), "Item": spec.item}
        if spec.condition is not None:
            names = Names()
            request["ConditionExpression"] = render(spec.condition, names)
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            request.update(names.params())
        try:
            self.ddb.call("PutItem", **request)
        except ConditionFailed as err:
            key = {k: spec.values.get(k) for k in self.entity.key_fields}
            if creating:
                raise ItemAlreadyExists(self.entity.name, key, err.item) from err
            if self.entity.version_field is not None:
                raise VersionConflict("PutItem", self.entity.name, key, spec.expected_version,
                                      self._stored_version(err.item), err.item) from err
            raise
        return self.model.model_validate(spec.values)

    def _stored_version(self, item: Mapping[str, Any] | None) -> int | None:
        if item is None or self.entity.version_field is None:
            return None
        stored = item.get(self.entity.version_field)
        return int(stored["N"]) if stored and "N" in stored else None

    def _delete_item(self, plan: Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
        source = self._key_source(owner, plan.pattern, values)
        old = self._delete(owner, source, opts.expected_version,
                           mine_only=bool(self._planner.given_key_attributes(plan.pattern)))
        return self._shape_single(plan.pattern, old)

    def _only_mine(self) -> Condition | None:
        """On a table of several entities, a key given as it is may hold another entity's
        item: the write must leave that one alone (no item is fine)."""
        if not self._multi_entity:
            return None
        return Or((Function("attribute_not_exists", Path.of(self.table.partition_key)),
                   Compare(Path.of(self.type_attribute), "=",
                           Value({"S": self.entity.entity_type}))))

    def _delete(self, owner: str, key_values: Mapping[str, Any],
                expected_version: int | None, *, mine_only: bool = False) -> EntityModel | None:
        request: dict[str, Any] = {"TableName": self._table_name(),
                                   "Key": self._primary_key(owner, key_values),
                                   "ReturnValues": "ALL_OLD"}
        conditions: list[Condition | None] = [self._only_mine() if mine_only else None]
        if expected_version is not None:
            self._require_version(owner)
            assert self.entity.version_field is not None
            conditions.append(Compare(Path.of(self.entity.version_field), "=",
                                      value(expected_version, "integer")))
        condition = all_of(conditions)
        if condition is not None:
            names = Names()
            request["ConditionExpression"] = render(condition, names)
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            request.update(names.params())
        try:
            response = self.ddb.call("DeleteItem", **request)
        except ConditionFailed as err:
            if err.item is not None and not self._mine(err.item):
                return None  # another entity's item holds the key: nothing of ours to delete
            key = {k: key_values.get(k) for k in self.entity.key_fields}
            raise VersionConflict("DeleteItem", self.entity.name, key, expected_version,
                                  self._stored_version(err.item), err.item) from err
        old = response.get("Attributes")
        return self.from_item(old) if old else None

    def _require_version(self, owner: str) -> None:
        if self.entity.version_field is None:
            raise ParameterError(owner, "expected_version", f"{self.entity.name} declares no "
                                 "version_field, so there is no version to expect")

    def _update_item(self, plan: Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
        pattern = plan.pattern
        key_fields = set(self.entity.key_fields)
        given_keys = self._planner.given_key_attributes(pattern)
        source = self._key_source(owner, pattern, values)
        key_values = {k: v for k, v in source.items()
                      if k in key_fields or any(k == slot.attribute for slot, _ in given_keys)}
        updates: dict[str, Any] = {}
        for param in pattern.parameters:
            given = values.get(param.name)
            if param.type == "entity" and isinstance(given, EntityModel):
                if (param.entity_type or self.entity.name) == self.entity.name:
                    updates.update({k: v for k, v in given.values().items()
                                    if k not in key_fields and k in self._field_types})
            elif (param.name in self._field_types and param.name not in key_fields
                  and param.name not in key_values and param.name in values):
                updates[param.name] = given
        updates.update(opts.updates or {})
        found = self._update(owner, key_values, updates, opts.expected_version,
                             mine_only=bool(given_keys))
        return self._shape_single(pattern, found)

    def update_spec(self, owner: str, key_values: Mapping[str, Any], updates: Mapping[str, Any],
                    expected_version: int | None = None, *, mine_only: bool = False) -> UpdateSpec:
        """What an update of these fields means, checked before any call: the key, the
        attributes to SET (index keys built from updated fields included) and REMOVE,
        and the condition (the item exists; its version, if one is expected)."""
        key = self._primary_key(owner, key_values)
        version_field = self.entity.version_field
        if expected_version is not None:
            self._require_version(owner)
        checked = self._checked_updates(owner, key_values, updates)
        if not checked:
            raise ParameterError(owner, "updates", "nothing to update: give fields to set "
                                 f"(fields of {self.entity.name}: "
                                 f"{', '.join(sorted(self._field_types))})")
        set_values: dict[str, AttributeValue | Increment] = {}
        remove: list[str] = []
        for name, new in checked.items():
            converted = None if new is None else converter_for(self._field_types[name])(new)
            if converted is None:
                remove.append(name)
            else:
                set_values[name] = converted
        self._index_key_updates(owner, key_values, checked, set_values, remove)
        conditions: list[Condition | None] = [
            Function("attribute_exists", Path.of(self.table.partition_key)),
            self._only_mine() if mine_only else None]
        if version_field is not None:
            if expected_version is not None:
                conditions.append(Compare(Path.of(version_field), "=",
                                          value(expected_version, "integer")))
                set_values[version_field] = {"N": str(expected_version + 1)}
            else:
                set_values[version_field] = Increment(1)
        combined = all_of(conditions)
        assert combined is not None
        return UpdateSpec(key=key, set_values=set_values, remove=tuple(remove), condition=combined)

    def _update(self, owner: str, key_values: dict[str, Any], updates: dict[str, Any],
                expected_version: int | None, *, mine_only: bool = False) -> EntityModel | None:
        spec = self.update_spec(owner, key_values, updates, expected_version, mine_only=mine_only)
        names = Names()
        request: dict[str, Any] = {
            "TableName": self._table_name(), "Key": spec.key,
            "UpdateExpression": update_expression(names, spec.set_values, spec.remove),
            "ConditionExpression": render(spec.condition, names),
            "ReturnValues": "ALL_NEW", "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        request.update(names.params())
        try:
            response = self.ddb.call("UpdateItem", **request)
        except ConditionFailed as err:
            if err.item is not None and not self._mine(err.item):
                return None  # another entity's item holds the key: nothing of ours to update
            if expected_version is not None:
                raise VersionConflict("UpdateItem", self.entity.name, key_values, expected_version,
                                      self._stored_version(err.item), err.item) from err
            if err.item is None:
                return None
            raise
        return self.from_item(response.get("Attributes", {}))

    def _checked_updates(self, owner: str, key_values: Mapping[str, Any],
                         updates: Mapping[str, Any]) -> dict[str, Any]:
        primary = set(self.entity.pk.fields) | set(self.entity.sk.fields if self.entity.sk else ())
        checked: dict[str, Any] = {}
        partial = self.models.partial(self.entity.name)
        by_attribute = {f.alias or name: name for name, f in partial.model_fields.items()}
        for name, new in updates.items():
            if name not in self._field_types:
                raise ParameterError(owner, name, f"is not a field of {self.entity.name}")
            if name in primary or name in (self.table.partition_key, self.table.sort_key):
                raise ParameterError(owner, name, "is part of the primary key; an update cannot "
                                     "change it (delete and put instead)")
            if name == self.entity.version_field:
                raise ParameterError(owner, name, "is the version field; it changes by itself")
            fld = self.entity.field(name)
            if new is None and fld is not None and fld.required:
                raise ParameterError(owner, name, "is a required field; it cannot be removed")
            try:
                validated = partial.model_validate({name: new})
            except ValidationError as err:
                raise ParameterError(owner, name, validation_text(err)) from err
            checked[name] = getattr(validated, by_attribute[name])
        return checked

    def _index_key_updates(self, owner: str, key_values: Mapping[str, Any],
                           updates: Mapping[str, Any], set_values: dict[str, AttributeValue | Increment],
                           remove: list[str]) -> None:
        # An index key built from an updated field must change with it, or the
        # item would stay listed under its old value.
        known = {**key_values, **updates}
        for slot in self._index_key_slots:
            touched = [n for n in slot.template.fields if n in updates]
            if not touched:
                continue
            missing = [n for n in slot.template.fields if n not in known]
            if missing:
                raise ParameterError(owner, touched[0], f"changes index key {slot.attribute} "
                                     f"({slot.template.source!r}), which also needs "
                                     f"{', '.join(missing)}; include them in the update")
            needed = [p.name for p in slot.template.parts
                      if isinstance(p, Placeholder) and p.default is None]
            if any(known.get(n) is None for n in needed):
                remove.append(slot.attribute)  # sparse: the item leaves the index
            else:
                set_values[slot.attribute] = self._key_value(owner, slot, known)

    def _batch_write(self, plan: Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
        if self.entity.version_field is not None:
            raise PatternNotRunnable(owner, "BatchWriteItem cannot check versions; "
                                     f"{self.entity.name} declares a version_field")
        puts: list[EntityModel] = []
        for param in plan.pattern.parameters:
            given = values.get(param.name)
            if isinstance(given, EntityModel) and given.__entity_name__ == self.entity.name:
                puts.append(given)
            elif param.type == "array" and isinstance(given, list) and given and \
                    all(isinstance(e, EntityModel | Mapping) for e in given):
                puts += [coerce_entity(owner, f"{param.name}[{i}]", self.entity.name, e, self.models)
                         for i, e in enumerate(given)]
        requests: dict[str, dict[str, Any]] = {}
        if puts:
            for model in puts:
                item = self.mapper.to_item(self.mapper.record_of(model.values()))
                requests[json.dumps(self.mapper.item_key(item), sort_keys=True, default=str)] = \
                    {"PutRequest": {"Item": item}}
        else:
            for key in self._batch_keys(owner, plan.pattern, values):
                requests[json.dumps(key, sort_keys=True, default=str)] = {"DeleteRequest": {"Key": key}}
        table = self._table_name()
        pending = list(requests.values())
        for chunk_start in range(0, len(pending), BATCH_WRITE_ITEMS):
            self._batch_write_chunk(table, pending[chunk_start:chunk_start + BATCH_WRITE_ITEMS])
        if plan.pattern.return_type == "entity_list":
            return Page(puts)
        if plan.pattern.return_type == "void":
            return None
        return True

    def _batch_write_chunk(self, table: str, chunk: list[dict[str, Any]]) -> None:
        for _answer in until_processed(
                "BatchWriteItem", lambda left: self.ddb.call("BatchWriteItem", RequestItems=left),
                {table: chunk}, lambda left: left, attempts=BATCH_ATTEMPTS):
            pass


def _needed(template: KeyTemplate) -> list[str]:
    """The template's placeholders that have no default (a NULL there is no key)."""
    return [p.name for p in template.parts if isinstance(p, Placeholder) and p.default is None]


def _plain_key(value: AttributeValue) -> Any:
    (kind, inner), = value.items()
    return Decimal(inner) if kind == "N" else inner


def _from_key_text(text: str, field_type: str) -> Any:
    try:
        if field_type == "integer":
            number = Decimal(text)
            return int(number) if number == number.to_integral_value() else None
        if field_type == "decimal":
            return Decimal(text)
        if field_type == "boolean":
            return {"true": True, "false": False}.get(text)
    except InvalidOperation:
        return None
    return text


class Repositories:
    """Every entity's repository for one contract, sharing one model set.

    `repositories["User"].run("get_user_by_id", user_id="u1")`, or
    `repositories.run("User", "get_user_by_id", user_id="u1")`.
    """

    def __init__(self, contract: Contract, ddb: DynamoDB, *, models: ModelSet | None = None):
        self.contract = contract
        self.ddb = ddb
        self.models = models or ModelSet(contract)
        self._repositories = {e.name: Repository(contract, e, ddb, models=self.models)
                              for e in contract.entities()}

    def __getitem__(self, entity: str) -> Repository:
        repository = self._repositories.get(entity)
        if repository is None:
            raise UnknownEntity(entity, self._repositories)
        return repository

    def __iter__(self) -> Iterator[Repository]:
        return iter(self._repositories.values())

    def run(self, entity: str, pattern: str, /, **kwargs: Any) -> Any:
        """Run `pattern` of `entity`; see `Repository.run`."""
        return self[entity].run(pattern, **kwargs)

