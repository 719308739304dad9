"""DynamoDB transactions: a builder for TransactWriteItems / TransactGetItems.

Owns the limits checked before any call (at most 100 actions, never two
actions on one item, reads and writes not mixed, at most 4 MB), the
idempotency token of a commit (one per commit, the same on its retries), the
retry of cancellations caused only by conflicts or throttling (exponential
backoff with full jitter, bounded), and the typed errors a cancellation
becomes: which action failed (its index, operation, table and key) and why.
A builder given a write fence (`migration.dynamodb.fence`) commits with the fence's
check as its last action (so it holds one action less) and raises `FenceClosed` when
the fence refused it.

`TransactionBuilder` speaks DynamoDB's wire form and table names;
`EntityTransaction` takes entity models and field values and builds keys and
items through the repository (so through `ItemMapper`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from migration.backoff import jittered, pause
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.expressions import (
    Condition,
    Function,
    Names,
    Path,
    bind,
    parse_condition,
    projection_expression,
    render,
    update_expression,
)
from migration.dynamodb.fence import FenceClosed, WriteFence
from migration.dynamodb.limits import TRANSACTION_ACTIONS, TRANSACTION_BYTES
from migration.dynamodb.models import EntityModel, ModelSet
from migration.dynamodb.repository import (
    ParameterError,
    Repository,
    RuntimeInputError,
    UnknownEntity,
    coerce_entity,
)
from migration.errors import (
    CancellationReason,
    Terminal,
    TransactionCancelled,
    Transient,
)
from migration.mapping.item import item_size
from migration.mapping.values import AttributeValue, Item, from_attribute

MAX_ACTIONS = TRANSACTION_ACTIONS
MAX_REQUEST_BYTES = TRANSACTION_BYTES
WRITE_OPERATIONS = ("Put", "Update", "Delete", "ConditionCheck")
_RETRYABLE_CODES = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded",
                    "RequestLimitExceeded"}
_THROTTLE_CODES = {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}


# -- errors refused before the call ----------------------------------------------------


T = TypeVar("T")


def retry_conflicts(send: Callable[[], T], *, attempts: int, base: float = 0.02,
                    cap: float = 2.0) -> T:
    """Call `send` (one TransactWriteItems or TransactGetItems) again, after a jittered
    pause, while DynamoDB cancels it for transaction conflicts alone: another transaction
    held one of its items, and a retry will likely pass. Any other cancellation (a
    condition, a validation), or the last attempt, raises the `TransactionCancelled`."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return send()
        except TransactionCancelled as err:
            if not err.only_conflicts or attempt >= attempts:
                raise
            pause(attempt, base=base, cap=cap)


class TransactionTooLarge(RuntimeInputError):
    """More actions (or bytes) than one DynamoDB transaction takes."""

    def __init__(self, what: str, limit: int, got: int):
        self.limit = limit
        self.got = got
        super().__init__(f"a transaction takes at most {limit} {what}, this one has {got}")


class DuplicateItemInTransaction(RuntimeInputError):
    """Two actions on the same item: DynamoDB refuses the whole transaction."""

    def __init__(self, table: str, key: Mapping[str, Any], first: int, second: int):
        self.table = table
        self.key = dict(key)
        self.first = first
        self.second = second
        super().__init__(f"actions {first} and {second} both touch {table} {_plain_key(key)}; "
                         "a transaction may touch an item only once")


class MixedTransaction(RuntimeInputError):
    """Gets and writes in one builder: DynamoDB has separate calls for them."""


class EmptyCondition(RuntimeInputError):
    """A condition check without a condition."""


# -- errors a cancellation becomes ---------------------------------------------------------


@dataclass(frozen=True)
class ActionInfo:
    """One action of a transaction, as an error reports it."""

    index: int
    op: str  # Put, Update, Delete, ConditionCheck or Get
    table: str
    key: Mapping[str, Any]
    entity: str | None = None
    create: bool = False  # a Put guarded by attribute_not_exists on its key

    def __str__(self) -> str:
        what = self.op + (" (create)" if self.create else "") + f" {self.entity or self.table}"
        if self.entity:
            what += f" in {self.table}"
        return f"action {self.index} ({what} {_plain_key(self.key)})"


