"""Pydantic models of a contract's entities, built from each entity's `fields`.

Owns the type rules from contract field types to Python types (shared with the
code generator, which writes the same models as source), the models built at
run time for a contract, and their `Partial` twins (every attribute optional)
that results of projections and KEYS_ONLY/INCLUDE indexes are returned as.

Besides its fields, a model holds the entity's *key values*: placeholders of
its key templates that are not fields (the shop's Order is keyed by
``{user_email}``, a value looked up in MySQL). Without them an item could not
be built from the model; they are read back by parsing the item's keys.
"""

from __future__ import annotations

import keyword
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, create_model

from migration.contract.keys import KeyTemplate, Placeholder
from migration.contract.model import Contract, Entity
from migration.errors import MigrateError, Terminal

# Field type -> (annotation text, runtime type). Integers and booleans are strict:
# a bool is not an integer and 1 is not a boolean (MySQL's TINYINT(1) is converted
# by the row mapper, never by the model).
_SCALARS: dict[str, tuple[str, Any]] = {
    "string": ("str", str),
    "uuid": ("str", str),
    "integer": ("StrictInt", StrictInt),
    "decimal": ("Decimal", Decimal),
    "boolean": ("StrictBool", StrictBool),
    "datetime": ("datetime", datetime),
    "binary": ("bytes", bytes),
    "object": ("dict[str, Any]", dict[str, Any]),
}
_BASE_ATTRIBUTES = frozenset(dir(BaseModel))
_NOT_IDENTIFIER = re.compile(r"[^0-9A-Za-z_]")


class ModelError(MigrateError, Terminal):
    """A model cannot be built for an entity, or a value is not a model of it."""


class EntityModel(BaseModel):
    """Base of every entity model, built at run time or generated as source.

    `__entity_name__` says which contract entity the model is, so a model can be
    written without saying where it goes.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())

    __entity_name__: ClassVar[str] = ""
    __partial__: ClassVar[bool] = False

    def values(self) -> dict[str, Any]:
        """Field and key values by their contract names (what `ItemMapper.to_item` takes)."""
        return self.model_dump(by_alias=True)


def attribute_name(name: str) -> str:
    """A Python attribute name for a contract name: keywords, leading underscores,
    invalid characters and names BaseModel already uses get an alias."""
    candidate = _NOT_IDENTIFIER.sub("_", name)
    if not candidate or candidate[0].isdigit():
        candidate = "f_" + candidate
    if candidate.startswith("_"):
        candidate = "f" + candidate
    if keyword.iskeyword(candidate) or candidate in _BASE_ATTRIBUTES:
        candidate += "_"
    return candidate


def annotation_of(field_type: str, item_type: str | None = None) -> tuple[str, Any]:
    """(annotation text, runtime type) of a contract field or parameter type."""
    if field_type == "array":
        if item_type in _SCALARS:
            text, runtime = _SCALARS[item_type]
            return f"list[{text}]", list[runtime]  # type: ignore[valid-type]
        return "list[Any]", list[Any]
    if field_type not in _SCALARS:
        raise ModelError(f"no Python type for field type {field_type!r}")
    return _SCALARS[field_type]


@dataclass(frozen=True)
class ModelField:
    """One attribute of an entity model."""

    name: str  # the contract name (the alias when it differs from `attribute`)
    attribute: str  # the Python attribute name
    annotation: str
    python_type: Any
    required: bool
    field_type: str  # a contract field type; key values are "string"
    is_key_value: bool = False


def key_templates(entity: Entity) -> list[KeyTemplate]:
    """Every key template of the entity: primary key first, then its index keys."""
    templates = [entity.pk] + ([entity.sk] if entity.sk is not None else [])
    for keys in entity.index_keys:
        templates += keys.templates
    return templates


def key_value_names(entity: Entity) -> tuple[str, ...]:
    """Key template placeholders that are not fields, in order of appearance."""
    fields = {f.name for f in entity.fields}
    names: list[str] = []
    for template in key_templates(entity):
        names += [name for name in template.fields if name not in fields]
    return tuple(dict.fromkeys(names))


def _required_key_values(entity: Entity) -> set[str]:
    required: set[str] = set()
    for template in (entity.pk, entity.sk):
        if template is None:
            continue
        required |= {p.name for p in template.parts
                     if isinstance(p, Placeholder) and p.default is None}
    return required


def model_fields(entity: Entity, *, partial: bool = False) -> list[ModelField]:
    """The attributes of the entity's model (fields, then key values), in contract order."""
    out: list[ModelField] = []
    seen: dict[str, str] = {}
    required_keys = _required_key_values(entity)
    specs: list[tuple[str, str, str | None, bool, bool]] = [
        (f.name, f.type, f.item_type, f.required, False) for f in entity.fields]
    specs += [(name, "string", None, name in required_keys, True)
              for name in key_value_names(entity)]
    for name, field_type, item_type, required, is_key in specs:
        attribute = attribute_name(name)
        if attribute in seen:
            raise ModelError(f"entity {entity.name}: {name!r} and {seen[attribute]!r} would both "
                             f"be the Python attribute {attribute!r}")
        seen[attribute] = name
        text, runtime = annotation_of(field_type, item_type)
        keep = required and not partial
        out.append(ModelField(name=name, attribute=attribute,
                              annotation=text if keep else f"{text} | None",
                              python_type=runtime if keep else runtime | None,
                              required=keep, field_type=field_type, is_key_value=is_key))
    return out


