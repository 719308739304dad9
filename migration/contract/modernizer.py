"""Import AWS Modernizer migration contracts (``migrationContract.json``) into our format.

The Modernizer workshop describes each DynamoDB attribute by where it comes
from (a column, a join, a calculation). We turn that into entities with a
`source` (lookups, embeds, aggregates) and key templates. What the format can
say but ours cannot express yet is listed, attribute by attribute, in
`ImportResult.unsupported` instead of being dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from migration.contract.load import parse_contract, read_document
from migration.contract.model import Contract
from migration.errors import ContractError, ContractIssue

_KEY_ATTRIBUTE = re.compile(r"^(PK|SK|GSI\d+PK|GSI\d+SK|LSI\d+SK)$")
_TYPE_MAP = {"S": "string", "N": "decimal", "BOOL": "boolean", "M": "object", "L": "array",
             "B": "binary", "SS": "array", "NS": "array", "BS": "array"}
_INTEGER_COLUMN = re.compile(r"^(id|.*_id|.*quantity|.*_count|count|level|.*_number)$")


@dataclass
class ImportResult:
    """The converted contract document, the notes on what could not be expressed, and
    the validated Contract built from it."""

    document: dict[str, Any]
    unsupported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    contract: Contract | None = None

    def to_yaml(self) -> str:
        header = "# Imported from an AWS Modernizer migration contract.\n"
        if self.unsupported:
            header += "# Not expressed (see `migrate contract import` output):\n"
            header += "".join(f"#   - {line}\n" for line in self.unsupported)
        return header + yaml.safe_dump(self.document, sort_keys=False, allow_unicode=True,
                                       width=100)


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("ses"):
        return name[:-2]
    if name.endswith("s"):
        return name[:-1]
    return name


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _split_column(ref: str) -> tuple[str, str]:
    table, _, column = ref.strip().partition(".")
    return (table, column) if column else ("", table)


def _parse_condition(condition: str, target: str) -> tuple[str, str] | None:
    """`users.id = shopping_carts.user_id` → ("id", "user_id") (related, source)."""
    left, sep, right = condition.partition("=")
    if not sep:
        return None
    lt, lc = _split_column(left)
    rt, rc = _split_column(right)
    if rt == target and lt != target:
        return rc, lc
    return lc, rc


def import_modernizer(path: str | Path) -> ImportResult:
    """Convert a Modernizer contract file; the result is validated by our loader."""
    data = read_document(path)
    return convert(data, file=str(path))


def convert(data: Any, file: str = "<modernizer>") -> ImportResult:
    if not isinstance(data, dict) or not isinstance(data.get("tables"), list):
        raise ContractError([ContractIssue(file, "$.tables",
                                           "not a Modernizer contract: no 'tables' array")])
    result = ImportResult(document={"tables": []})
    names_used: set[str] = set()
    for ti, table in enumerate(data["tables"]):
        tpath = f"$.tables[{ti}]"
        if not isinstance(table, dict) or "table" not in table or "pk" not in table:
            raise ContractError([ContractIssue(file, tpath, "a table needs 'table' and 'pk'")])
        config: dict[str, Any] = {"table_name": table["table"], "partition_key": table["pk"]}
        if table.get("sk"):
            config["sort_key"] = table["sk"]
        out_table: dict[str, Any] = {"table_config": config}
        gsis = []
        for gi, gsi in enumerate(table.get("gsis") or []):
            entry: dict[str, Any] = {"name": gsi["index_name"], "partition_key": gsi["pk"]}
            if gsi.get("sk"):
                entry["sort_key"] = gsi["sk"]
            entry["projection"] = gsi.get("projection", "ALL")
            if gsi.get("projected_attributes"):
                entry["included_attributes"] = list(gsi["projected_attributes"])
            gsis.append(entry)
            del gi
        if gsis:
            out_table["gsi_list"] = gsis
        for key in ("satisfies", "estimated_item_size_bytes"):
            if key in table:
                result.notes.append(f"{tpath}.{key}: informational, not imported")
        entities: dict[str, Any] = {}
        if table.get("entities"):
            for ei, entity in enumerate(table["entities"]):
                name = _pascal(str(entity.get("entity_type", "")).lower()) or \
                    _pascal(_singular(entity["source_table"]))
                entities[_unique(name, names_used)] = _entity(
                    entity, f"{tpath}.entities[{ei}]", table, result, entity.get("pk_template"),
                    entity.get("sk_template"), entity.get("entity_type"))
        else:
            name = _unique(_pascal(_singular(table["source_table"])), names_used)
            entities[name] = _entity({"source_table": table["source_table"],
                                      "attributes": table.get("attributes", [])},
                                     tpath, table, result, None, None, name.upper())
        out_table["entities"] = entities
        result.document["tables"].append(out_table)
    result.contract = parse_contract(result.document, file=f"{file} (imported)")
    return result


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate in used:
        candidate, n = f"{name}{n}", n + 1
    used.add(candidate)
    return candidate


class _EntityBuilder:
    def __init__(self, source_table: str, path: str, result: ImportResult):
        self.source_table = source_table
        self.path = path
        self.result = result
        self.fields: list[dict[str, Any]] = []
        self.lookups: dict[str, dict[str, Any]] = {}
        self.embeds: dict[str, dict[str, Any]] = {}
        self.aggregates: dict[str, dict[str, Any]] = {}
        self.columns_used: list[str] = []

    def unsupported(self, apath: str, message: str) -> None:
        self.result.unsupported.append(f"{apath}: {message}")

    def lookup(self, name: str, join: dict[str, Any], column: str, apath: str) -> str | None:
        target = join.get("target_table") or self.source_table
        # A self-join names the source table again under an alias: the alias side of
        # the condition is the related row.
        on = _parse_condition(str(join.get("join_condition", "")),
                              join.get("join_alias") or target)
        if join.get("type") == "self-join":
            self.result.notes.append(
                f"{apath}: self-join read literally: {target}.{column} of the {target} row "
                f"matching {join.get('join_condition')!r}")
        if on is None or not on[0] or not on[1]:
            self.unsupported(apath, f"cannot read join_condition {join.get('join_condition')!r}")
            return None
        self.lookups[name] = {"table": target, "on": {on[0]: on[1]}, "column": column}
        return name


def _field_type(attr: dict[str, Any], column: str) -> str:
    kind = _TYPE_MAP.get(str(attr.get("type")), "string")
    if kind == "decimal" and _INTEGER_COLUMN.match(column):
        return "integer"
    return kind


def _entity(entity: dict[str, Any], path: str, table: dict[str, Any], result: ImportResult,
            pk_template: str | None, sk_template: str | None,
            entity_type: str | None) -> dict[str, Any]:
    source_table = entity["source_table"]
    builder = _EntityBuilder(source_table, path, result)
    templates: dict[str, str] = {}
    for ai, attr in enumerate(entity.get("attributes") or []):
        apath = f"{path}.attributes[{ai}] ({attr.get('name')})"
        name = str(attr.get("name"))
        column = attr.get("source_column")
        if isinstance(column, list):
            builder.unsupported(apath, "several source columns for one attribute")
            continue
        column = str(column)
        if attr.get("source_table") not in (None, source_table):
            builder.unsupported(apath, f"source_table {attr.get('source_table')!r} differs from "
                                f"the entity's {source_table!r}")
            continue
        if _KEY_ATTRIBUTE.match(name):
            template = _key_template(attr, column, builder, apath)
            if template is not None:
                templates[name] = template
            continue
        _value_attribute(attr, name, column, builder, apath)
    pk_attr, sk_attr = table["pk"], table.get("sk")
    document: dict[str, Any] = {"entity_type": entity_type or _pascal(source_table).upper()}
    primary_key = _guess_primary_key(entity, templates, builder)
    source: dict[str, Any] = {"table": source_table, "primary_key": primary_key}
    if builder.lookups:
        source["lookups"] = builder.lookups
    if builder.embeds:
        source["embeds"] = builder.embeds
    if builder.aggregates:
        source["aggregates"] = builder.aggregates
    document["source"] = source
    pk = pk_template or templates.get(pk_attr)
    sk = sk_template or (templates.get(sk_attr) if sk_attr else None)
    # Entity templates name the *attribute* (order_id); make sure a field provides it.
    for template in (pk, sk):
        _placeholders_as_fields(template, builder, templates)
    if pk is not None:
        document["pk_template"] = pk
    if sk_attr and sk is not None:
        document["sk_template"] = sk
    mappings = []
    for gsi in table.get("gsis") or []:
        gpk = templates.get(gsi["pk"])
        if gpk is None:
            continue
        mapping: dict[str, Any] = {"name": gsi["index_name"], "pk_template": gpk}
        if gsi.get("sk"):
            gsk = templates.get(gsi["sk"])
            if gsk is None:
                builder.unsupported(path, f"{gsi['index_name']}: no attribute for {gsi['sk']}")
                continue
            mapping["sk_template"] = gsk
        mappings.append(mapping)
    if mappings:
        document["gsi_mappings"] = mappings
    document["fields"] = builder.fields
    return document


def _placeholders_as_fields(template: str | None, builder: _EntityBuilder,
                            templates: dict[str, str]) -> None:
    if not template:
        return
    known = {f["name"] for f in builder.fields} | set(builder.lookups)
    for name in re.findall(r"\{([^}|]+)", template):
        if name not in known and name.endswith("_id") and name != "id":
            # "{order_id}" in an ORDER template is the row's own id under another name.
            own = name[: -len("_id")]
            if own and builder.source_table.startswith(own):
                builder.fields.append({"name": name, "type": "integer", "required": True,
                                       "column": "id"})


def _key_template(attr: dict[str, Any], column: str, builder: _EntityBuilder,
                  apath: str) -> str | None:
    transformation = attr.get("transformation")
    join = attr.get("join")
    if transformation:
        if transformation.get("type") == "string-format" and transformation.get("format"):
            return str(transformation["format"]).replace("{id}", "{id}")
        builder.unsupported(apath, f"key transformation {transformation.get('type')!r}")
        return None
    if join:
        kind = join.get("type")
        if kind in ("foreign-key", "lookup-table", "self-join"):
            _, col = _split_column(str(join.get("select_column", "")))
            target = join.get("target_table") or builder.source_table
            name = f"{_singular(target)}_{col}"
            return "{" + (builder.lookup(name, join, col, apath) or name) + "}"
        if kind == "conditional":
            literal = str(join.get("select_column", "")).strip("'\"")
            match = re.match(r"^\s*(\w+)\s+IS\s+NULL\s*$", str(join.get("condition", "")), re.I)
            _, else_col = _split_column(str(join.get("else_value", "")))
            target = join.get("target_table") or builder.source_table
            on = _parse_condition(str(join.get("join_condition", "")), target)
            if not match or on is None or not literal:
                builder.unsupported(apath, "conditional key join other than "
                                    "'<column> IS NULL' → literal, else a joined column")
                return None
            if else_col == on[0]:
                # The joined row's key is our own foreign key column: no lookup needed.
                return "{" + on[1] + "|" + literal + "}"
            name = f"{match.group(1).removesuffix('_id')}_{else_col}"
            builder.lookup(name, join, else_col, apath)
            return "{" + name + "|" + literal + "}"
        builder.unsupported(apath, f"key join of type {kind!r}")
        return None
    builder.columns_used.append(column)
    return "{" + column + "}"


def _value_attribute(attr: dict[str, Any], name: str, column: str, builder: _EntityBuilder,
                     apath: str) -> None:
    join = attr.get("join")
    calculation = attr.get("calculation")
    if attr.get("transformation"):
        builder.unsupported(apath, f"value transformation {attr['transformation'].get('type')!r}"
                            " (attribute not imported)")
        return
    if calculation:
        if calculation.get("type") == "aggregate" and \
                str(calculation.get("operation", "")).upper() in ("COUNT", "SUM", "MIN", "MAX"):
            target = calculation.get("target_table") or builder.source_table
            on = _parse_condition(str(calculation.get("join_condition", "")), target)
            if on is None:
                builder.unsupported(apath, "cannot read the aggregate's join_condition")
                return
            function = str(calculation["operation"]).lower()
            entry: dict[str, Any] = {"table": target, "on": {on[0]: on[1]}, "function": function}
            if function != "count":
                entry["column"] = _split_column(str(calculation.get("select_column", "")))[1]
            builder.aggregates[name] = entry
            builder.fields.append({"name": name, "type": "integer" if function == "count"
                                   else "decimal", "required": function == "count"})
            return
        builder.unsupported(apath, f"calculation of type {calculation.get('type')!r}")
        return
    if join:
        kind = join.get("type")
        if kind in ("foreign-key", "lookup-table", "self-join"):
            _, col = _split_column(str(join.get("select_column", "")))
            if builder.lookup(name, join, col, apath) is not None:
                builder.fields.append({"name": name, "type": _field_type(attr, col),
                                       "required": False})
                if join.get("null_value") is not None:
                    builder.result.notes.append(
                        f"{apath}: null_value {join['null_value']!r} not applied: a NULL "
                        "lookup leaves the attribute out of the item")
            return
        if kind == "json-construction":
            construction = join.get("construction") or {}
            target = join.get("target_table") or builder.source_table
            if construction.get("type") == "array" and target != builder.source_table:
                on = _parse_condition(str(join.get("join_condition", "")), target)
                if on is None:
                    builder.unsupported(apath, "cannot read the embed's join_condition")
                    return
                embed: dict[str, Any] = {"table": target, "on": {on[0]: on[1]},
                                         "columns": dict(construction.get("select_columns", {}))}
                if construction.get("order_by"):
                    embed["order_by"] = [str(construction["order_by"]).split()[0]]
                if construction.get("limit"):
                    embed["limit"] = int(construction["limit"])
                builder.embeds[name] = embed
                builder.fields.append({"name": name, "type": "array", "item_type": "object",
                                       "required": True})
                if attr.get("type") == "S":
                    builder.result.notes.append(
                        f"{apath}: Modernizer stores this as a JSON string (type S); imported as "
                        "a list of maps (L of M), which DynamoDB can filter and project")
                return
            builder.unsupported(apath, "json-construction of an object from the row's own "
                                "columns; map those columns as separate fields instead")
            return
        builder.unsupported(apath, f"join of type {kind!r}")
        return
    builder.columns_used.append(column)
    entry = {"name": name, "type": _field_type(attr, column), "required": False}
    if column != name:
        entry["column"] = column
    builder.fields.append(entry)


def _guess_primary_key(entity: dict[str, Any], templates: dict[str, str],
                       builder: _EntityBuilder) -> list[str]:
    columns = {str(a.get("source_column")) for a in entity.get("attributes") or []}
    if "id" in columns:
        return ["id"]
    # No id column: the primary key is most likely what the item's own key is built from.
    key_columns: list[str] = []
    attributes = entity.get("attributes") or []
    for key_name in ("PK", "SK"):
        for attr in attributes:
            if attr.get("name") == key_name and str(attr.get("source_column")) not in key_columns:
                key_columns.append(str(attr.get("source_column")))
    guess = key_columns or ["id"]
    builder.result.notes.append(
        f"{builder.path}: the Modernizer format does not state the primary key of "
        f"{builder.source_table}; guessed {guess}: check it")
    return guess