class TransactionFailed(TransactionCancelled):
    """A cancelled transaction: `action` is the one that failed, `reason` why, and
    `reasons` holds DynamoDB's reason for every action, in request order."""

    def __init__(self, cancelled: TransactionCancelled, action: ActionInfo,
                 reason: CancellationReason, attempts: int):
        super().__init__(cancelled.operation, reason.message, cancelled.reasons)
        self.action = action
        self.reason = reason
        self.attempts = attempts
        text = (f"{cancelled.operation} cancelled: {action} failed with {reason.code}"
                + (f": {reason.message}" if reason.message else ""))
        if attempts > 1:
            text += f" (after {attempts} attempts)"
        self.args = (text,)

    @property
    def stored_item(self) -> Mapping[str, Any] | None:
        """The failing item as it stood, when DynamoDB returned it (conditions only)."""
        return self.reason.item


class TransactionConditionFailed(TransactionFailed, Terminal):
    """A condition of one action was false (ConditionalCheckFailed)."""


class TransactionItemExists(TransactionConditionFailed):
    """A `create` found its item already there (a uniqueness guard held)."""


class TransactionConflicted(TransactionFailed, Transient):
    """Other transactions kept conflicting after every retry."""


class TransactionThrottled(TransactionFailed, Transient):
    """DynamoDB kept throttling after every retry."""


class TransactionInvalid(TransactionFailed, Terminal):
    """DynamoDB found an action invalid (validation, item size, collection size...)."""


def _plain_key(key: Mapping[str, Any]) -> str:
    parts = []
    for name, attribute in key.items():
        shown = from_attribute(dict(attribute)) if isinstance(attribute, Mapping) else attribute
        parts.append(f"{name}={shown!r}")
    return "(" + ", ".join(parts) + ")"


# -- the builder -----------------------------------------------------------------------------


@dataclass
class _Action:
    op: str
    table: str
    key: Item
    body: dict[str, Any]
    entity: str | None = None
    create: bool = False
    size: int = 0

    def info(self, index: int) -> ActionInfo:
        return ActionInfo(index=index, op=self.op, table=self.table, key=self.key,
                          entity=self.entity, create=self.create)


def _compile(condition: str | Condition | None, values: Mapping[str, Any] | None,
             names: Names) -> str | None:
    if condition is None:
        return None
    tree = parse_condition(condition) if isinstance(condition, str) else condition
    if tree.params():
        tree = bind(tree, values or {})
    return render(tree, names)


