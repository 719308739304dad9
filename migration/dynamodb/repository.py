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
dual-write write. Every request goes through `DynamoDB.call`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import ValidationError

from migration.contract.key_conditions import (
    KeyConditionError,
    KeyConditionShape,
    key_condition_shape,
)
from migration.contract.keys import KeyTemplate, Placeholder
from migration.contract.model import (
    AccessPattern,
    Contract,
    Entity,
    Index,
    Parameter,
    Table,
)
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
from migration.dynamodb.models import EntityModel, ModelSet, model_fields
from migration.errors import (
    ConditionFailed,
    KeyTemplateError,
    MigrateError,
    Terminal,
    Transient,
)
from migration.mapping.item import MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, ItemMapper
from migration.mapping.values import AttributeValue, Item, converter_for, dynamodb_number

ModelT = TypeVar("ModelT")

MAX_BATCH_GET = 100
MAX_BATCH_WRITE = 25
BATCH_ATTEMPTS = 8
# Sorts after any character a key can hold, so "ORDER#x#" + AFTER_ALL is past
# every key that starts with "ORDER#x#".
AFTER_ALL = "\U0010ffff"
# Which operations each per-call option applies to.
OPTION_OPERATIONS = {
    "limit": ("Query", "Scan"),
    "cursor": ("Query", "Scan"),
    "consistent_read": ("GetItem", "Query", "Scan", "BatchGetItem"),
    "descending": ("Query",),
    "updates": ("UpdateItem",),
    "expected_version": ("UpdateItem", "DeleteItem"),
}
log = logging.getLogger(__name__)


# -- errors -------------------------------------------------------------------------


class RuntimeInputError(MigrateError, Terminal):
    """Input the runtime refuses before any call to DynamoDB."""


class UnknownEntity(RuntimeInputError):
    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        self.known = sorted(known)
        super().__init__(f"no entity {name!r} in the contract; entities: {', '.join(self.known)}")


class UnknownPattern(RuntimeInputError):
    """No access pattern (or cross-table pattern) of that name; lists the known ones."""

    def __init__(self, owner: str, name: str, known: Iterable[str]):
        self.owner = owner
        self.name = name
        self.known = sorted(known)
        super().__init__(f"{owner} has no pattern {name!r}; known patterns: "
                         f"{', '.join(self.known) or 'none'}")


class ParameterError(RuntimeInputError):
    """A parameter is missing, unknown, or of the wrong type; names pattern and parameter."""

    def __init__(self, pattern: str, parameter: str | None, reason: str):
        self.pattern = pattern
        self.parameter = parameter
        self.reason = reason
        where = f" parameter {parameter!r}:" if parameter else ""
        super().__init__(f"{pattern}:{where} {reason}")


class InvalidCursor(ParameterError):
    """A cursor that this pattern did not hand out (or that was altered)."""


class PatternNotRunnable(RuntimeInputError):
    """The contract declares a pattern the runtime cannot turn into a request."""

    def __init__(self, pattern: str, reason: str):
        self.pattern = pattern
        self.reason = reason
        super().__init__(f"{pattern}: {reason}")


class ItemAlreadyExists(ConditionFailed):
    """`create` found an item with the same key already there."""

    def __init__(self, entity: str, key: Mapping[str, Any], item: Mapping[str, Any] | None):
        self.entity = entity
        self.key = dict(key)
        super().__init__("PutItem", "ConditionalCheckFailedException",
                         f"{entity} {_key_text(key)} already exists", item)


class VersionConflict(ConditionFailed):
    """An optimistic-locking check failed: the stored version is not the expected one.

    `actual` is the stored version (None when the item does not exist).
    """

    def __init__(self, operation: str, entity: str, key: Mapping[str, Any], expected: int | None,
                 actual: int | None, item: Mapping[str, Any] | None):
        self.entity = entity
        self.key = dict(key)
        self.expected = expected
        self.actual = actual
        wanted = "no item" if not expected else f"version {expected}"
        found = "no item" if item is None else f"version {actual}"
        super().__init__(operation, "ConditionalCheckFailedException",
                         f"{entity} {_key_text(key)}: expected {wanted}, found {found}", item)


