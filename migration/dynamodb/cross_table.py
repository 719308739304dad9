"""A schema's `cross_table_access_patterns`, run by name as one DynamoDB transaction.

Owns turning each declared involvement (table, entity, action, condition)
into a transaction action: keys from the entity's key templates filled from
the scalar parameters (or from the entity parameter of that type), Put items
from the entity parameter, Update SETs from the scalar parameters that are
fields of the entity, and the involvement's condition string compiled with
name placeholders. A TransactWrite commits all actions or none; a
TransactGet reads every item in one consistent snapshot.

User registration (seed 000): `run("register_user", user=..., email_lookup=...)`
writes both items or neither; a taken email surfaces as a
`TransactionItemExists` (a `TransactionConditionFailed`) whose `action` is the
EmailLookup Put.

The pieces of one transaction must belong together, or a caller's mistake would
leave orphans behind: values that identify one of the items (its key
placeholders, such as a User's `user_id` and an EmailLookup's `email`) must be
the same in every entity and scalar parameter that holds them, which is checked
before any call (`MismatchedEntities`); and a Delete also requires the item's
stored fields to equal the scalar parameters named after them (the EmailLookup
deleted must hold the `user_id` given), as part of its condition. A TransactGet
checks what it read the same way: a User and an EmailLookup that name different
users (`get_user_and_email` of one user's id and another's email) raise
`MismatchedEntities` instead of being returned as a pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from migration.contract.model import Contract, CrossTablePattern, Involvement
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.expressions import (
    Compare,
    Condition,
    ExpressionError,
    Function,
    Path,
    all_of,
    bind,
    parse_condition,
    value,
)
from migration.dynamodb.models import EntityModel, ModelSet
from migration.dynamodb.repository import (
    ParameterError,
    PatternNotRunnable,
    UnknownPattern,
    bind_parameters,
    coerce_entity,
)
from migration.dynamodb.transactions import EntityTransaction


class MismatchedEntities(ParameterError):
    """The parameters of a cross-table pattern disagree on a value that identifies one
    of its items (a User's user_id differs from its EmailLookup's); `values` says which
    parameter holds what."""

    def __init__(self, pattern: str, attribute: str, values: Mapping[str, Any]):
        self.attribute = attribute
        self.values = dict(values)
        held = ", ".join(f"{name} has {v!r}" for name, v in self.values.items())
        super().__init__(pattern, None, f"the items of one transaction must agree on "
                         f"{attribute!r}, but {held}")


class CrossTableService:
    """Runs the contract's cross-table patterns; thread-safe (each run builds its own
    transaction)."""

    def __init__(self, contract: Contract, ddb: DynamoDB, *, models: ModelSet | None = None,
                 max_attempts: int = 10):
        self.contract = contract
        self.ddb = ddb
        self.models = models or ModelSet(contract)
        self.max_attempts = max_attempts

    @property
    def patterns(self) -> tuple[str, ...]:
        """Names of the cross-table patterns, in contract order."""
        return tuple(p.name for p in self.contract.cross_table_patterns)

    def pattern(self, name: str) -> CrossTablePattern:
        found = self.contract.cross_table_pattern(name)
        if found is None:
            raise UnknownPattern("cross_table_access_patterns", name, self.patterns)
        return found

    def run(self, pattern: str, /, **params: Any) -> Any:
        """Run a cross-table pattern by name with its parameters as keyword arguments.

        A TransactWrite returns True (return_type boolean), or the written entities
        by entity name (object) or in order (array). A TransactGet returns
        ``{entity name: model or None}`` (object), the models in order (array), or
        whether every item exists (boolean). Cancellations raise the typed errors of
        `migration.dynamodb.transactions`.
        """
        return self.run_with(pattern, params)

    def run_with(self, pattern: str, params: Mapping[str, Any]) -> Any:
        """`run` with the parameters as one mapping (what generated code calls)."""
        declared = self.pattern(pattern)
        owner = declared.name
        values = bind_parameters(owner, declared.parameters, params, self.models)
        transaction = self.transaction(declared, values)
        models = transaction.commit()
        if declared.operation == "TransactGet":
            scalars = {p.name: values[p.name] for p in declared.parameters
                       if p.type != "entity" and values.get(p.name) is not None}
            read = [(label, model.values()) for label, model in
                    self._by_entity(declared.entities_involved, models).items()
                    if model is not None]
            self._agree(declared, read, scalars)
        return self._result(declared, values, models)

    def transaction(self, pattern: CrossTablePattern, values: Mapping[str, Any]) -> EntityTransaction:
        """The transaction a pattern means for already-bound parameter values (not sent)."""
        transaction = EntityTransaction(self.contract, self.ddb, models=self.models,
                                        max_attempts=self.max_attempts)
        scalars = {p.name: values[p.name] for p in pattern.parameters
                   if p.type != "entity" and values.get(p.name) is not None}
        self._check_agreement(pattern, values, scalars)
        for position, involvement in enumerate(pattern.entities_involved):
            where = f"{pattern.name} (entities_involved[{position}], {involvement.entity})"
            entity_param = self._entity_value(pattern, involvement, values)
            condition = self._condition(where, involvement, scalars)
            action = involvement.action
            if action == "Put":
                model = entity_param or self._model_from_scalars(where, involvement, scalars)
                if condition is not None and self._is_create_guard(involvement, condition):
                    transaction.create(model)
                else:
                    transaction.put(model, condition=condition)
                continue
            key = self._key_values(where, involvement, scalars, entity_param)
            if action == "Update":
                updates = self._updates(where, involvement, scalars)
                transaction.update(involvement.entity, key, updates, condition=condition)
            elif action == "Delete":
                guarded = all_of([condition, self._belongs(involvement, scalars)])
                transaction.delete(involvement.entity, key, condition=guarded)
            elif action == "ConditionCheck":
                if condition is None:
                    raise PatternNotRunnable(where, "a ConditionCheck needs a condition")
                transaction.condition_check(involvement.entity, key, condition)
            else:
                transaction.get(involvement.entity, key)
        return transaction

    # -- pieces ----------------------------------------------------------------------
    def _check_agreement(self, pattern: CrossTablePattern, values: Mapping[str, Any],
                         scalars: Mapping[str, Any]) -> None:
        """Refuse parameters that disagree on a value identifying one of the items."""
        models = [(p.name, model.values()) for p in pattern.parameters
                  if p.type == "entity" and isinstance(model := values.get(p.name), EntityModel)]
        self._agree(pattern, models, scalars)

    def _agree(self, pattern: CrossTablePattern,
               holders: Sequence[tuple[str, Mapping[str, Any]]],
               scalars: Mapping[str, Any]) -> None:
        """Raise `MismatchedEntities` when the holders (entity parameters, or the items a
        TransactGet read) and the scalar parameters disagree on an identifying value."""
        identifying: dict[str, None] = {}
        for involvement in pattern.entities_involved:
            identifying.update(dict.fromkeys(self.contract.entity(involvement.entity).key_fields))
        for attribute in identifying:
            held = {name: fields[attribute] for name, fields in holders
                    if fields.get(attribute) is not None}
            if attribute in scalars:
                held[attribute] = scalars[attribute]
            distinct = list(held.values())
            if any(v != distinct[0] for v in distinct[1:]):
                raise MismatchedEntities(pattern.name, attribute, held)

    def _belongs(self, involvement: Involvement, scalars: Mapping[str, Any]) -> Condition | None:
        # A Delete removes the item only if its stored fields are the ones the caller
        # named (the EmailLookup of this user_id), so a wrong pair cancels the whole
        # transaction instead of orphaning the other item.
        entity = self.contract.entity(involvement.entity)
        keys = set(entity.key_fields)
        checks: list[Condition | None] = []
        for name, given in scalars.items():
            fld = entity.field(name)
            if fld is not None and name not in keys:
                checks.append(Compare(Path.of(name), "=", value(given, fld.type)))
        return all_of(checks)

    def _entity_value(self, pattern: CrossTablePattern, involvement: Involvement,
                      values: Mapping[str, Any]) -> EntityModel | None:
        for param in pattern.parameters:
            if param.type == "entity" and param.entity_type == involvement.entity:
                given = values.get(param.name)
                if isinstance(given, EntityModel):
                    return given
        return None

    def _model_from_scalars(self, where: str, involvement: Involvement,
                            scalars: Mapping[str, Any]) -> EntityModel:
        entity = self.contract.entity(involvement.entity)
        fields = {f.name for f in entity.fields} | set(entity.key_fields)
        record = {name: v for name, v in scalars.items() if name in fields}
        if not record:
            raise ParameterError(where, None, f"a Put of {entity.name} needs a {entity.name} "
                                 "parameter or parameters named after its fields")
        return coerce_entity(where, entity.name, entity.name, record, self.models)

    def _key_values(self, where: str, involvement: Involvement, scalars: Mapping[str, Any],
                    entity_param: EntityModel | None) -> dict[str, Any]:
        entity = self.contract.entity(involvement.entity)
        source = entity_param.values() if entity_param is not None else {}
        key: dict[str, Any] = {}
        for name in entity.key_fields:
            if name in scalars:
                key[name] = scalars[name]
            elif source.get(name) is not None:
                key[name] = source[name]
            else:
                raise ParameterError(where, name, f"needed for the key of {entity.name} "
                                     f"({entity.pk.source}"
                                     + (f" / {entity.sk.source}" if entity.sk else "") + ")")
        return key

    def _updates(self, where: str, involvement: Involvement,
                 scalars: Mapping[str, Any]) -> dict[str, Any]:
        entity = self.contract.entity(involvement.entity)
        keys = set(entity.key_fields)
        updates = {name: v for name, v in scalars.items()
                   if entity.field(name) is not None and name not in keys}
        if not updates:
            raise PatternNotRunnable(where, f"an Update of {entity.name} needs parameters named "
                                     "after the fields it sets")
        return updates

    def _condition(self, where: str, involvement: Involvement,
                   scalars: Mapping[str, Any]) -> Condition | None:
        if not involvement.condition:
            return None
        try:
            tree = parse_condition(involvement.condition)
            return bind(tree, scalars) if tree.params() else tree
        except ExpressionError as err:
            raise PatternNotRunnable(where, str(err)) from err

    def _is_create_guard(self, involvement: Involvement, condition: Condition) -> bool:
        # attribute_not_exists on the table's partition key is the uniqueness guard:
        # its failure means "already exists", which deserves its own error type.
        table = self.contract.table(involvement.table)
        return condition == Function("attribute_not_exists", Path((table.partition_key,)))

    def _result(self, pattern: CrossTablePattern, values: Mapping[str, Any],
                models: list[EntityModel | None]) -> Any:
        involved = pattern.entities_involved
        if pattern.operation == "TransactGet":
            if pattern.return_type == "array":
                return models
            if pattern.return_type == "boolean":
                return all(m is not None for m in models)
            return self._by_entity(involved, models)
        if pattern.return_type == "boolean":
            return True
        written: list[EntityModel | None] = [
            self._entity_value(pattern, inv, values) if inv.action == "Put" else None
            for inv in involved]
        if pattern.return_type == "array":
            return written
        return self._by_entity(involved, written)

    @staticmethod
    def _by_entity(involved: tuple[Involvement, ...],
                   models: list[EntityModel | None]) -> dict[str, EntityModel | None]:
        out: dict[str, EntityModel | None] = {}
        for position, (involvement, model) in enumerate(zip(involved, models, strict=False)):
            name = involvement.entity if involvement.entity not in out else \
                f"{involvement.entity}#{position}"
            out[name] = model
        return out
