"""The validator's primitives: problems collected with their JSON path, and the checks
of one value (a mapping, a name, a key template, key attribute names and types) that
every section of the contract uses.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from migration.contract.keys import KeyTemplate
from migration.contract.model import (
    KEY_TYPES,
    MAX_KEY_ATTRIBUTES,
    NUMERIC_FIELD_TYPES,
    Entity,
    KeyAttribute,
)
from migration.errors import ContractIssue, KeyTemplateError

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SQL_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_CONDITION_FUNCTION = re.compile(r"^\s*(attribute_exists|attribute_not_exists)\(\s*([^()\s]+)\s*\)\s*$")
MAX_GSIS = 20
MAX_LSIS = 5

_TABLE_CONFIG_KEYS = {
    "table_name", "partition_key", "sort_key", "partition_key_type", "sort_key_type",
    "billing_mode", "read_capacity", "write_capacity", "stream", "encryption", "kms_key_id",
    "point_in_time_recovery", "ttl_attribute", "deletion_protection", "tags",
}
_INDEX_KEYS = {
    "name", "index_name", "partition_key", "sort_key", "partition_key_type", "sort_key_type",
    "projection", "included_attributes", "read_capacity", "write_capacity",
}
_ENTITY_KEYS = {
    "entity_type", "pk_template", "sk_template", "pk_params", "sk_params", "gsi_mappings",
    "lsi_mappings", "fields", "access_patterns", "source", "version_field", "description",
}
_PATTERN_KEYS = {
    "pattern_id", "name", "description", "operation", "parameters", "return_type",
    "index_name", "range_condition", "filter_expression", "consistent_read", "projection",
    "limit",
}
_ROOT_KEYS = {"tables", "cross_table_access_patterns", "entity_type_attribute",
              "version_attribute", "description", "version", "coupled_entities"}
_COUPLED_KEYS = {"entities", "catch_up", "description"}
_TABLE_KEYS = {"table_config", "gsi_list", "lsi_list", "entities", "description"}
_FIELD_KEYS = {"name", "type", "required", "item_type", "column", "description", "value"}
_SOURCE_KEYS = {"table", "primary_key", "lookups", "embeds", "aggregates", "unique"}
_LOOKUP_KEYS = {"table", "on", "column"}
_EMBED_KEYS = {"table", "on", "columns", "order_by", "primary_key", "lookups", "limit"}
_AGGREGATE_KEYS = {"table", "on", "function", "column"}
# Every key the format knows somewhere: a key outside it that looks like a missing
# required key is named as its likely misspelling.
_KNOWN_KEYS = (_TABLE_CONFIG_KEYS | _INDEX_KEYS | _ENTITY_KEYS | _PATTERN_KEYS | _ROOT_KEYS
               | _TABLE_KEYS | _FIELD_KEYS | _SOURCE_KEYS | _LOOKUP_KEYS | _EMBED_KEYS
               | _AGGREGATE_KEYS | _COUPLED_KEYS
               | {"entity_type", "default", "entities_involved", "action", "condition", "entity",
                  "conditions", "logical_operator", "field", "operator", "function", "param",
                  "param2", "params"})


def key_path(base: str, key: str) -> str:
    """The JSON path of member `key` of the object at `base` (`$.a.b`, `$.a["x-y"]`)."""
    return f"{base}.{key}" if _IDENTIFIER.match(key) else f"{base}[{json.dumps(key)}]"


_key_path = key_path


class Checks:
    def __init__(self, file: str):
        self.file = file
        self.issues: list[ContractIssue] = []
        self.warnings: list[str] = []
        self.pattern_ids: dict[int, str] = {}
        self.entity_names: dict[str, str] = {}
        # Every entity of the document and its table's name, read before any table is
        # checked, to say where an entity a parameter names is declared.
        self.declared_entities: dict[str, str] = {}
        # The entities an access pattern's parameter may name: those of its own table
        # and of the tables before it, as AWS's MCP validator reads a schema (it knows
        # only the entities it has met); a cross-table pattern may name any.
        self.visible_entities: dict[str, str] = {}

    # -- reporting ---------------------------------------------------------

    def error(self, path: str, message: str) -> None:
        self.issues.append(ContractIssue(self.file, path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{self.file}: {path}: {message}")

    def warn_unused(self, path: str, unused: Sequence[str]) -> None:
        """Declared parameters the request has no place for: the runtime checks their
        values and sends nothing for them, which is rarely what the schema meant."""
        if unused:
            self.warn(path, f"parameter(s) {', '.join(unused)} are not used by the request: no "
                      "key condition, range_condition or filter_expression refers to them "
                      "(the runtime checks their values, then ignores them)")

    def unknown_keys(self, data: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in data:
            if key not in allowed and not str(key).startswith("_"):
                near = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.75)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                self.warn(_key_path(path, str(key)), f"unknown key {key!r} is ignored{hint}")

    def missing(self, data: Any, key: str, path: str, what: str = "") -> None:
        """A required key is absent from the object `data` at `path`; an unknown key of
        `data` that looks like it is named as its likely misspelling."""
        self.error(_key_path(path, key), f"missing required field {key!r}{what}"
                   f"{_misspelling(data, key)}")

    # -- typed accessors -----------------------------------------------------

    def mapping(self, value: Any, path: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(path, f"must be an object, got {_kind(value)}")
            return None
        return value

    def sequence(self, value: Any, path: str) -> list[Any] | None:
        if not isinstance(value, list):
            self.error(path, f"must be an array, got {_kind(value)}")
            return None
        return value

    def string(self, data: Mapping[str, Any], key: str, path: str, *, required: bool = True,
               choices: tuple[str, ...] | None = None) -> str | None:
        if key not in data or data[key] is None:
            if required:
                self.missing(data, key, path)
            return None
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            self.error(_key_path(path, key), f"must be a non-empty string, got {_kind(value)}")
            return None
        if choices is not None and value not in choices:
            self.error(_key_path(path, key),
                       f"invalid value {value!r}; valid values: {', '.join(choices)}")
            return None
        return value

    def boolean(self, data: Mapping[str, Any], key: str, path: str) -> bool | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.error(_key_path(path, key), f"must be true or false, got {_kind(value)}")
            return None
        return value

    def positive_int(self, data: Mapping[str, Any], key: str, path: str) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.error(_key_path(path, key), f"must be a positive integer, got {value!r}")
            return None
        return value

    def names(self, value: Any, path: str, pattern: re.Pattern[str] = _SQL_NAME) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        items = self.sequence(value, path)
        if items is None:
            return ()
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, str) or not pattern.match(item):
                self.error(f"{path}[{i}]", f"must be a column name, got {item!r}")
            else:
                out.append(item)
        return tuple(out)

    def template(self, data: Mapping[str, Any], key: str, path: str, known: set[str],
                 what: str, single_because: str | None = None) -> KeyTemplate | None:
        """One key template; `single_because` explains why an array is refused here."""
        value = data.get(key)
        kpath = _key_path(path, key)
        if value is None:
            self.missing(data, key, path)
            return None
        if isinstance(value, list) and single_because is not None:
            self.error(kpath, f"must be one template, not an array: {single_because}")
            return None
        return self.parse_template(value, kpath, known, what)

    def parse_template(self, value: Any, path: str, known: set[str],
                       what: str) -> KeyTemplate | None:
        if not isinstance(value, str) or not value.strip():
            self.error(path, f"must be a non-empty string, got {_kind(value)}")
            return None
        try:
            template = KeyTemplate(value)
        except KeyTemplateError as err:
            self.error(path, err.reason)
            return None
        for name in template.fields:
            if name not in known:
                self.error(path, f"placeholder {{{name}}} is not a field of the {what}")
        return template

    def templates(self, data: Mapping[str, Any], key: str, path: str, known: set[str],
                  what: str, attributes: tuple[str, ...],
                  index: str) -> tuple[KeyTemplate, ...] | None:
        """An index key's templates: a string, or an array with one template per key
        attribute of the index (multi-attribute keys)."""
        raw = data.get(key)
        kpath = _key_path(path, key)
        if not isinstance(raw, list):
            template = self.template(data, key, path, known, what)
            if template is None:
                return None
            if len(attributes) != 1:
                self.error(kpath, f"index {index} has {len(attributes)} {_which(key)} key "
                           f"attributes ({', '.join(attributes)}), so {key} must be an array of "
                           f"{len(attributes)} templates, one per attribute")
                return None
            return (template,)
        if len(raw) != len(attributes):
            self.error(kpath, f"lists {len(raw)} template(s) but index {index} has "
                       f"{len(attributes)} {_which(key)} key attribute(s) "
                       f"({', '.join(attributes)}); give one template per attribute, in order")
            return None
        out = []
        for i, item in enumerate(raw):
            template = self.parse_template(item, f"{kpath}[{i}]", known, what)
            if template is not None:
                out.append(template)
        return tuple(out) if len(out) == len(raw) else None

    def key_names(self, data: Mapping[str, Any], key: str, path: str, *,
                  required: bool) -> tuple[tuple[str, ...], bool] | None:
        """A GSI key's attribute names (one name, or an array of 1 to 4) and whether
        it was written as an array."""
        raw = data.get(key)
        if not isinstance(raw, list):
            name = self.string(data, key, path, required=required)
            return ((name,), False) if name is not None else None
        kpath = _key_path(path, key)
        which = _which(key)
        if not raw:
            self.error(kpath, f"must name 1 to {MAX_KEY_ATTRIBUTES} attributes, got an empty array")
            return None
        if len(raw) > MAX_KEY_ATTRIBUTES:
            self.error(kpath, f"DynamoDB allows at most {MAX_KEY_ATTRIBUTES} attributes in a GSI "
                       f"{which} key, got {len(raw)}")
            return None
        names: list[str] = []
        for i, item in enumerate(raw):
            if not isinstance(item, str) or not item.strip():
                self.error(f"{kpath}[{i}]", f"must be an attribute name, got {_kind(item)}")
            elif item in names:
                self.error(f"{kpath}[{i}]", f"attribute {item!r} is listed twice")
            else:
                names.append(item)
        return (tuple(names), True) if len(names) == len(raw) else None

    def key_types(self, data: Mapping[str, Any], key: str, path: str,
                  count: int) -> tuple[str, ...] | None:
        """Declared key types: one type (for a one-attribute key) or one per attribute."""
        raw = data.get(key)
        if raw is None:
            return None
        kpath = _key_path(path, key)
        if not isinstance(raw, list):
            declared = self.string(data, key, path, required=False, choices=KEY_TYPES)
            if declared is None:
                return None
            if count != 1:
                self.error(kpath, f"the key has {count} attributes, so give a list of {count} "
                           "types, one per attribute")
                return None
            return (declared,)
        if len(raw) != count:
            self.error(kpath, f"lists {len(raw)} type(s) for {count} key attribute(s)")
            return None
        for i, item in enumerate(raw):
            if item not in KEY_TYPES:
                self.error(f"{kpath}[{i}]",
                           f"invalid value {item!r}; valid values: {', '.join(KEY_TYPES)}")
                return None
        return tuple(raw)

    # -- the document ----------------------------------------------------------

def _misspelling(data: Any, key: str) -> str:
    """"; found 'pk_tempate': did you mean 'pk_template'?" when `data` holds a key the
    format does not know that looks like `key`, else ""."""
    if not isinstance(data, Mapping):
        return ""
    unknown = [k for k in data if isinstance(k, str) and k not in _KNOWN_KEYS
               and not k.startswith("_")]
    near = difflib.get_close_matches(key, unknown, n=1, cutoff=0.75)
    return f"; found unknown key {near[0]!r}: did you mean {key!r}?" if near else ""


def _which(key: str) -> str:
    return "partition" if key.startswith("p") else "sort"


def _key_attributes(names: tuple[str, ...],
                    types: tuple[str, ...] | None) -> tuple[KeyAttribute, ...]:
    return tuple(KeyAttribute(n, types[i] if types else "") for i, n in enumerate(names))


def _native_key_type(field_type: str) -> str | None:
    """The key type a field's values have in an item (None: not a valid key type)."""
    if field_type in NUMERIC_FIELD_TYPES:
        return "N"
    if field_type == "binary":
        return "B"
    if field_type in ("string", "uuid", "datetime"):
        return "S"
    return None


def _template_key_type(entity: Entity, attribute: str, template: KeyTemplate,
                       native: bool) -> str:
    name = template.single_field
    if name is None or not (native or name == attribute):
        return "S"
    fld = entity.field(name)
    kind = _native_key_type(fld.type) if fld is not None else None
    return kind if kind in ("N", "B") else "S"


def _entity_pk(entity: Entity) -> KeyTemplate | None:
    return entity.pk


def _entity_sk(entity: Entity) -> KeyTemplate | None:
    return entity.sk


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _value_fits(value: Any, ptype: str) -> bool:
    if value is None:
        return True
    if ptype in ("string", "uuid", "datetime"):
        return isinstance(value, str)
    if ptype == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if ptype == "decimal":
        return isinstance(value, int | float | str) and not isinstance(value, bool)
    if ptype == "boolean":
        return isinstance(value, bool)
    if ptype == "array":
        return isinstance(value, list)
    if ptype == "object":
        return isinstance(value, dict)
    return True


def _types_compatible(param_type: str, field_type: str) -> bool:
    if param_type == field_type:
        return True
    if field_type == "decimal" and param_type == "integer":
        return True
    return {param_type, field_type} <= {"string", "uuid", "datetime"}