class TransactionBuilder:
    """Collects actions for one transaction and commits them.

    Tables are contract (logical) names; the table prefix is applied here. Keys
    and items are in DynamoDB's wire form. Conditions are condition strings
    (``"attribute_not_exists(pk) OR version = :v"``, with `values` for the
    ``:params``) or condition trees. Every limit is checked as actions are
    added, so a bad transaction never reaches DynamoDB. `contract` tells the
    key attributes of each table (needed by `create` and `put`).
    """

    def __init__(self, ddb: DynamoDB, contract: Contract | None = None, *, max_attempts: int = 10,
                 base_delay: float = 0.02, max_delay: float = 1.0,
                 fence: WriteFence | None = None):
        self.ddb = ddb
        self.contract = contract
        # With a write fence, the commit carries its check (last, taking one of the
        # transaction's actions) and a closed fence is `FenceClosed`.
        self.fence = fence
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.actions: list[_Action] = []
        self._seen: dict[tuple[str, str], int] = {}

    def __len__(self) -> int:
        return len(self.actions)

    # -- writes --------------------------------------------------------------------
    def create(self, table: str, item: Item, *, entity: str | None = None,
               key_attributes: Sequence[str] | None = None) -> TransactionBuilder:
        """Put the item only if no item has its key (``attribute_not_exists`` on the
        partition key); a failure raises TransactionItemExists."""
        names = self.key_attributes(table, key_attributes)
        guard = Function("attribute_not_exists", Path.of(names[0]))
        return self._put(table, item, guard, None, entity, names, create=True)

    def put(self, table: str, item: Item, *, condition: str | Condition | None = None,
            values: Mapping[str, Any] | None = None, entity: str | None = None,
            key_attributes: Sequence[str] | None = None) -> TransactionBuilder:
        """Put (replace) the item, if `condition` holds."""
        names = self.key_attributes(table, key_attributes)
        return self._put(table, item, condition, values, entity, names)

    def _put(self, table: str, item: Item, condition: str | Condition | None,
             values: Mapping[str, Any] | None, entity: str | None, key_names: Sequence[str],
             create: bool = False) -> TransactionBuilder:
        try:
            key = {name: item[name] for name in key_names}
        except KeyError as err:
            raise RuntimeInputError(f"the item for {table} lacks key attribute {err.args[0]!r}") from err
        body: dict[str, Any] = {"Item": item}
        self._condition(body, condition, values)
        return self._add(_Action("Put", table, key, body, entity, create, item_size(item)))

    def update(self, table: str, key: Item, *, set_values: Mapping[str, AttributeValue] | None = None,
               remove: Sequence[str] = (), condition: str | Condition | None = None,
               values: Mapping[str, Any] | None = None,
               entity: str | None = None) -> TransactionBuilder:
        """SET and REMOVE top-level attributes of the item, if `condition` holds."""
        names = Names()
        body: dict[str, Any] = {"Key": key,
                                "UpdateExpression": update_expression(names, set_values or {}, remove)}
        self._condition(body, condition, values, names)
        return self._add(_Action("Update", table, key, body, entity))

    def update_prepared(self, table: str, key: Item, body: dict[str, Any],
                        entity: str | None = None) -> TransactionBuilder:
        """An update whose expressions are already built (``UpdateExpression``,
        ``ConditionExpression`` and their placeholders)."""
        if body.get("ConditionExpression"):
            body = {**body, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        return self._add(_Action("Update", table, key, {"Key": key, **body}, entity))

    def delete(self, table: str, key: Item, *, condition: str | Condition | None = None,
               values: Mapping[str, Any] | None = None,
               entity: str | None = None) -> TransactionBuilder:
        """Delete the item, if `condition` holds."""
        body: dict[str, Any] = {"Key": key}
        self._condition(body, condition, values)
        return self._add(_Action("Delete", table, key, body, entity))

    def condition_check(self, table: str, key: Item, condition: str | Condition, *,
                        values: Mapping[str, Any] | None = None,
                        entity: str | None = None) -> TransactionBuilder:
        """Write nothing, but cancel the transaction unless `condition` holds for the item."""
        if not condition:
            raise EmptyCondition(f"a condition check on {table} needs a condition")
        body: dict[str, Any] = {"Key": key}
        self._condition(body, condition, values)
        return self._add(_Action("ConditionCheck", table, key, body, entity))

    # -- reads ---------------------------------------------------------------------
    def get(self, table: str, key: Item, *, projection: Sequence[str] = (),
            entity: str | None = None) -> TransactionBuilder:
        """Read the item as part of one consistent snapshot (TransactGetItems)."""
        body: dict[str, Any] = {"Key": key}
        if projection:
            names = Names()
            body["ProjectionExpression"] = projection_expression(names, projection)
            body["ExpressionAttributeNames"] = names.attribute_names
        return self._add(_Action("Get", table, key, body, entity))

    # -- checks ----------------------------------------------------------------------
    def key_attributes(self, table: str, given: Sequence[str] | None = None) -> list[str]:
        """The key attribute names of a table: given, or from the contract."""
        if given:
            return list(given)
        if self.contract is None:
            raise RuntimeInputError(f"cannot tell the key of an item of {table}: build the "
                                    "transaction with a contract, or pass key_attributes")
        try:
            declared = self.contract.table(table)
        except KeyError as err:
            raise RuntimeInputError(f"table {table!r} is not in the contract") from err
        return [declared.partition_key] + ([declared.sort_key] if declared.sort_key else [])

    def _condition(self, body: dict[str, Any], condition: str | Condition | None,
                   values: Mapping[str, Any] | None, names: Names | None = None) -> None:
        names = names or Names()
        text = _compile(condition, values, names)
        if text is not None:
            body["ConditionExpression"] = text
            # The item as it stood comes back in the cancellation reason.
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        body.update(names.params())

    def _add(self, action: _Action) -> TransactionBuilder:
        index = len(self.actions)
        limit = MAX_ACTIONS - (1 if self.fence is not None else 0)
        if index >= limit:
            raise TransactionTooLarge("actions", limit, index + 1)
        reading = action.op == "Get"
        if self.actions and (self.actions[0].op == "Get") != reading:
            raise MixedTransaction("a transaction either reads (get) or writes (create, put, "
                                   "update, delete, condition_check); this one would do both")
        identity = (action.table, json.dumps(action.key, sort_keys=True, default=str))
        if identity in self._seen:
            raise DuplicateItemInTransaction(action.table, action.key, self._seen[identity], index)
        self._seen[identity] = index
        self.actions.append(action)
        return self

    # -- commit --------------------------------------------------------------------
    def request_items(self) -> list[dict[str, Any]]:
        """The TransactItems of the request, tables named as DynamoDB knows them."""
        return [{action.op: {"TableName": self.ddb.table_name(action.table), **action.body}}
                for action in self.actions]

    def commit(self) -> list[Item | None]:
        """Send the transaction. Writes return []; gets return each item (or None), in
        the order they were added. Raises a TransactionFailed subclass on cancellation."""
        if not self.actions:
            return []
        size = sum(action.size for action in self.actions)
        if size > MAX_REQUEST_BYTES:
            raise TransactionTooLarge("bytes", MAX_REQUEST_BYTES, size)
        reading = self.actions[0].op == "Get"
        items = self.request_items()
        if self.fence is not None and not reading:
            items.append(self.fence.check())
        params: dict[str, Any] = {"TransactItems": items}
        operation = "TransactGetItems" if reading else "TransactWriteItems"
        if not reading:
            # One token per commit, kept on retries: a retry of a commit that did
            # succeed (its answer lost) is then not applied twice.
            params["ClientRequestToken"] = str(uuid.uuid4())
        attempts = 0

        def send() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            if reading:  # items come back as botocore gives them (binary values as bytes)
                return self.ddb.call(operation, **params)
            # Writes on the fast path: no botocore validation and serialization, about
            # 0.3-0.8 ms of CPU a transaction; the same retries, errors and hooks.
            return self.ddb.call_json(operation, params)

        try:
            response = retry_conflicts(send, attempts=self.max_attempts, base=self.base_delay,
                                       cap=self.max_delay)
        except TransactionCancelled as err:
            if self.fence is not None and not reading and any(
                    r.index == len(self.actions) and r.code == "ConditionalCheckFailed"
                    for r in err.reasons):
                raise FenceClosed(self.fence, self.fence.table) from err
            raise self.typed(err, attempts) from err
        if not reading:
            return []
        return [r.get("Item") or None for r in response.get("Responses", [])]

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter before retry `attempt` (1-based)."""
        return jittered(attempt, base=self.base_delay, cap=self.max_delay)

    def typed(self, err: TransactionCancelled, attempts: int = 1) -> TransactionFailed:
        """The typed error for a cancellation: the first action that failed for a
        reason other than a conflict decides (conflicts only when nothing else failed)."""
        failed = err.failed
        decisive = next((r for r in failed if r.code not in _RETRYABLE_CODES), None)
        if decisive is None:
            decisive = failed[0] if failed else CancellationReason(0, "Unknown", str(err))
        index = decisive.index if decisive.index < len(self.actions) else 0
        action = self.actions[index]
        info = action.info(index)
        code = decisive.code or ""
        if code == "ConditionalCheckFailed":
            kind: type[TransactionFailed] = (TransactionItemExists if action.create
                                             else TransactionConditionFailed)
        elif code == "TransactionConflict":
            kind = TransactionConflicted
        elif code in _THROTTLE_CODES:
            kind = TransactionThrottled
        else:
            kind = TransactionInvalid
        return kind(err, info, decisive, attempts)


class EntityTransaction:
    """A transaction over entities: models and field values in, models out.

    Keys and items are built by each entity's repository (so by `ItemMapper`);
    versioned entities keep their optimistic-locking rules in a transaction too.
    """

    def __init__(self, contract: Contract, ddb: DynamoDB, *, models: ModelSet | None = None,
                 max_attempts: int = 10):
        self.contract = contract
        self.models = models or ModelSet(contract)
        self.builder = TransactionBuilder(ddb, contract, max_attempts=max_attempts)
        self._repositories: dict[str, Repository] = {}
        self._gets: list[str] = []

    def repository(self, entity: str) -> Repository:
        repository = self._repositories.get(entity)
        if repository is None:
            try:
                self.contract.entity(entity)
            except KeyError:
                raise UnknownEntity(entity, (e.name for e in self.contract.entities())) from None
            repository = Repository(self.contract, entity, self.builder.ddb, models=self.models)
            self._repositories[entity] = repository
        return repository

    def __len__(self) -> int:
        return len(self.builder)

    def _model(self, entity: EntityModel | Mapping[str, Any], name: str | None) -> EntityModel:
        target = name or (entity.__entity_name__ if isinstance(entity, EntityModel) else None)
        if not target:
            raise RuntimeInputError("say which entity a mapping is (entity=...)")
        return coerce_entity("transaction", "entity", target, entity, self.models)

    def create(self, entity: EntityModel | Mapping[str, Any], *,
               name: str | None = None) -> EntityTransaction:
        """Put the entity only if no item has its key (TransactionItemExists otherwise)."""
        model = self._model(entity, name)
        repository = self.repository(model.__entity_name__)
        # The guard is the whole condition of a create, versioned entity or not.
        spec = repository.put_spec(model.values(), creating=True)
        self.builder.create(repository.table.name, spec.item, entity=model.__entity_name__)
        return self

    def put(self, entity: EntityModel | Mapping[str, Any], *, name: str | None = None,
            condition: str | Condition | None = None,
            values: Mapping[str, Any] | None = None) -> EntityTransaction:
        """Put (replace) the entity if `condition` holds (and its version matches, for a
        versioned entity)."""
        model = self._model(entity, name)
        repository = self.repository(model.__entity_name__)
        tree = parse_condition(condition) if isinstance(condition, str) else condition
        if tree is not None and tree.params():
            tree = bind(tree, values or {})
        spec = repository.put_spec(model.values(), tree)
        self.builder.put(repository.table.name, spec.item, condition=spec.condition,
                         entity=model.__entity_name__)
        return self

    def update(self, entity: str, key: Mapping[str, Any], updates: Mapping[str, Any], *,
               condition: str | Condition | None = None, values: Mapping[str, Any] | None = None,
               expected_version: int | None = None) -> EntityTransaction:
        """SET (None: REMOVE) fields of an existing item, if `condition` holds."""
        repository = self.repository(entity)
        spec = repository.update_spec(f"{entity}.update", key, updates, expected_version)
        tree = parse_condition(condition) if isinstance(condition, str) else condition
        if tree is not None and tree.params():
            tree = bind(tree, values or {})
        combined = spec.condition if tree is None else spec.condition & tree
        names = Names()
        body = {"UpdateExpression": update_expression(names, spec.set_values, spec.remove),
                "ConditionExpression": render(combined, names), **names.params()}
        self.builder.update_prepared(repository.table.name, spec.key, body, entity)
        return self

    def delete(self, entity: str, key: Mapping[str, Any], *,
               condition: str | Condition | None = None,
               values: Mapping[str, Any] | None = None) -> EntityTransaction:
        """Delete the item, if `condition` holds."""
        repository = self.repository(entity)
        self.builder.delete(repository.table.name, self._key(repository, key), condition=condition,
                            values=values, entity=entity)
        return self

    def condition_check(self, entity: str, key: Mapping[str, Any], condition: str | Condition, *,
                        values: Mapping[str, Any] | None = None) -> EntityTransaction:
        """Cancel the transaction unless `condition` holds for the item."""
        repository = self.repository(entity)
        self.builder.condition_check(repository.table.name, self._key(repository, key), condition,
                                     values=values, entity=entity)
        return self

    def get(self, entity: str, key: Mapping[str, Any]) -> EntityTransaction:
        """Read the item in the transaction's snapshot."""
        repository = self.repository(entity)
        self.builder.get(repository.table.name, self._key(repository, key), entity=entity)
        self._gets.append(entity)
        return self

    @staticmethod
    def _key(repository: Repository, key: Mapping[str, Any]) -> Item:
        missing = [name for name in repository.entity.key_fields if key.get(name) is None]
        if missing:
            raise ParameterError(f"{repository.entity.name} key", missing[0],
                                 f"needed to build the key of {repository.entity.name}")
        return repository.key_from_values(key)

    def commit(self) -> list[EntityModel | None]:
        """Send the transaction; gets return their models (None: no item) in order."""
        items = self.builder.commit()
        out: list[EntityModel | None] = []
        for entity, item in zip(self._gets, items, strict=False):
            repository = self.repository(entity)
            out.append(repository.from_item(item) if item and repository.mapper.is_mine(item)
                       else None)
        return out
