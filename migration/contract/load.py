"""Read a contract (or a plain seed-002 schema) from YAML/JSON and validate it.

Every problem is collected, not just the first: a `ContractError` lists each
one with the file, the JSON path inside it (``$.tables[0].entities.User...``)
and the reason. A file that loads is safe for every later stage to trust.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from migration.contract.key_conditions import KeyConditionError, key_condition_shape
from migration.contract.keys import KeyTemplate
from migration.contract.model import (
    AGGREGATE_FUNCTIONS,
    BILLING_MODES,
    CROSS_TABLE_OPERATIONS,
    CROSS_TABLE_RETURN_TYPES,
    ENCRYPTION_TYPES,
    FIELD_TYPES,
    FILTER_FUNCTIONS,
    FILTER_OPERATORS,
    KEY_TYPES,
    LOGICAL_OPERATORS,
    MAX_KEY_ATTRIBUTES,
    NUMERIC_FIELD_TYPES,
    OPERATIONS,
    PARAMETER_TYPES,
    PROJECTIONS,
    RANGE_CONDITIONS,
    RETURN_TYPES,
    STREAM_VIEW_TYPES,
    AccessPattern,
    Aggregate,
    Contract,
    CrossTablePattern,
    Embed,
    Entity,
    Field,
    FilterCondition,
    FilterExpression,
    Index,
    IndexKeys,
    Involvement,
    KeyAttribute,
    Lookup,
    Parameter,
    Source,
    Table,
    TableOptions,
)
from migration.errors import ContractError, ContractIssue, KeyTemplateError

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
              "version_attribute", "description", "version"}
_TABLE_KEYS = {"table_config", "gsi_list", "lsi_list", "entities", "description"}
_FIELD_KEYS = {"name", "type", "required", "item_type", "column", "description"}
_SOURCE_KEYS = {"table", "primary_key", "lookups", "embeds", "aggregates", "unique"}
_LOOKUP_KEYS = {"table", "on", "column"}
_EMBED_KEYS = {"table", "on", "columns", "order_by", "primary_key", "lookups", "limit"}
_AGGREGATE_KEYS = {"table", "on", "function", "column"}
# Every key the format knows somewhere: a key outside it that looks like a missing
# required key is named as its likely misspelling.
_KNOWN_KEYS = (_TABLE_CONFIG_KEYS | _INDEX_KEYS | _ENTITY_KEYS | _PATTERN_KEYS | _ROOT_KEYS
               | _TABLE_KEYS | _FIELD_KEYS | _SOURCE_KEYS | _LOOKUP_KEYS | _EMBED_KEYS
               | _AGGREGATE_KEYS
               | {"entity_type", "default", "entities_involved", "action", "condition", "entity",
                  "conditions", "logical_operator", "field", "operator", "function", "param",
                  "param2", "params"})


class _Yaml12Loader(yaml.SafeLoader):
    """A safe YAML loader with YAML 1.2 booleans: only true/false are booleans.

    YAML 1.1 reads `on`, `off`, `yes` and `no` as booleans, which would turn the
    contract's `on:` join keys into `True`.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def read_document(path: str | Path) -> Any:
    """Parse a YAML or JSON file. A file that is not UTF-8 text, a syntax error, or a
    YAML mapping holding one key twice becomes a ContractError naming the file (and
    where in it), never a traceback."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ContractError([ContractIssue(str(path), "$", f"cannot read file: {err}")]) from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ContractError([ContractIssue(
            str(path), "$", f"not UTF-8 text at byte {err.start} (line {line}): save the file "
            "as UTF-8")]) from err
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return _load_yaml(text, str(path))
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        kind = path.suffix[1:] or "YAML"
        raise ContractError([ContractIssue(str(path), "$", f"not valid {kind}: {err}")]) from err


def _load_yaml(text: str, file: str) -> Any:
    """YAML 1.2 booleans, and no key twice in one mapping: YAML itself would keep the
    last value without a word, and the first would be lost."""
    loader = _Yaml12Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        duplicates = [ContractIssue(file, where, message)
                      for where, message in _duplicate_keys(loader, node, "$", set())]
        if duplicates:
            raise ContractError(duplicates)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _duplicate_keys(loader: _Yaml12Loader, node: yaml.Node, path: str,
                    seen: set[int]) -> Iterator[tuple[str, str]]:
    """(JSON path, message) for every key given twice in one mapping, at any depth."""
    if id(node) in seen:  # an alias of a node already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(loader, item, f"{path}[{i}]", seen)
    elif isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges keys on purpose; later ones win
            key = loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) \
                else None
            where = key_path(path, str(key))
            line = key_node.start_mark.line + 1
            if key is not None and key in first:
                yield where, (f"duplicate key {key!r} at line {line} (first at line "
                              f"{first[key]}): YAML would keep only the last value; remove "
                              "one or rename it")
            elif key is not None:
                first[key] = line
            yield from _duplicate_keys(loader, value_node, where, seen)


def load_contract(path: str | Path) -> Contract:
    """Load and validate a contract file; raises ContractError listing every problem."""
    data = read_document(path)
    return parse_contract(data, file=str(path), path=Path(path))


def parse_contract(data: Any, file: str = "<contract>", path: Path | None = None) -> Contract:
    """Validate an already-parsed document and build the Contract."""
    return _Checker(file).contract(data, path)


def key_path(base: str, key: str) -> str:
    """The JSON path of member `key` of the object at `base` (`$.a.b`, `$.a["x-y"]`)."""
    return f"{base}.{key}" if _IDENTIFIER.match(key) else f"{base}[{json.dumps(key)}]"


_key_path = key_path


class _Checker:
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
    def contract(self, data: Any, path: Path | None) -> Contract:
        root = self.mapping(data, "$")
        if root is None:
            raise ContractError(self.issues)
        for raw_table in root.get("tables") or []:
            if isinstance(raw_table, dict) and isinstance(raw_table.get("entities"), dict):
                config = raw_table.get("table_config")
                name = config.get("table_name") if isinstance(config, dict) else None
                for entity_name in raw_table["entities"]:
                    self.declared_entities.setdefault(str(entity_name), str(name))
        self.unknown_keys(root, _ROOT_KEYS, "$")
        tables: list[Table] = []
        raw_tables = root.get("tables")
        if raw_tables is None:
            self.missing(root, "tables", "$")
        elif (items := self.sequence(raw_tables, "$.tables")) is not None:
            if not items:
                self.error("$.tables", "must list at least one table")
            seen_tables: dict[str, str] = {}
            for i, raw in enumerate(items):
                table = self.table(raw, f"$.tables[{i}]")
                if table is None:
                    continue
                if table.name in seen_tables:
                    self.error(f"$.tables[{i}].table_config.table_name",
                               f"duplicate table name {table.name!r} (also at {seen_tables[table.name]})")
                seen_tables[table.name] = f"$.tables[{i}]"
                tables.append(table)
        cross: list[CrossTablePattern] = []
        if root.get("cross_table_access_patterns") is not None:
            cross = self.cross_table_patterns(root["cross_table_access_patterns"], tables)
        type_attr = self.string(root, "entity_type_attribute", "$", required=False) or "_type"
        version_attr = self.string(root, "version_attribute", "$", required=False) or "_version"
        for table in tables:
            for attr in (type_attr, version_attr):
                if attr in table.attribute_types():
                    self.error("$.entity_type_attribute" if attr == type_attr
                               else "$.version_attribute",
                               f"{attr!r} is a key attribute of table {table.name}")
        if self.issues:
            raise ContractError(self.issues)
        return Contract(path=path, tables=tuple(tables), cross_table_patterns=tuple(cross),
                        entity_type_attribute=type_attr, version_attribute=version_attr,
                        warnings=tuple(self.warnings))

    # -- tables ----------------------------------------------------------------
    def table(self, raw: Any, path: str) -> Table | None:
        data = self.mapping(raw, path)
        if data is None:
            return None
        self.unknown_keys(data, _TABLE_KEYS, path)
        cfg_path = f"{path}.table_config"
        if "table_config" not in data:
            self.missing(data, "table_config", path)
            return None
        cfg = self.mapping(data["table_config"], cfg_path)
        if cfg is None:
            return None
        self.unknown_keys(cfg, _TABLE_CONFIG_KEYS, cfg_path)
        name = self.string(cfg, "table_name", cfg_path)
        if name is not None and not _TABLE_NAME.match(name):
            self.error(f"{cfg_path}.table_name",
                       f"{name!r} is not a valid DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")
        for key in ("partition_key", "sort_key"):
            if isinstance(cfg.get(key), list):
                self.error(f"{cfg_path}.{key}", "a table's own key is one attribute: DynamoDB "
                           "allows multi-attribute keys only on global secondary indexes "
                           "(gsi_list)")
        pk = self.string(cfg, "partition_key", cfg_path) \
            if not isinstance(cfg.get("partition_key"), list) else None
        sk = self.string(cfg, "sort_key", cfg_path, required=False) \
            if not isinstance(cfg.get("sort_key"), list) else None
        if pk is not None and sk is not None and pk == sk:
            self.error(f"{cfg_path}.sort_key", "sort key and partition key must differ")
        pk_type = self.string(cfg, "partition_key_type", cfg_path, required=False, choices=KEY_TYPES)
        sk_type = self.string(cfg, "sort_key_type", cfg_path, required=False, choices=KEY_TYPES)
        options = self.table_options(cfg, cfg_path)
        gsis, native = self.indexes(data.get("gsi_list"), f"{path}.gsi_list", "GSI")
        lsis, _ = self.indexes(data.get("lsi_list"), f"{path}.lsi_list", "LSI")
        for lsi in lsis:
            if any(g.name == lsi.name for g in gsis):
                self.error(f"{path}.lsi_list", f"index name {lsi.name!r} is used by a GSI too")
        if lsis and sk is None:
            self.error(f"{path}.lsi_list", "a local secondary index needs a table with a sort key")
        if pk is None or name is None:
            return None
        entities: dict[str, Entity] = {}
        ents_path = f"{path}.entities"
        raw_entities = data.get("entities")
        if raw_entities is None:
            self.missing(data, "entities", path)
        elif (ents := self.mapping(raw_entities, ents_path)) is not None:
            if not ents:
                self.error(ents_path, "must define at least one entity")
            for ent_name in ents:
                self.visible_entities.setdefault(str(ent_name), name)
            for ent_name, raw_entity in ents.items():
                ent_path = _key_path(ents_path, str(ent_name))
                if not isinstance(ent_name, str) or not _IDENTIFIER.match(ent_name):
                    self.error(ent_path, f"entity name {ent_name!r} is not an identifier")
                    continue
                if ent_name in self.entity_names:
                    self.error(ent_path, f"duplicate entity name {ent_name!r}: already defined at "
                               f"{self.entity_names[ent_name]}; entity names must be unique "
                               "across all tables")
                    continue
                self.entity_names[ent_name] = ent_path
                entity = self.entity(ent_name, raw_entity, ent_path, name, pk, sk, gsis, lsis)
                if entity is not None:
                    entities[ent_name] = entity
        pk_type = pk_type or self.infer_key_type(pk, ents_path, entities, _entity_pk)
        if sk is not None:
            sk_type = sk_type or self.infer_key_type(sk, ents_path, entities, _entity_sk)
        gsis = tuple(self.typed_index(ix, ents_path, entities, ix.name in native) for ix in gsis)
        lsis = tuple(self.typed_index(ix, ents_path, entities, False) for ix in lsis)
        self.check_unmapped_key_fields(ents_path, entities, gsis)
        return Table(name=name, partition_key=pk, sort_key=sk, partition_key_type=pk_type,
                     sort_key_type=sk_type or "S", gsis=gsis, lsis=lsis, options=options,
                     entities=entities)

    def infer_key_type(self, attribute: str, path: str, entities: Mapping[str, Entity],
                       template_of: Callable[[Entity], KeyTemplate | None], *,
                       native: bool = False) -> str:
        """A key attribute keeps a field's type (integer/decimal: N, binary: B) only when
        it *is* that field: same name, bare ``{field}`` template. Composite or
        overloaded keys (``PK``, ``GSI1PK``) are strings. With `native` (an index key
        written as an array) a bare ``{field}`` template keeps the field's type
        whatever the attribute is called."""
        kinds = set()
        for entity in entities.values():
            template = template_of(entity)
            if template is None:
                continue
            kinds.add(_template_key_type(entity, attribute, template, native))
        if len(kinds) > 1:
            self.error(path, f"entities disagree on the type of key attribute {attribute!r}: "
                       f"they store {' and '.join(sorted(kinds))}; declare it explicitly")
            return "S"
        return kinds.pop() if kinds else "S"

    def typed_index(self, index: Index, path: str, entities: Mapping[str, Entity],
                    native: bool) -> Index:
        def typed(attributes: tuple[KeyAttribute, ...], sort: bool) -> tuple[KeyAttribute, ...]:
            out = []
            for position, attribute in enumerate(attributes):
                def template_of(e: Entity, position: int = position) -> KeyTemplate | None:
                    keys = e.index_key(index.name)
                    templates = (keys.sk if sort else keys.pk) if keys else ()
                    return templates[position] if position < len(templates) else None

                kind = attribute.type or self.infer_key_type(attribute.name, path, entities,
                                                             template_of, native=native)
                out.append(KeyAttribute(attribute.name, kind))
            return tuple(out)

        return replace(index, partition_attributes=typed(index.partition_attributes, False),
                       sort_attributes=typed(index.sort_attributes, True))

    def check_unmapped_key_fields(self, path: str, entities: Mapping[str, Entity],
                                  gsis: tuple[Index, ...]) -> None:
        """DynamoDB indexes every item holding a GSI's key attributes, mapped or not, and
        refuses one whose attribute has another type than the index's."""
        for entity in entities.values():
            for index in gsis:
                if entity.index_key(index.name) is not None:
                    continue
                for attribute in index.key_attributes:
                    fld = entity.field(attribute.name)
                    if fld is not None and _native_key_type(fld.type) != attribute.type:
                        self.error(_key_path(f"{_key_path(path, entity.name)}.fields", fld.name),
                                   f"field {fld.name!r} ({fld.type}) has the name of key attribute "
                                   f"{attribute.name!r} ({attribute.type}) of GSI {index.name}: "
                                   f"DynamoDB would refuse {entity.name}'s items; rename the "
                                   "field or map the entity to the index")

    def table_options(self, cfg: Mapping[str, Any], path: str) -> TableOptions:
        billing = self.string(cfg, "billing_mode", path, required=False, choices=BILLING_MODES)
        rcu = self.positive_int(cfg, "read_capacity", path)
        wcu = self.positive_int(cfg, "write_capacity", path)
        if billing == "PROVISIONED" and (rcu is None or wcu is None):
            self.error(path, "billing_mode PROVISIONED needs read_capacity and write_capacity")
        if billing != "PROVISIONED" and (rcu is not None or wcu is not None):
            self.error(path, "read_capacity/write_capacity need billing_mode PROVISIONED")
        stream: str | None = None
        if cfg.get("stream") not in (None, False):
            stream = self.string(cfg, "stream", path, required=False, choices=STREAM_VIEW_TYPES)
        encryption = self.string(cfg, "encryption", path, required=False, choices=ENCRYPTION_TYPES)
        kms = self.string(cfg, "kms_key_id", path, required=False)
        if kms and encryption != "KMS":
            self.error(f"{path}.kms_key_id", "kms_key_id needs encryption: KMS")
        tags: tuple[tuple[str, str], ...] = ()
        if cfg.get("tags") is not None and (raw := self.mapping(cfg["tags"], f"{path}.tags")):
            pairs = []
            for k, v in raw.items():
                if not isinstance(v, str | int | float) or isinstance(v, bool):
                    self.error(_key_path(f"{path}.tags", str(k)), "a tag value must be a string")
                    continue
                pairs.append((str(k), str(v)))
            tags = tuple(sorted(pairs))
        return TableOptions(
            billing_mode=billing or "PAY_PER_REQUEST", read_capacity=rcu, write_capacity=wcu,
            stream=stream, encryption=encryption, kms_key_id=kms,
            point_in_time_recovery=self.boolean(cfg, "point_in_time_recovery", path),
            ttl_attribute=self.string(cfg, "ttl_attribute", path, required=False),
            deletion_protection=self.boolean(cfg, "deletion_protection", path),
            tags=tags,
        )

    def indexes(self, raw: Any, path: str, kind: str) -> tuple[tuple[Index, ...], set[str]]:
        """The indexes of a gsi_list or lsi_list, and the names of those whose keys are
        written as arrays (their attributes keep their fields' types)."""
        native: set[str] = set()
        if raw is None:
            return (), native
        items = self.sequence(raw, path)
        if items is None:
            return (), native
        limit = MAX_GSIS if kind == "GSI" else MAX_LSIS
        if len(items) > limit:
            self.error(path, f"DynamoDB allows at most {limit} {kind}s per table, got {len(items)}")
        out: list[Index] = []
        seen: dict[str, int] = {}
        for i, raw_index in enumerate(items):
            ipath = f"{path}[{i}]"
            data = self.mapping(raw_index, ipath)
            if data is None:
                continue
            self.unknown_keys(data, _INDEX_KEYS, ipath)
            key = "name" if "name" in data or "index_name" not in data else "index_name"
            name = self.string(data, key, ipath)
            if name is None:
                continue
            if not _TABLE_NAME.match(name):
                self.error(f"{ipath}.{key}", f"{name!r} is not a valid index name "
                           "(3-255 of A-Z a-z 0-9 _ . -)")
            if name in seen:
                self.error(f"{ipath}.{key}", f"duplicate index name {name!r} "
                           f"(also at {path}[{seen[name]}])")
                continue
            seen[name] = i
            pk: tuple[str, ...] = ()
            sk: tuple[str, ...] = ()
            if kind == "GSI":
                found = self.key_names(data, "partition_key", ipath, required=True)
                if found is None:
                    continue
                pk, pk_array = found
                sk_array = False
                if data.get("sort_key") is not None:
                    found = self.key_names(data, "sort_key", ipath, required=False)
                    if found is None:
                        continue
                    sk, sk_array = found
                if pk_array or sk_array:
                    native.add(name)
                both = [n for n in sk if n in pk]
                if both:
                    self.error(f"{ipath}.sort_key", f"attribute {both[0]!r} is in both the "
                               "partition key and the sort key")
                    continue
            else:
                if "partition_key" in data:
                    self.warn(f"{ipath}.partition_key",
                              "an LSI always uses the table's partition key; this is ignored")
                if isinstance(data.get("sort_key"), list):
                    self.error(f"{ipath}.sort_key", "a local secondary index's sort key is one "
                               "attribute: DynamoDB allows multi-attribute keys only on global "
                               "secondary indexes")
                    continue
                lsi_sk = self.string(data, "sort_key", ipath, required=True)
                sk = (lsi_sk,) if lsi_sk is not None else ()
            pk_types = self.key_types(data, "partition_key_type", ipath, len(pk)) \
                if kind == "GSI" else None
            sk_types = self.key_types(data, "sort_key_type", ipath, len(sk)) if sk else None
            projection = self.string(data, "projection", ipath, required=False,
                                     choices=PROJECTIONS) or "ALL"
            included: tuple[str, ...] = ()
            if data.get("included_attributes") is not None:
                included = self.names(data["included_attributes"], f"{ipath}.included_attributes",
                                      re.compile(r"^.+$"))
            if projection == "INCLUDE" and not included:
                self.error(ipath, "projection INCLUDE needs a non-empty included_attributes list")
            if projection != "INCLUDE" and included:
                self.error(f"{ipath}.included_attributes",
                           f"included_attributes only applies to projection INCLUDE, not {projection}")
            if kind == "LSI" and not sk:
                continue
            # An empty key type means "not declared": it is inferred from the entities.
            index = Index(name=name, kind=kind,
                          partition_attributes=_key_attributes(pk, pk_types),
                          sort_attributes=_key_attributes(sk, sk_types),
                          projection=projection, included_attributes=included,
                          read_capacity=self.positive_int(data, "read_capacity", ipath),
                          write_capacity=self.positive_int(data, "write_capacity", ipath))
            out.append(index)
        return tuple(out), native

    # -- entities ----------------------------------------------------------------
    def entity(self, name: str, raw: Any, path: str, table: str, table_pk: str,
               table_sk: str | None, gsis: tuple[Index, ...],
               lsis: tuple[Index, ...]) -> Entity | None:
        data = self.mapping(raw, path)
        if data is None:
            return None
        self.unknown_keys(data, _ENTITY_KEYS, path)
        entity_type = self.string(data, "entity_type", path, required=False) or name
        if data.get("fields") is None:
            self.missing(data, "fields", path)
        fields = self.fields(data.get("fields"), f"{path}.fields")
        field_names = {f.name for f in fields}
        source = None
        if data.get("source") is not None:
            source = self.source(data["source"], f"{path}.source", field_names)
        known = set(field_names)
        if source is not None:
            known |= set(source.primary_key) | {lk.name for lk in source.lookups}
            known |= {ag.name for ag in source.aggregates}
            for fld in fields:
                if fld.column:
                    known.add(fld.column)
        what = f"entity {name}"
        single = ("the table's own key is one attribute (arrays are for GSI keys, in "
                  "gsi_mappings)")
        pk = self.template(data, "pk_template", path, known, what, single)
        sk = None
        if table_sk is not None:
            if "sk_template" not in data:
                self.error(f"{path}.sk_template",
                           f"table {table} has sort key {table_sk!r}, so the entity needs an sk_template")
            else:
                sk = self.template(data, "sk_template", path, known, what, single)
        elif data.get("sk_template") is not None:
            self.error(f"{path}.sk_template",
                       f"table {table} has no sort key, so the entity cannot have an sk_template")
        for which, template in (("pk_params", pk), ("sk_params", sk)):
            if data.get(which) is not None and template is not None:
                declared = self.names(data[which], f"{path}.{which}", re.compile(r"^.+$"))
                if set(declared) != set(template.fields):
                    self.error(f"{path}.{which}", f"lists {list(declared)} but the template "
                               f"{template.source!r} uses {list(template.fields)}")
        index_keys = self.index_mappings(data, path, known, what, gsis, lsis)
        # A field may be the table's own key attribute (an MCP schema's `sort_key`): its
        # value is the key the template builds. An index attribute is written from its
        # template, so a field of its name must be that bare field, and an index keyed
        # on the table's key attribute reads the item's key as it is.
        table_keys = {table_pk, table_sk} - {None}
        for keys in index_keys:
            index = next(ix for ix in gsis + lsis if ix.name == keys.index)
            for attribute, index_template in zip(index.key_attributes, keys.templates, strict=True):
                attr = attribute.name
                if attr in table_keys and index_template.single_field != attr:
                    self.error(f"{path}.{'gsi' if index.kind == 'GSI' else 'lsi'}_mappings",
                               f"index {index.name}'s key attribute {attr!r} is the table's own key "
                               f"attribute: its template must be {{{attr}}}, not "
                               f"{index_template.source!r} (an item holds one {attr})")
                elif attr not in table_keys and attr in field_names and \
                        index_template.single_field != attr:
                    self.error(_key_path(f"{path}.fields", attr),
                               f"field {attr!r} has the name of a key attribute whose template "
                               f"{index_template.source!r} is not {{{attr}}}: the item cannot "
                               "hold both")
        version_field = self.string(data, "version_field", path, required=False)
        if version_field is not None:
            vf = next((f for f in fields if f.name == version_field), None)
            if vf is None or vf.type != "integer":
                self.error(f"{path}.version_field", "must name an integer field of the entity")
        if pk is None or (table_sk is not None and sk is None):
            return None
        entity = Entity(name=name, table=table, entity_type=entity_type, pk=pk, sk=sk,
                        index_keys=index_keys, fields=fields, source=source,
                        version_field=version_field)
        patterns = self.access_patterns(data.get("access_patterns"), f"{path}.access_patterns",
                                        entity, gsis + lsis, (table_pk, table_sk))
        return Entity(name=name, table=table, entity_type=entity_type, pk=pk, sk=sk,
                      index_keys=index_keys, fields=fields, access_patterns=patterns,
                      source=source, version_field=version_field)

    def index_mappings(self, data: Mapping[str, Any], path: str, known: set[str], what: str,
                       gsis: tuple[Index, ...], lsis: tuple[Index, ...]) -> tuple[IndexKeys, ...]:
        out: list[IndexKeys] = []
        for key, indexes, kind in (("gsi_mappings", gsis, "GSI"), ("lsi_mappings", lsis, "LSI")):
            if data.get(key) is None:
                continue
            items = self.sequence(data[key], f"{path}.{key}")
            if items is None:
                continue
            seen: set[str] = set()
            for i, raw in enumerate(items):
                mpath = f"{path}.{key}[{i}]"
                mapping = self.mapping(raw, mpath)
                if mapping is None:
                    continue
                name_key = "name" if "name" in mapping or "index_name" not in mapping else "index_name"
                name = self.string(mapping, name_key, mpath)
                if name is None:
                    continue
                if name in seen:
                    self.error(f"{mpath}.{name_key}", f"duplicate mapping for index {name!r}")
                    continue
                seen.add(name)
                index = next((ix for ix in indexes if ix.name == name), None)
                if index is None:
                    listed = ", ".join(ix.name for ix in indexes) or "none"
                    self.error(f"{mpath}.{name_key}", f"index {name!r} is not in the table's "
                               f"{'gsi_list' if kind == 'GSI' else 'lsi_list'} (defined: {listed})")
                    continue
                pk: tuple[KeyTemplate, ...] | None = ()
                if kind == "GSI":
                    pk = self.templates(mapping, "pk_template", mpath, known, what,
                                        index.partition_names, name)
                sk: tuple[KeyTemplate, ...] | None = ()
                if index.sort_attributes:
                    if mapping.get("sk_template") is None:
                        self.error(f"{mpath}.sk_template",
                                   f"index {name} has sort key {', '.join(index.sort_names)}, so "
                                   "the mapping needs an sk_template")
                        sk = None
                    elif kind == "LSI":
                        lsi_sk = self.template(mapping, "sk_template", mpath, known, what,
                                               "a local secondary index's sort key is one attribute")
                        sk = (lsi_sk,) if lsi_sk is not None else None
                    else:
                        sk = self.templates(mapping, "sk_template", mpath, known, what,
                                            index.sort_names, name)
                elif mapping.get("sk_template") is not None:
                    self.error(f"{mpath}.sk_template",
                               f"index {name} has no sort key, so the mapping cannot have an sk_template")
                if pk is None or sk is None:
                    continue
                out.append(IndexKeys(index=name, pk=pk, sk=sk))
        return tuple(out)

    def fields(self, raw: Any, path: str) -> tuple[Field, ...]:
        if raw is None:
            return ()  # reported by the entity, which can name a misspelling
        items = self.sequence(raw, path)
        if items is None:
            return ()
        out: list[Field] = []
        seen: set[str] = set()
        for i, raw_field in enumerate(items):
            fpath = f"{path}[{i}]"
            data = self.mapping(raw_field, fpath)
            if data is None:
                continue
            self.unknown_keys(data, _FIELD_KEYS, fpath)
            name = self.string(data, "name", fpath)
            ftype = self.string(data, "type", fpath, choices=FIELD_TYPES)
            if name is None or ftype is None:
                continue
            if name in seen:
                self.error(f"{fpath}.name", f"duplicate field name {name!r}")
                continue
            seen.add(name)
            required = data.get("required", False)
            if not isinstance(required, bool):
                self.error(f"{fpath}.required", f"must be true or false, got {_kind(required)}")
                required = False
            item_type = self.string(data, "item_type", fpath, required=False, choices=FIELD_TYPES)
            if ftype == "array" and item_type is None and "item_type" not in data:
                self.error(f"{fpath}.item_type", "an array field needs an item_type")
            column = self.string(data, "column", fpath, required=False)
            out.append(Field(name=name, type=ftype, required=required, item_type=item_type,
                             column=column))
        return tuple(out)

    # -- sources ------------------------------------------------------------------
    def source(self, raw: Any, path: str, field_names: set[str]) -> Source | None:
        data = self.mapping(raw, path)
        if data is None:
            return None
        self.unknown_keys(data, _SOURCE_KEYS, path)
        table = self.string(data, "table", path)
        if table is not None and not _SQL_NAME.match(table):
            self.error(f"{path}.table", f"{table!r} is not a MySQL table name")
        if data.get("primary_key") is None:
            self.missing(data, "primary_key", path)
            primary_key: tuple[str, ...] = ()
        else:
            primary_key = self.names(data["primary_key"], f"{path}.primary_key")
            if not primary_key:
                self.error(f"{path}.primary_key", "must name at least one column")
        lookups = self.lookups(data.get("lookups"), f"{path}.lookups")
        embeds = self.embeds(data.get("embeds"), f"{path}.embeds")
        aggregates = self.aggregates(data.get("aggregates"), f"{path}.aggregates")
        unique: tuple[str, ...] = ()
        if data.get("unique") is not None:
            unique = self.names(data["unique"], f"{path}.unique")
            for i, name in enumerate(unique):
                if name not in field_names:
                    self.error(f"{path}.unique[{i}]", f"{name!r} is not a field of the entity")
        derived: dict[str, str] = {}
        for kind, items in (("lookups", lookups), ("embeds", embeds), ("aggregates", aggregates)):
            for item in items:
                if item.name in derived:
                    self.error(_key_path(f"{path}.{kind}", item.name),
                               f"name {item.name!r} is already used by {derived[item.name]}")
                derived[item.name] = kind
        if table is None or not primary_key:
            return None
        return Source(table=table, primary_key=primary_key, lookups=lookups, embeds=embeds,
                      aggregates=aggregates, unique=unique)

    def join_on(self, data: Mapping[str, Any], path: str) -> tuple[tuple[str, str], ...]:
        raw = data.get("on")
        if raw is None:
            self.missing(data, "on", path, " ({related column: source column})")
            return ()
        on = self.mapping(raw, f"{path}.on")
        if on is None:
            return ()
        if not on:
            self.error(f"{path}.on", "must map at least one column")
        pairs = []
        for target, src in on.items():
            if not isinstance(target, str) or not _SQL_NAME.match(target) or \
                    not isinstance(src, str) or not _SQL_NAME.match(src):
                self.error(_key_path(f"{path}.on", str(target)),
                           f"must map a column name to a column name, got {target!r}: {src!r}")
                continue
            pairs.append((target, src))
        return tuple(pairs)

    def named_items(self, raw: Any, path: str) -> list[tuple[str, str, dict[str, Any]]]:
        if raw is None:
            return []
        data = self.mapping(raw, path)
        if data is None:
            return []
        out = []
        for name, body in data.items():
            ipath = _key_path(path, str(name))
            if not isinstance(name, str) or not _IDENTIFIER.match(name):
                self.error(ipath, f"name {name!r} is not an identifier")
                continue
            item = self.mapping(body, ipath)
            if item is not None:
                out.append((name, ipath, item))
        return out

    def lookups(self, raw: Any, path: str) -> tuple[Lookup, ...]:
        out = []
        for name, ipath, data in self.named_items(raw, path):
            self.unknown_keys(data, _LOOKUP_KEYS, ipath)
            table = self.string(data, "table", ipath)
            column = self.string(data, "column", ipath)
            on = self.join_on(data, ipath)
            if table and column and on:
                out.append(Lookup(name=name, table=table, on=on, column=column))
        return tuple(out)

    def embeds(self, raw: Any, path: str) -> tuple[Embed, ...]:
        out = []
        for name, ipath, data in self.named_items(raw, path):
            self.unknown_keys(data, _EMBED_KEYS, ipath)
            table = self.string(data, "table", ipath)
            on = self.join_on(data, ipath)
            columns: list[tuple[str, str]] = []
            raw_cols = data.get("columns")
            if raw_cols is None:
                self.missing(data, "columns", ipath)
            elif isinstance(raw_cols, dict):
                for attr, col in raw_cols.items():
                    if not isinstance(col, str) or not _SQL_NAME.match(col):
                        self.error(_key_path(f"{ipath}.columns", str(attr)),
                                   f"must name a column, got {col!r}")
                    else:
                        columns.append((str(attr), col))
            else:
                columns = [(c, c) for c in self.names(raw_cols, f"{ipath}.columns")]
            primary_key = self.names(data.get("primary_key", ["id"]), f"{ipath}.primary_key")
            order_by = (self.names(data["order_by"], f"{ipath}.order_by")
                        if data.get("order_by") is not None else primary_key)
            lookups = self.lookups(data.get("lookups"), f"{ipath}.lookups")
            limit = self.positive_int(data, "limit", ipath)
            if table and on and columns:
                out.append(Embed(name=name, table=table, on=on, columns=tuple(columns),
                                 order_by=order_by, primary_key=primary_key, lookups=lookups,
                                 limit=limit))
        return tuple(out)

    def aggregates(self, raw: Any, path: str) -> tuple[Aggregate, ...]:
        out = []
        for name, ipath, data in self.named_items(raw, path):
            self.unknown_keys(data, _AGGREGATE_KEYS, ipath)
            table = self.string(data, "table", ipath)
            on = self.join_on(data, ipath)
            function = self.string(data, "function", ipath, required=False,
                                   choices=AGGREGATE_FUNCTIONS) or "count"
            column = self.string(data, "column", ipath, required=function != "count")
            if table and on:
                out.append(Aggregate(name=name, table=table, on=on, function=function,
                                     column=column))
        return tuple(out)

    # -- access patterns ---------------------------------------------------------
    def entity_parameter(self, entity_type: str, path: str, table: str | None) -> None:
        """An entity parameter names an entity the pattern can see: of its own table or
        of a table before it (any, for a cross-table pattern, whose `table` is None).
        That is AWS's MCP validator's rule, which reads the tables in order and knows
        only the entities it has met; an earlier table's entity lends its values to a
        PutItem (the ecommerce example's review takes its user's)."""
        visible = self.declared_entities if table is None else self.visible_entities
        if entity_type in visible:
            return
        later = self.declared_entities.get(entity_type)
        if later is None:
            self.error(path, f"entity_type {entity_type!r} is not an entity of the contract")
        else:
            self.error(path, f"entity_type {entity_type!r} is an entity of table {later}, which "
                       f"comes after this pattern's table {table}: an access pattern's entity "
                       "parameters must be entities of its own table or of a table before it "
                       "(as AWS's MCP validator reads a schema); move the table up")

    def parameters(self, raw: Any, path: str, table: str | None = None) -> tuple[Parameter, ...]:
        if raw is None:
            return ()
        items = self.sequence(raw, path)
        if items is None:
            return ()
        out: list[Parameter] = []
        seen: set[str] = set()
        for i, raw_param in enumerate(items):
            ppath = f"{path}[{i}]"
            data = self.mapping(raw_param, ppath)
            if data is None:
                continue
            name = self.string(data, "name", ppath)
            ptype = self.string(data, "type", ppath, choices=PARAMETER_TYPES)
            if name is not None and not _IDENTIFIER.match(name):
                self.error(f"{ppath}.name", f"parameter name {name!r} is not an identifier")
                name = None
            if name is not None:
                if name in seen:
                    self.error(f"{ppath}.name", f"duplicate parameter name {name!r}")
                    continue
                seen.add(name)
            entity_type = None
            if ptype == "entity":
                entity_type = self.string(data, "entity_type", ppath)
                if entity_type is not None:
                    self.entity_parameter(entity_type, f"{ppath}.entity_type", table)
            has_default = "default" in data
            default = data.get("default")
            if has_default and ptype is not None and not _value_fits(default, ptype):
                self.error(f"{ppath}.default", f"default {default!r} is not a {ptype}")
            if name is None or ptype is None:
                continue
            out.append(Parameter(name=name, type=ptype, entity_type=entity_type, default=default,
                                 has_default=has_default, item_type=data.get("item_type")))
        return tuple(out)

    def pattern_id(self, data: Mapping[str, Any], path: str) -> int | None:
        value = data.get("pattern_id")
        if value is None:
            self.missing(data, "pattern_id", path)
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(f"{path}.pattern_id", f"must be an integer, got {_kind(value)}")
            return None
        if value in self.pattern_ids:
            self.error(f"{path}.pattern_id", f"duplicate pattern_id {value} (also at "
                       f"{self.pattern_ids[value]}); pattern ids are unique across the contract")
            return None
        self.pattern_ids[value] = path
        return value

    def access_patterns(self, raw: Any, path: str, entity: Entity, indexes: tuple[Index, ...],
                        table_key: tuple[str, str | None]) -> tuple[AccessPattern, ...]:
        if raw is None:
            return ()
        items = self.sequence(raw, path)
        if items is None:
            return ()
        out: list[AccessPattern] = []
        names: set[str] = set()
        for i, raw_pattern in enumerate(items):
            ppath = f"{path}[{i}]"
            data = self.mapping(raw_pattern, ppath)
            if data is None:
                continue
            pattern = self.access_pattern(data, ppath, entity, indexes, table_key)
            if pattern is None:
                continue
            if pattern.name in names:
                self.error(f"{ppath}.name", f"duplicate access pattern name {pattern.name!r}")
                continue
            names.add(pattern.name)
            out.append(pattern)
        return tuple(out)

    def access_pattern(self, data: Mapping[str, Any], path: str, entity: Entity,
                       indexes: tuple[Index, ...],
                       table_key: tuple[str, str | None]) -> AccessPattern | None:
        self.unknown_keys(data, _PATTERN_KEYS, path)
        table_pk, table_sk = table_key
        errors_before = len(self.issues)
        pattern_id = self.pattern_id(data, path)
        name = self.string(data, "name", path)
        if name is not None and not _IDENTIFIER.match(name):
            self.error(f"{path}.name", f"pattern name {name!r} is not an identifier")
        description = data.get("description") or ""
        operation = self.string(data, "operation", path, choices=OPERATIONS)
        return_type = self.string(data, "return_type", path, choices=RETURN_TYPES)
        params = self.parameters(data.get("parameters"), f"{path}.parameters", entity.table)
        scalar = {p.name for p in params if p.type != "entity"}
        has_entity_param = any(p.type == "entity" for p in params)

        index_name = self.string(data, "index_name", path, required=False)
        index = None
        index_ok = True
        keys_pk: tuple[KeyTemplate, ...] = (entity.pk,)
        keys_sk: tuple[KeyTemplate, ...] = (entity.sk,) if entity.sk is not None else ()
        target_sk: tuple[str, ...] = (table_sk,) if table_sk else ()
        if index_name is not None:
            index = next((ix for ix in indexes if ix.name == index_name), None)
            if index is None:
                listed = ", ".join(ix.name for ix in indexes) or "none"
                self.error(f"{path}.index_name",
                           f"index {index_name!r} is not defined on the table (defined: {listed})")
                index_ok = False
            elif (mapping := entity.index_key(index_name)) is None:
                self.error(f"{path}.index_name",
                           f"entity {entity.name} has no gsi_mappings entry for index {index_name!r}")
                index = None
                index_ok = False
            else:
                keys_pk = mapping.pk or (entity.pk,)
                keys_sk = mapping.sk
                target_sk = index.sort_names
            if operation is not None and operation not in ("Query", "Scan"):
                self.error(f"{path}.index_name", f"index_name only applies to Query and Scan, "
                           f"not {operation}")

        consistent = self.boolean(data, "consistent_read", path) or False
        if consistent and index is not None and index.kind == "GSI":
            self.error(f"{path}.consistent_read",
                       "DynamoDB does not support strongly consistent reads on a global secondary index")

        range_condition = self.string(data, "range_condition", path, required=False,
                                      choices=RANGE_CONDITIONS)
        filter_expr = None
        filter_params: set[str] = set()
        if data.get("filter_expression") is not None:
            key_fields = {n for template in keys_pk + keys_sk for n in template.fields}
            filter_expr = self.filter_expression(data["filter_expression"],
                                                 f"{path}.filter_expression", entity, operation,
                                                 key_fields, {p.name for p in params})
            if filter_expr is not None:
                for cond in filter_expr.conditions:
                    filter_params |= {p for p in (cond.param, cond.param2, *cond.params) if p}

        if range_condition is not None:
            if operation is not None and operation != "Query":
                self.error(f"{path}.range_condition",
                           f"range_condition only applies to Query, not {operation}")
            elif not target_sk:
                self.error(f"{path}.range_condition",
                           "range_condition needs a sort key, and the queried table/index has none")

        if operation == "Query" and index_ok:
            missing = [f for template in keys_pk for f in template.fields if f not in scalar]
            for fname in missing:
                self.error(f"{path}.parameters",
                           f"Query needs a parameter for partition key placeholder {{{fname}}}")
            if not missing and (range_condition is None or target_sk):
                try:
                    shape = key_condition_shape(keys_pk, keys_sk, target_sk,
                                                [p.name for p in params if p.type != "entity"],
                                                filter_params, range_condition)
                except KeyConditionError as err:
                    self.error(f"{path}.parameters", err.reason)
                else:
                    self.warn_unused(f"{path}.parameters", shape.unused)
        if operation == "Scan":
            self.warn_unused(f"{path}.parameters", [p.name for p in params if p.type != "entity"
                                                    and p.name not in filter_params])
        if operation in ("GetItem", "DeleteItem", "UpdateItem") and not has_entity_param:
            self.item_key_parameters(path, operation, entity, table_pk, table_sk, scalar)

        projection: tuple[str, ...] = ()
        if data.get("projection") is not None:
            projection = self.names(data["projection"], f"{path}.projection", re.compile(r"^.+$"))
            field_names = {f.name for f in entity.fields}
            for j, attr in enumerate(projection):
                if attr not in field_names:
                    self.error(f"{path}.projection[{j}]", f"{attr!r} is not a field of {entity.name}")
        limit = self.positive_int(data, "limit", path)
        if len(self.issues) > errors_before or None in (pattern_id, name, operation, return_type):
            return None
        assert pattern_id is not None and name and operation and return_type
        return AccessPattern(pattern_id=pattern_id, name=name, description=str(description),
                             operation=operation, parameters=params, return_type=return_type,
                             index_name=index_name, range_condition=range_condition,
                             filter_expression=filter_expr, consistent_read=consistent,
                             projection=projection, limit=limit)

    def item_key_parameters(self, path: str, operation: str, entity: Entity, table_pk: str,
                            table_sk: str | None, scalar: set[str]) -> None:
        """A single-item operation needs each key's placeholders as parameters, or the key
        attribute itself (`sort_key` of an MCP schema whose entity declares it as a field):
        that value is the key as given, and the template's parts cannot be rebuilt."""
        for attribute, template, which in ((table_pk, entity.pk, "partition"),
                                           (table_sk, entity.sk, "sort")):
            if attribute is None or template is None:
                continue
            missing = [n for n in template.fields if n not in scalar]
            if not missing:
                continue
            if attribute in scalar:
                parts = ", ".join(f"{{{n}}}" for n in missing)
                self.warn(f"{path}.parameters", f"{operation} takes {attribute!r}, the table's "
                          f"{which} key, as given: the part(s) {parts} of {template.source!r} "
                          "cannot be rebuilt from the parameters (the runtime uses the value as "
                          "the key, and on a table of several entities acts only on an item of "
                          f"{entity.name})")
                continue
            for fname in missing:
                self.error(f"{path}.parameters",
                           f"{operation} needs a parameter for key placeholder {{{fname}}}"
                           f" (or for the key attribute {attribute!r} itself)")

    def filter_expression(self, raw: Any, path: str, entity: Entity, operation: str | None,
                          key_fields: set[str], param_names: set[str]) -> FilterExpression | None:
        data = self.mapping(raw, path)
        if data is None:
            return None
        if operation is not None and operation not in ("Query", "Scan"):
            self.error(path, f"filter expressions apply only to Query and Scan, not {operation}")
            return None
        raw_conditions = data.get("conditions")
        if not isinstance(raw_conditions, list) or not raw_conditions:
            self.error(f"{path}.conditions", "must be a non-empty list of conditions")
            return None
        logical = data.get("logical_operator", "AND")
        if logical not in LOGICAL_OPERATORS:
            self.error(f"{path}.logical_operator",
                       f"invalid logical operator {logical!r}; valid: {', '.join(LOGICAL_OPERATORS)}")
        fields = {f.name for f in entity.fields}
        conditions = []
        ok = True
        for i, raw_cond in enumerate(raw_conditions):
            cpath = f"{path}.conditions[{i}]"
            cond = self.mapping(raw_cond, cpath)
            if cond is None:
                ok = False
                continue
            parsed = self.filter_condition(cond, cpath, fields, key_fields, operation, param_names)
            if parsed is None:
                ok = False
            else:
                conditions.append(parsed)
        if not ok or logical not in LOGICAL_OPERATORS:
            return None
        return FilterExpression(conditions=tuple(conditions), logical_operator=logical)

    def filter_condition(self, cond: Mapping[str, Any], path: str, fields: set[str],
                         key_fields: set[str], operation: str | None,
                         param_names: set[str]) -> FilterCondition | None:
        before = len(self.issues)
        fname = cond.get("field")
        if not isinstance(fname, str) or not fname:
            self.error(f"{path}.field", "a condition needs a field")
            return None
        if fname not in fields:
            self.error(f"{path}.field", f"field {fname!r} is not a field of the entity")
            return None
        if operation == "Query" and fname in key_fields:
            self.error(f"{path}.field", f"cannot filter on key attribute {fname!r} in a Query: "
                       "key attributes belong in the key condition")
            return None
        operator = cond.get("operator")
        function = cond.get("function")
        if operator is not None and function is not None and function != "size":
            self.error(path, "use either 'operator' or 'function', not both (except with size)")
            return None
        if operator is None and function is None:
            self.error(path, "a condition needs an 'operator' or a 'function'")
            return None
        if function is not None and function not in FILTER_FUNCTIONS:
            self.error(f"{path}.function", f"unsupported function {function!r}; valid: "
                       f"{', '.join(FILTER_FUNCTIONS)}")
            return None
        if function == "size" and operator is None:
            self.error(path, "size needs an operator to compare with")
            return None
        if operator is not None and operator not in FILTER_OPERATORS:
            self.error(f"{path}.operator", f"unsupported operator {operator!r}; valid: "
                       f"{', '.join(FILTER_OPERATORS)}")
            return None
        if function == "size" and operator == "in":
            self.error(f"{path}.operator", "size cannot be combined with 'in'")
            return None
        param, param2, params = cond.get("param"), cond.get("param2"), cond.get("params")
        if operator == "between":
            if not param:
                self.error(path, "'between' needs 'param' (the lower bound)")
            if not param2:
                self.error(path, "'between' needs 'param2' (the upper bound)")
        elif operator == "in":
            if not isinstance(params, list) or not params:
                self.error(path, "'in' needs a non-empty 'params' list")
        elif operator is not None:
            if not param:
                self.error(path, f"operator {operator!r} needs 'param'")
        elif function in ("contains", "begins_with") and not param:
            self.error(path, f"function {function!r} needs 'param'")
        refs = [p for p in (param, param2) if p] + (list(params) if isinstance(params, list) else [])
        for ref in refs:
            if not isinstance(ref, str) or ref not in param_names:
                self.error(path, f"{ref!r} is not a parameter of this access pattern")
        if len(self.issues) > before:
            return None
        return FilterCondition(field=fname, operator=operator, function=function,
                               param=param or None, param2=param2 or None,
                               params=tuple(params) if isinstance(params, list) else ())

    # -- cross-table patterns -------------------------------------------------
    def cross_table_patterns(self, raw: Any, tables: list[Table]) -> list[CrossTablePattern]:
        path = "$.cross_table_access_patterns"
        items = self.sequence(raw, path)
        if items is None:
            return []
        by_table = {t.name: t for t in tables}
        out = []
        names: set[str] = set()
        for i, raw_pattern in enumerate(items):
            ppath = f"{path}[{i}]"
            data = self.mapping(raw_pattern, ppath)
            if data is None:
                continue
            before = len(self.issues)
            pattern_id = self.pattern_id(data, ppath)
            name = self.string(data, "name", ppath)
            if name is not None:
                if not _IDENTIFIER.match(name):
                    self.error(f"{ppath}.name", f"pattern name {name!r} is not an identifier")
                elif name in names:
                    self.error(f"{ppath}.name", f"duplicate cross-table pattern name {name!r}")
                names.add(name)
            operation = self.string(data, "operation", ppath,
                                    choices=tuple(CROSS_TABLE_OPERATIONS))
            return_type = self.string(data, "return_type", ppath, choices=CROSS_TABLE_RETURN_TYPES)
            params = self.parameters(data.get("parameters"), f"{ppath}.parameters")
            if data.get("entities_involved") is None:
                self.missing(data, "entities_involved", ppath)
            involved = self.involvements(data.get("entities_involved"),
                                         f"{ppath}.entities_involved", operation, by_table)
            for j, param in enumerate(params):
                if param.type == "entity":
                    continue
                for inv in involved:
                    entity = by_table[inv.table].entities[inv.entity]
                    fld = entity.field(param.name)
                    if fld is not None and not _types_compatible(param.type, fld.type):
                        self.error(f"{ppath}.parameters[{j}].type",
                                   f"parameter {param.name!r} is a {param.type} but field "
                                   f"{inv.entity}.{fld.name} is a {fld.type}")
            if len(self.issues) > before:
                continue
            assert pattern_id is not None and name and operation and return_type
            out.append(CrossTablePattern(pattern_id=pattern_id, name=name,
                                         description=str(data.get("description") or ""),
                                         operation=operation, entities_involved=tuple(involved),
                                         parameters=params, return_type=return_type))
        return out

    def involvements(self, raw: Any, path: str, operation: str | None,
                     tables: Mapping[str, Table]) -> list[Involvement]:
        if raw is None:
            return []  # reported by the pattern, which can name a misspelling
        items = self.sequence(raw, path)
        if items is None:
            return []
        if not items:
            self.error(path, "must list at least one entity")
        out = []
        for i, raw_inv in enumerate(items):
            ipath = f"{path}[{i}]"
            data = self.mapping(raw_inv, ipath)
            if data is None:
                continue
            table_name = self.string(data, "table", ipath)
            entity_name = self.string(data, "entity", ipath)
            action = self.string(data, "action", ipath)
            condition = self.string(data, "condition", ipath, required=False)
            table = tables.get(table_name) if table_name else None
            if table_name is not None and table is None:
                self.error(f"{ipath}.table", f"table {table_name!r} is not in the contract")
            entity = None
            if table is not None and entity_name is not None:
                entity = table.entities.get(entity_name)
                if entity is None:
                    self.error(f"{ipath}.entity",
                               f"entity {entity_name!r} is not in table {table_name!r}")
            if action is not None and operation in CROSS_TABLE_OPERATIONS:
                valid = CROSS_TABLE_OPERATIONS[operation]
                if action not in valid:
                    self.error(f"{ipath}.action", f"action {action!r} is not valid in a "
                               f"{operation}; valid: {', '.join(valid)}")
            if condition is not None:
                if "\n" in condition:
                    self.error(f"{ipath}.condition", "a condition must be a single line")
                elif action == "Get":
                    self.error(f"{ipath}.condition", "a Get takes no condition")
                elif entity is not None and table is not None:
                    match = _CONDITION_FUNCTION.match(condition)
                    if match:
                        attr = match.group(2)
                        known = set(table.attribute_types()) | {f.name for f in entity.fields}
                        if attr not in known:
                            self.error(f"{ipath}.condition", f"{attr!r} is neither a key "
                                       f"attribute of {table.name} nor a field of {entity.name}")
            if table is not None and entity is not None and action is not None:
                out.append(Involvement(table=table.name, entity=entity.name, action=action,
                                       condition=condition))
        return out


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