class StoredItemInvalid(MigrateError, Terminal):
    """An item read from DynamoDB does not fit the entity's model (written by something
    else, or before the contract changed); carries its key and the reasons."""

    def __init__(self, entity: str, key: Mapping[str, Any], reason: str):
        self.entity = entity
        self.key = dict(key)
        self.reason = reason
        super().__init__(f"{entity} item {_key_text(key)} does not fit the model: {reason}")


class BatchIncomplete(MigrateError, Transient):
    """DynamoDB kept returning unprocessed keys or items after every retry."""

    def __init__(self, operation: str, unprocessed: int):
        self.operation = operation
        self.unprocessed = unprocessed
        super().__init__(f"{operation}: {unprocessed} request(s) still unprocessed after "
                         f"{BATCH_ATTEMPTS} attempts")


def _key_text(key: Mapping[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in key.items()) + ")"


# -- results ---------------------------------------------------------------------------


class Page(list[ModelT]):
    """One page of results; pass `cursor` back as ``cursor=`` to get the next one
    (None when there is nothing more)."""

    def __init__(self, items: Iterable[ModelT] = (), cursor: str | None = None):
        super().__init__(items)
        self.cursor = cursor

    def __repr__(self) -> str:
        return f"Page({list.__repr__(self)}, cursor={self.cursor!r})"


def _json_attribute(attribute: AttributeValue) -> dict[str, Any]:
    (kind, inner), = attribute.items()
    if kind == "B":
        return {"B": base64.b64encode(bytes(inner)).decode("ascii")}
    return {kind: inner}


def encode_cursor(pattern: str, key: Mapping[str, AttributeValue]) -> str:
    """An opaque, URL-safe cursor for a LastEvaluatedKey, bound to the pattern's name."""
    document = {"p": pattern, "k": {name: _json_attribute(v) for name, v in sorted(key.items())}}
    raw = json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(pattern: str, cursor: str, attributes: Sequence[str]) -> Item:
    """The ExclusiveStartKey a cursor stands for; InvalidCursor unless this pattern made it."""
    def bad(reason: str) -> InvalidCursor:
        return InvalidCursor(pattern, "cursor", reason)

    if not isinstance(cursor, str) or not cursor:
        raise bad("a cursor is a non-empty string returned as Page.cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise bad("not a cursor handed out by this toolkit") from err
    if not isinstance(document, dict) or document.get("p") != pattern:
        raise bad("the cursor was handed out by another pattern")
    key = document.get("k")
    if not isinstance(key, dict) or set(key) != set(attributes):
        raise bad("the cursor does not hold this pattern's key attributes")
    out: Item = {}
    for name, attribute in key.items():
        if not (isinstance(attribute, dict) and len(attribute) == 1):
            raise bad(f"malformed key attribute {name!r}")
        (kind, inner), = attribute.items()
        if kind not in ("S", "N", "B") or not isinstance(inner, str):
            raise bad(f"malformed key attribute {name!r}")
        try:
            out[name] = {"B": base64.b64decode(inner)} if kind == "B" else {kind: inner}
        except binascii.Error as err:
            raise bad(f"malformed key attribute {name!r}") from err
    return out


# -- parameters ------------------------------------------------------------------------


def coerce_parameter(owner: str, param: Parameter, raw: Any, models: ModelSet,
                     entity: str | None = None, partial: bool = False) -> Any:
    """One parameter value checked against its declared type (see `bind_parameters`)."""
    def bad(reason: str) -> ParameterError:
        return ParameterError(owner, param.name, reason)

    if raw is None:
        if param.has_default and param.default is None:
            return None
        raise bad(f"is required ({param.type}), got None")
    kind = param.type
    if kind == "entity":
        target = param.entity_type or entity
        assert target is not None
        return coerce_entity(owner, param.name, target, raw, models, partial=partial)
    return _coerce_scalar(kind, param.item_type, raw, bad, owner, param.name, models, entity)


def _coerce_scalar(kind: str, item_type: str | None, raw: Any,
                   bad: Callable[[str], ParameterError], owner: str, name: str,
                   models: ModelSet, entity: str | None) -> Any:
    got = type(raw).__name__
    if kind == "string":
        if not isinstance(raw, str):
            raise bad(f"must be a string, got {got} {raw!r}")
        return raw
    if kind == "uuid":
        if isinstance(raw, uuid.UUID):
            return str(raw)
        if not isinstance(raw, str):
            raise bad(f"must be a UUID string, got {got} {raw!r}")
        try:
            uuid.UUID(raw)
        except ValueError as err:
            raise bad(f"{raw!r} is not a UUID") from err
        return raw
    if kind == "datetime":
        if not isinstance(raw, str | datetime):
            raise bad(f"must be a datetime or ISO-8601 string, got {got} {raw!r}")
        return raw
    if kind == "integer":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise bad(f"must be an integer, got {got} {raw!r}")
        return raw
    if kind == "decimal":
        if isinstance(raw, bool) or not isinstance(raw, int | Decimal | str | float):
            raise bad(f"must be a number (int, Decimal or numeric string), got {got} {raw!r}")
        try:
            number = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
        except InvalidOperation as err:
            raise bad(f"{raw!r} is not a number") from err
        if not number.is_finite():
            raise bad(f"{raw!r} is not a finite number")
        return number
    if kind == "boolean":
        if not isinstance(raw, bool):
            raise bad(f"must be true or false, got {got} {raw!r}")
        return raw
    if kind == "binary":
        if not isinstance(raw, bytes | bytearray):
            raise bad(f"must be bytes, got {got}")
        return bytes(raw)
    if kind == "object":
        if not isinstance(raw, Mapping):
            raise bad(f"must be an object (a mapping), got {got}")
        return dict(raw)
    if kind == "array":
        if not isinstance(raw, list | tuple):
            raise bad(f"must be an array (a list), got {got}")
        if item_type in (None, "any"):
            return list(raw)
        if item_type == "entity":
            if entity is None:
                raise bad("an array of entities needs an entity to validate them against")
            return [coerce_entity(owner, f"{name}[{i}]", entity, v, models)
                    for i, v in enumerate(raw)]
        out = []
        for i, element in enumerate(raw):
            def element_bad(reason: str, i: int = i) -> ParameterError:
                return ParameterError(owner, f"{name}[{i}]", reason)
            out.append(_coerce_scalar(item_type, None, element, element_bad, owner,
                                      f"{name}[{i}]", models, entity))
        return out
    raise bad(f"unsupported parameter type {kind!r}")


def coerce_entity(owner: str, name: str, entity: str, raw: Any, models: ModelSet, *,
                  partial: bool = False) -> EntityModel:
    """A model of `entity` from a model (of any class for that entity) or a mapping;
    `partial` accepts one with required fields missing (they are filled later)."""
    model = models.partial(entity) if partial else models.full(entity)
    if isinstance(raw, model) or (partial and isinstance(raw, models.full(entity))):
        return raw
    if isinstance(raw, EntityModel):
        if raw.__entity_name__ != entity:
            raise ParameterError(owner, name, f"must be a {entity}, got a "
                                 f"{raw.__entity_name__ or type(raw).__name__}")
        raw = raw.values()
    if not isinstance(raw, Mapping):
        raise ParameterError(owner, name, f"must be a {entity} model or a mapping of its "
                             f"fields, got {type(raw).__name__}")
    try:
        return model.model_validate(dict(raw))
    except ValidationError as err:
        raise ParameterError(owner, name, f"is not a valid {entity}: {_validation_text(err)}") from err


def _validation_text(err: ValidationError) -> str:
    parts = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem.get("loc", ())) or "value"
        parts.append(f"{where}: {problem.get('msg')}")
    return "; ".join(parts)


def bind_parameters(owner: str, params: Sequence[Parameter], given: Mapping[str, Any],
                    models: ModelSet, entity: str | None = None,
                    partial: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Check the given values against the declared parameters, before any call.

    Unknown names, missing required parameters and wrong types raise a
    ParameterError naming `owner` (the pattern) and the parameter; defaults
    apply; a `decimal` becomes a Decimal; an `integer` refuses a bool; an
    `entity` accepts its model or a mapping and becomes the model (the partial
    model for the parameters named in `partial`).
    """
    declared = {p.name for p in params}
    for name in given:
        if name not in declared:
            listed = ", ".join(p.name for p in params) or "none"
            raise ParameterError(owner, name, f"is not a parameter of this pattern "
                                 f"(parameters: {listed})")
    out: dict[str, Any] = {}
    for param in params:
        if param.name in given:
            raw = given[param.name]
        elif param.has_default:
            raw = param.default
        else:
            raise ParameterError(owner, param.name, f"missing required parameter ({param.type})")
        out[param.name] = coerce_parameter(owner, param, raw, models, entity,
                                           partial=param.name in partial)
    return out


@dataclass(frozen=True)
class Options:
    """Per-call options besides the pattern's parameters."""

    limit: int | None = None
    cursor: str | None = None
    consistent_read: bool | None = None
    descending: bool = False
    updates: Mapping[str, Any] | None = None
    expected_version: int | None = None

    def given(self) -> list[str]:
        """Names of the options set to something other than their default."""
        defaults = Options()
        return [name for name in OPTION_OPERATIONS if getattr(self, name) != getattr(defaults, name)]

    def check(self, owner: str, operation: str | None = None) -> None:
        """Refuse option values of the wrong type, and options the operation has no use for."""
        if operation is not None:
            for name in self.given():
                if operation not in OPTION_OPERATIONS[name]:
                    raise ParameterError(owner, name, f"does not apply to a {operation} "
                                         f"(only to {', '.join(OPTION_OPERATIONS[name])})")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise ParameterError(owner, "limit", f"must be a positive integer, got {self.limit!r}")
        if self.consistent_read is not None and not isinstance(self.consistent_read, bool):
            raise ParameterError(owner, "consistent_read", "must be true or false")
        if not isinstance(self.descending, bool):
            raise ParameterError(owner, "descending", "must be true or false")
        if self.updates is not None and not isinstance(self.updates, Mapping):
            raise ParameterError(owner, "updates", "must be a mapping of field names to values")
        ev = self.expected_version
        if ev is not None and (isinstance(ev, bool) or not isinstance(ev, int) or ev < 0):
            raise ParameterError(owner, "expected_version", f"must be a non-negative integer, got {ev!r}")


# -- plans: what a pattern turns into, worked out once -----------------------------------


@dataclass(frozen=True)
class _KeySlot:
    attribute: str
    template: KeyTemplate
    type: str
    partition: bool

    @property
    def limit(self) -> int:
        return MAX_PARTITION_KEY_BYTES if self.partition else MAX_SORT_KEY_BYTES


@dataclass(frozen=True)
class _Target:
    """The table or index a read goes to, and its key design for this entity."""

    index: Index | None
    partition: tuple[_KeySlot, ...]  # one slot per key attribute (GSIs may have up to 4)
    sort: tuple[_KeySlot, ...]
    key_attributes: tuple[str, ...]  # what a LastEvaluatedKey holds
    multi_entity: bool
    partial: bool  # the index does not project every attribute


@dataclass(frozen=True)
class _Plan:
    pattern: AccessPattern
    target: _Target
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
    def range_slot(self) -> _KeySlot | None:
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


def _number_key(text: str) -> AttributeValue:
    return {"N": dynamodb_number(Decimal(text))}


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
        self._plans: dict[str, _Plan] = {}
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
        plan = self._plan(declared)
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
            raise StoredItemInvalid(self.entity.name, key, _validation_text(err)) from err

    def _mine(self, item: Mapping[str, AttributeValue] | None) -> bool:
        # On a table shared by entities a key can hold another entity's item.
        return bool(item) and (not self._multi_entity or self.mapper.is_mine(item or {}))

    def key_of(self, values: Mapping[str, Any]) -> Item:
        """The primary key (wire form) for the values of the key placeholders."""
        return self._primary_key(f"{self.entity.name}.key", values)

    # -- keys -----------------------------------------------------------------------
    def _table_name(self) -> str:
        return self.ddb.table_name(self.table.name)

    def _primary_slots(self) -> tuple[_KeySlot, _KeySlot | None]:
        partition = _KeySlot(self.table.partition_key, self.entity.pk,
                             self._types[self.table.partition_key], True)
        sort = None
        if self.table.sort_key and self.entity.sk is not None:
            sort = _KeySlot(self.table.sort_key, self.entity.sk, self._types[self.table.sort_key],
                            False)
        return partition, sort

    def _index_slots(self) -> list[_KeySlot]:
        # An index attribute that is the table's own key attribute is the item's key:
        # nothing to build or to update for it.
        primary = {self.table.partition_key, self.table.sort_key}
        slots = []
        for keys in self.entity.index_keys:
            index = self.table.index(keys.index)
            assert index is not None
            partition, sort = self._index_key_slots_of(index, keys.pk, keys.sk)
            slots += [slot for slot in (*partition, *sort) if slot.attribute not in primary]
        return slots

    @staticmethod
    def _index_key_slots_of(index: Index, pk: tuple[KeyTemplate, ...], sk: tuple[KeyTemplate, ...]
                            ) -> tuple[tuple[_KeySlot, ...], tuple[_KeySlot, ...]]:
        partition = tuple(_KeySlot(a.name, t, a.type, True)
                          for a, t in zip(index.partition_attributes, pk, strict=True))
        sort = tuple(_KeySlot(a.name, t, a.type, False)
                     for a, t in zip(index.sort_attributes, sk, strict=True))
        return partition, sort

    def _key_value(self, owner: str, slot: _KeySlot, values: Mapping[str, Any]) -> AttributeValue:
        if slot.type == "B":
            name = slot.template.single_field
            raw = values.get(name) if name else None
            if not isinstance(raw, bytes | bytearray) or not raw:
                raise ParameterError(owner, name, f"{slot.attribute} is a binary key and needs "
                                     f"non-empty bytes, got {type(raw).__name__}")
            if len(raw) > slot.limit:
                raise ParameterError(owner, name, f"{slot.attribute} would be over {slot.limit} bytes")
            return {"B": bytes(raw)}
        try:
            text = slot.template.format(values)
        except KeyTemplateError as err:
            raise ParameterError(owner, err.field, f"cannot build {slot.attribute}: {err.reason}") from err
        if len(text.encode("utf-8")) > slot.limit:
            raise ParameterError(owner, None, f"{slot.attribute} would be over {slot.limit} bytes")
        if slot.type == "N":
            try:
                return _number_key(text)
            except InvalidOperation as err:
                raise ParameterError(owner, slot.template.single_field,
                                     f"{slot.attribute} is a number key; {text!r} is not a number") from err
            except ValueError as err:  # a number DynamoDB cannot hold exactly
                raise ParameterError(owner, slot.template.single_field,
                                     f"{slot.attribute}: {err}") from err
        return {"S": text}

    def _primary_key(self, owner: str, values: Mapping[str, Any]) -> Item:
        key = {self._partition.attribute: self._primary_value(owner, self._partition, values)}
        if self._sort is not None:
            key[self._sort.attribute] = self._primary_value(owner, self._sort, values)
        return key

    def _primary_value(self, owner: str, slot: _KeySlot, values: Mapping[str, Any]) -> AttributeValue:
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

    def _given_key(self, owner: str, slot: _KeySlot, given: Any) -> AttributeValue:
        if slot.type == "B":
            if not isinstance(given, bytes | bytearray) or not given:
                raise ParameterError(owner, slot.attribute, "is a binary key and needs non-empty "
                                     f"bytes, got {type(given).__name__}")
            return {"B": bytes(given)}
        if slot.type == "N":
            try:
                return _number_key(str(given))
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

    def _given_key_attributes(self, pattern: AccessPattern) -> list[tuple[_KeySlot, list[str]]]:
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

    # -- plans ----------------------------------------------------------------------
    def _plan(self, pattern: AccessPattern) -> _Plan:
        plan = self._plans.get(pattern.name)
        if plan is None:
            plan = self._plans[pattern.name] = self._make_plan(pattern)
        return plan

    def _target(self, pattern: AccessPattern) -> _Target:
        table, entity = self.table, self.entity
        index = table.index(pattern.index_name) if pattern.index_name else None
        key_attributes = [table.partition_key] + ([table.sort_key] if table.sort_key else [])
        if index is None:
            return _Target(None, (self._partition,), (self._sort,) if self._sort else (),
                           tuple(key_attributes), self._multi_entity, False)
        keys = entity.index_key(index.name)
        assert keys is not None
        partition, sort = self._index_key_slots_of(index, keys.pk, keys.sk)
        if index.kind != "GSI":
            partition = (self._partition,)  # an LSI shares the table's partition key
        names = [a.name for a in index.key_attributes]
        key_attributes += names
        # DynamoDB indexes every item that holds the index's key attributes: an entity
        # whose fields are those attributes shares the index without a mapping.
        sharing = [e for e in table.entities.values() if e.index_key(index.name) is not None
                   or all(e.field(n) is not None for n in names)]
        return _Target(index, partition, sort, tuple(dict.fromkeys(key_attributes)),
                       len(sharing) > 1, index.projection != "ALL")

    def _make_plan(self, pattern: AccessPattern) -> _Plan:
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
            for slot, missing in self._given_key_attributes(pattern):
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
        return _Plan(pattern=pattern, target=target, key=shape,
                     filter_params=frozenset(filter_params), partial=partial, mixed=mixed,
                     unused=unused, partial_params=partial_params)

    def _check_range(self, owner: str, pattern: AccessPattern, slot: _KeySlot,
                     range_params: tuple[str, ...]) -> None:
        if slot.type != "S":
            kind = "number" if slot.type == "N" else "binary"
            if slot.template.single_field is None:
                raise PatternNotRunnable(owner, f"a {kind} sort key must be a bare {{field}}")
            if pattern.range_condition == "begins_with" and slot.type == "N":
                raise PatternNotRunnable(owner, "begins_with does not apply to a number sort key")
            return
        if self._range_placeholder(slot.template, set(range_params)) is None:
            raise PatternNotRunnable(owner, f"sort key template {slot.template.source!r} "
                                     "has no placeholder left for the range parameter")

    @staticmethod
    def _range_placeholder(template: KeyTemplate, range_params: set[str],
                           supplied: Iterable[str] = ()) -> int | None:
        given = set(supplied) - range_params
        for i, part in enumerate(template.parts):
            if isinstance(part, Placeholder) and part.name not in given:
                return i
        return None

    # -- sort-key conditions -----------------------------------------------------------
    def _range_bound(self, owner: str, plan: _Plan, values: Mapping[str, Any], param: str,
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
        position = self._range_placeholder(template, set(plan.range_params), supplied)
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

    def _range_condition(self, owner: str, plan: _Plan, values: Mapping[str, Any]) -> Condition:
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

    def _sort_conditions(self, owner: str, plan: _Plan, values: Mapping[str, Any]) -> list[Condition]:
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

    def _equal(self, owner: str, slot: _KeySlot, values: Mapping[str, Any]) -> Condition:
        return Compare(Path.of(slot.attribute), "=", Value(self._key_value(owner, slot, values)))

    def _sort_equalities(self, owner: str, plan: _Plan, values: Mapping[str, Any]) -> list[Condition]:
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

    def _type_filter(self, plan: _Plan) -> Condition | None:
        if not plan.target.multi_entity or plan.mixed:
            return None
        return Compare(Path.of(self.type_attribute), "=", Value({"S": self.entity.entity_type}))

    def _user_filter(self, owner: str, plan: _Plan, values: Mapping[str, Any]) -> Condition | None:
        expression = plan.pattern.filter_expression
        if expression is None:
            return None
        try:
            return filter_condition(expression, values, self._field_types, self._item_types)
        except (UnboundParameter, ValueError, TypeError, ArithmeticError) as err:
            raise ParameterError(owner, None, f"cannot build the filter: {err}") from err

    # -- reads ------------------------------------------------------------------------
    def _consistent(self, owner: str, plan: _Plan, opts: Options) -> bool:
        wanted = plan.pattern.consistent_read if opts.consistent_read is None else opts.consistent_read
        index = plan.target.index
        if wanted and index is not None and index.kind == "GSI":
            raise ParameterError(owner, "consistent_read", f"DynamoDB does not support strongly "
                                 f"consistent reads on global secondary index {index.name}")
        return wanted

    def _projection(self, plan: _Plan, names: Names, request: dict[str, Any]) -> None:
        if not plan.pattern.projection:
            return
        # The key attributes come along for the cursor (and the key values they hold).
        attributes = list(plan.pattern.projection) + list(plan.target.key_attributes)
        attributes.append(self.type_attribute)
        request["ProjectionExpression"] = projection_expression(names, attributes)

    def _query(self, plan: _Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
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

    def _scan(self, plan: _Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
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

    def _collect(self, operation: str, plan: _Plan, owner: str, request: dict[str, Any],
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

    def _decode(self, plan: _Plan, item: Item) -> Any:
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

    def _get_item(self, plan: _Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
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
        for slot, _ in self._given_key_attributes(pattern):
            if values.get(slot.attribute) is not None:
                source[slot.attribute] = values[slot.attribute]
        return source

    def _batch_get(self, plan: _Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
        keys = self._batch_keys(owner, plan.pattern, values)
        unique: dict[str, Item] = {}
        for key in keys:
            unique.setdefault(json.dumps(key, sort_keys=True, default=str), key)
        table = self._table_name()
        consistent = self._consistent(owner, plan, opts)
        found: dict[str, Item] = {}
        pending = list(unique.values())
        for chunk_start in range(0, len(pending), MAX_BATCH_GET):
            chunk = pending[chunk_start:chunk_start + MAX_BATCH_GET]
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
        attempt = 0
        remaining: dict[str, Any] = {table: request}
        while remaining:
            attempt += 1
            response = self.ddb.call("BatchGetItem", RequestItems=remaining)
            yield from response.get("Responses", {}).get(table, [])
            remaining = response.get("UnprocessedKeys") or {}
            if remaining:
                if attempt >= BATCH_ATTEMPTS:
                    raise BatchIncomplete("BatchGetItem", len(remaining[table]["Keys"]))
                time.sleep(self.ddb.backoff(attempt))

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
                                 f"{_validation_text(err)}") from err

    def _put_item(self, plan: _Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
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

    def _delete_item(self, plan: _Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
        source = self._key_source(owner, plan.pattern, values)
        old = self._delete(owner, source, opts.expected_version,
                           mine_only=bool(self._given_key_attributes(plan.pattern)))
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

    def _update_item(self, plan: _Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
        pattern = plan.pattern
        key_fields = set(self.entity.key_fields)
        given_keys = self._given_key_attributes(pattern)
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
                raise ParameterError(owner, name, _validation_text(err)) from err
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

    def _batch_write(self, plan: _Plan, owner: str, values: dict[str, Any], opts: Options) -> Any:
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
                requests[json.dumps(self.mapper.key_of(item), sort_keys=True, default=str)] = \
                    {"PutRequest": {"Item": item}}
        else:
            for key in self._batch_keys(owner, plan.pattern, values):
                requests[json.dumps(key, sort_keys=True, default=str)] = {"DeleteRequest": {"Key": key}}
        table = self._table_name()
        pending = list(requests.values())
        for chunk_start in range(0, len(pending), MAX_BATCH_WRITE):
            self._batch_write_chunk(table, pending[chunk_start:chunk_start + MAX_BATCH_WRITE])
        if plan.pattern.return_type == "entity_list":
            return Page(puts)
        if plan.pattern.return_type == "void":
            return None
        return True

    def _batch_write_chunk(self, table: str, chunk: list[dict[str, Any]]) -> None:
        attempt = 0
        remaining: dict[str, Any] = {table: chunk}
        while remaining:
            attempt += 1
            response = self.ddb.call("BatchWriteItem", RequestItems=remaining)
            remaining = response.get("UnprocessedItems") or {}
            if remaining:
                if attempt >= BATCH_ATTEMPTS:
                    raise BatchIncomplete("BatchWriteItem", len(remaining[table]))
                time.sleep(self.ddb.backoff(attempt))


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