def model_name(entity: Entity, *, partial: bool = False) -> str:
    """The class name of an entity's model: the entity name, `Partial` appended for the twin."""
    return entity.name + ("Partial" if partial else "")


def build_model(entity: Entity, *, partial: bool = False) -> type[EntityModel]:
    """A Pydantic model class for the entity, built now (what codegen writes as source)."""
    definitions: dict[str, Any] = {}
    for spec in model_fields(entity, partial=partial):
        alias = spec.name if spec.name != spec.attribute else None
        default: Any = ... if spec.required else None
        definitions[spec.attribute] = (spec.python_type, Field(default, alias=alias))
    model = create_model(model_name(entity, partial=partial), __base__=EntityModel,
                         __module__=__name__, **definitions)
    model.__entity_name__ = entity.name
    model.__partial__ = partial
    return model


class ModelSet:
    """The models of one contract's entities: given ones (generated code) or built ones.

    Thread-safe; models are built on first use and then reused.
    """

    def __init__(self, contract: Contract,
                 models: Mapping[str, type[EntityModel]] | None = None,
                 partial_models: Mapping[str, type[EntityModel]] | None = None):
        self.contract = contract
        self._full: dict[str, type[EntityModel]] = dict(models or {})
        self._partial: dict[str, type[EntityModel]] = dict(partial_models or {})
        self._lock = threading.Lock()
        for given in (self._full, self._partial):
            for name, model in given.items():
                contract.entity(name)  # a KeyError for an entity the contract lacks
                if model.__entity_name__ != name:
                    raise ModelError(f"model {model.__name__} is for entity "
                                     f"{model.__entity_name__!r}, not {name!r}")

    def full(self, entity: str) -> type[EntityModel]:
        """The model of an entity, with its required fields required."""
        return self._get(entity, partial=False)

    def partial(self, entity: str) -> type[EntityModel]:
        """The twin model with every attribute optional (for projected reads)."""
        return self._get(entity, partial=True)

    def _get(self, entity: str, *, partial: bool) -> type[EntityModel]:
        cache = self._partial if partial else self._full
        model = cache.get(entity)
        if model is None:
            with self._lock:
                model = cache.get(entity)
                if model is None:
                    model = build_model(self.contract.entity(entity), partial=partial)
                    cache[entity] = model
        return model
