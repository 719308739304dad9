"""An access pattern's parameters: checked against their declared types and converted
(entities into models, arrays, numbers exactly), with the per-call options, before any
request is built."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from migration.contract.model import (
    Parameter,
)
from migration.dynamodb.models import EntityModel, ModelSet
from migration.dynamodb.runtime.errors import ParameterError

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
        raise ParameterError(owner, name, f"is not a valid {entity}: {validation_text(err)}") from err


def validation_text(err: ValidationError) -> str:
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


