"""The access-pattern runtime's errors: bad input refused before any call, and stored
items that do not fit their model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from migration.errors import (
    ConditionFailed,
    MigrateError,
    Terminal,
)


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


def _key_text(key: Mapping[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in key.items()) + ")"


