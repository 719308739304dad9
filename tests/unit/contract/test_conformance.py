"""The check of a contract against the MySQL schema, on hand-made catalogs: every table,
column, key and join a source names must exist, each column's type must be able to
become its field's type, and each problem is named with the file and the JSON path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migration.contract import parse_contract
from migration.contract.model import Contract
from migration.source.conformance import Conformance, check_conformance, column_kind, type_problem
from migration.source.tables import Column, Index, SourceSchema, SourceTable


def col(name: str, column_type: str, nullable: bool = False) -> Column:
    data_type = column_type.split("(")[0].split()[0]
    precision = scale = None
    if data_type == "decimal":
        precision, scale = (int(p) for p in column_type[8:-1].split(","))
    return Column(name=name, data_type=data_type, column_type=column_type, nullable=nullable,
                  precision=precision, scale=scale)


def schema(tables: dict[str, list[Column]], primary: dict[str, tuple[str, ...]],
           unique: dict[str, tuple[tuple[str, ...], ...]] | None = None) -> SourceSchema:
    return SourceSchema(database="shop", tables={
        name: SourceTable(name=name, columns=tuple(columns), primary_key=primary[name],
                          indexes=tuple(Index(f"uq_{'_'.join(cs)}", cs, True)
                                        for cs in (unique or {}).get(name, ())))
        for name, columns in tables.items()}, views=("order_totals",))


SHOP = schema({
    "users": [col("id", "int(11)"), col("email", "varchar(100)"), col("is_seller", "tinyint(1)"),
              col("created_at", "timestamp"), col("avatar", "blob", True)],
    "orders": [col("id", "int(11)"), col("user_id", "int(11)"), col("status", "enum('a','b')"),
               col("total_amount", "decimal(10,2)"), col("created_at", "timestamp"),
               col("notes", "longtext", True), col("wide", "decimal(65,30)", True),
               col("digest", "varbinary(32)")],
    "order_items": [col("id", "int(11)"), col("order_id", "int(11)"), col("product_id", "int(11)"),
                    col("quantity", "int(11)"), col("price_at_time", "decimal(10,2)")],
    "products": [col("id", "int(11)"), col("seller_id", "int(11)"), col("name", "varchar(200)")],
}, {"users": ("id",), "orders": ("id",), "order_items": ("id",), "products": ("id",)},
    {"users": (("email",),)})


def contract(entities: dict[str, Any], path: str = "c.yaml") -> Contract:
    return parse_contract({"tables": [{
        "table_config": {"table_name": "Shop", "partition_key": "PK", "sort_key": "SK"},
        "entities": entities}]}, path, Path(path))


def order(**changes: Any) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "entity_type": "ORDER",
        "source": {"table": "orders", "primary_key": ["id"],
                   "lookups": {"user_email": {"table": "users", "on": {"id": "user_id"},
                                              "column": "email"}},
                   "embeds": {"order_items": {"table": "order_items", "on": {"order_id": "id"},
                                              "columns": ["product_id", "quantity"]}},
                   "aggregates": {"lines": {"table": "order_items", "on": {"order_id": "id"},
                                            "function": "count"}}},
        "pk_template": "{user_email}", "sk_template": "ORDER#{created_at}#{order_id}",
        "fields": [{"name": "order_id", "type": "integer", "column": "id"},
                   {"name": "user_id", "type": "string"},
                   {"name": "total_amount", "type": "decimal"},
                   {"name": "status", "type": "string"},
                   {"name": "order_items", "type": "array", "item_type": "object"},
                   {"name": "lines", "type": "integer"},
                   {"name": "user_email", "type": "string"},
                   {"name": "created_at", "type": "datetime"}]}
    entity.update(changes)
    return entity


def found(result: Conformance) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    for issue in (*result.errors, *result.warnings):
        assert issue.file == "c.yaml"
    return ([(i.path, i.message) for i in result.errors],
            [(i.path, i.message) for i in result.warnings])


def has(issues: list[tuple[str, str]], path: str, words: str) -> bool:
    return any(p == path and words in m for p, m in issues)


def test_a_contract_matching_the_schema_has_nothing_to_say() -> None:
    assert found(check_conformance(contract({"Order": order()}), SHOP)) == ([], [])


def test_every_missing_table_and_column_is_named_with_its_json_path() -> None:
    broken = order(source={
        "table": "orders", "primary_key": ["id"],
        "lookups": {"user_email": {"table": "users", "on": {"id": "user_id"}, "column": "mail"},
                    "seller": {"table": "sellers", "on": {"id": "seller_id"}, "column": "name"}},
        "embeds": {"order_items": {"table": "order_items", "on": {"order_id": "id"},
                                   "columns": ["product_id", "qty"], "order_by": ["position"]}},
        "aggregates": {"lines": {"table": "order_lines", "on": {"order_id": "id"},
                                 "function": "count"}}})
    broken["fields"] = broken["fields"] + [{"name": "nickname", "type": "string"},
                                           {"name": "state", "type": "string",
                                            "column": "order_state"}]
    errors, _ = found(check_conformance(contract({"Order": broken}), SHOP))
    ent = "$.tables[0].entities.Order"
    assert has(errors, f"{ent}.source.lookups.user_email.column",
               "column 'mail' does not exist in table 'users'; did you mean 'email'?")
    assert has(errors, f"{ent}.source.lookups.seller.table", "table 'sellers' does not exist")
    assert has(errors, f"{ent}.source.lookups.seller.on.id",
               "join column 'seller_id' does not exist in table 'orders'")
    assert has(errors, f"{ent}.source.embeds.order_items.columns.qty",
               "column 'qty' does not exist in table 'order_items'")
    assert has(errors, f"{ent}.source.embeds.order_items.order_by[0]", "'position'")
    assert has(errors, f"{ent}.source.aggregates.lines.table", "table 'order_lines' does not exist")
    assert has(errors, f"{ent}.fields[8].name",
               "field nickname's column 'nickname' does not exist in table 'orders'")
    assert has(errors, f"{ent}.fields[9].column",
               "field state's column 'order_state' does not exist in table 'orders'")
    assert len(errors) == 8, errors


def test_a_missing_source_table_is_named_once() -> None:
    errors, _ = found(check_conformance(contract({"Order": order(source={
        "table": "order", "primary_key": ["id"]})}), SHOP))
    assert errors == [("$.tables[0].entities.Order.source.table",
                       "table 'order' does not exist in MySQL database shop; did you mean "
                       "'orders'?")]


def test_a_view_is_named_but_not_checked() -> None:
    errors, warnings = found(check_conformance(contract({"Order": order(source={
        "table": "order_totals", "primary_key": ["id"]})}), SHOP))
    assert errors == []
    assert warnings == [("$.tables[0].entities.Order.source.table", "'order_totals' is a view: "
                         "its columns, keys and types are not checked")]


def test_a_primary_key_that_is_not_unique_is_refused() -> None:
    entity = order()
    entity["source"] = {**entity["source"], "primary_key": ["user_id"]}
    errors, _ = found(check_conformance(contract({"Order": entity}), SHOP))
    assert has(errors, "$.tables[0].entities.Order.source.primary_key",
               "(user_id) is neither the primary key nor a unique key of table 'orders' (its "
               "primary key is (id))")


def test_column_types_that_cannot_become_their_fields_are_errors_or_warnings() -> None:
    entity = order()
    entity["fields"] = [*entity["fields"][:2],
                        {"name": "total_amount", "type": "integer"},  # DECIMAL(10,2)
                        {"name": "status", "type": "boolean"},  # ENUM
                        {"name": "order_items", "type": "object"},  # an embed
                        {"name": "lines", "type": "datetime"},  # a count
                        {"name": "user_email", "type": "integer"},  # VARCHAR, by a lookup
                        {"name": "created_at", "type": "datetime"},
                        {"name": "notes", "type": "decimal"},  # LONGTEXT
                        {"name": "wide", "type": "decimal"},  # DECIMAL(65,30)
                        {"name": "digest", "type": "string"}]  # VARBINARY
    errors, warnings = found(check_conformance(contract({"Order": entity}), SHOP))
    fields = "$.tables[0].entities.Order.fields"
    assert has(errors, f"{fields}[2].type", "integer field: column orders.total_amount "
               "(DECIMAL(10,2)) holds fractions")
    assert has(errors, f"{fields}[3].type", "boolean field: column orders.status")
    assert has(errors, f"{fields}[4].type", "embed 'order_items' is a list of maps: declare the "
               "field array, not object")
    assert has(errors, f"{fields}[5].type", "datetime field: count lines is not a date")
    assert has(errors, f"{fields}[10].type", "string field: column orders.digest (VARBINARY(32)) "
               "is binary")
    assert has(warnings, f"{fields}[6].type", "integer field: column users.email (VARCHAR(100)) "
               "(lookup user_email) is text: a value that is not a number makes its row "
               "dead-lettered")
    assert has(warnings, f"{fields}[8].type", "column orders.notes (LONGTEXT) is text")
    assert has(warnings, f"{fields}[9].type", "holds up to 65 significant digits, a DynamoDB "
               "number 38: a row holding more is dead-lettered (declare the field `string`")
    assert len(errors) == 5 and len(warnings) == 3, (errors, warnings)


def test_a_lookup_on_columns_that_are_not_unique_is_a_warning() -> None:
    entity = order()
    entity["source"] = {**entity["source"], "lookups": {
        **entity["source"]["lookups"],
        "product": {"table": "products", "on": {"seller_id": "user_id"}, "column": "name"}}}
    errors, warnings = found(check_conformance(contract({"Order": entity}), SHOP))
    assert not errors
    assert warnings == [("$.tables[0].entities.Order.source.lookups.product.on",
                         "(seller_id) is not a unique key of table 'products': when several rows "
                         "match, the item takes the value of one of them")]


def test_a_binary_column_in_a_text_key_is_refused() -> None:
    user = {"source": {"table": "users", "primary_key": ["id"]},
            "pk_template": "USER#{avatar}", "sk_template": "#META",
            "fields": [{"name": "avatar", "type": "binary"}]}
    errors, _ = found(check_conformance(contract({"User": user}), SHOP))
    assert errors == [("$.tables[0].entities.User.pk_template",
                       "placeholder {avatar} reads column users.avatar (BLOB): binary values "
                       "cannot be part of a text or number key")]


def test_only_the_entities_asked_for_are_checked() -> None:
    broken = contract({"Order": order(), "Ghost": {
        "source": {"table": "ghosts", "primary_key": ["id"]}, "pk_template": "{id}",
        "sk_template": "G", "fields": [{"name": "id", "type": "integer"}]}})
    assert check_conformance(broken, SHOP, {"Order"}).ok
    assert not check_conformance(broken, SHOP).ok


@pytest.mark.parametrize(("field_type", "column_type", "verdict"), [
    ("integer", "bigint(20)", None), ("integer", "tinyint(1)", None),
    ("integer", "decimal(12,0)", None), ("integer", "decimal(40,0)", "warning"),
    ("integer", "decimal(10,2)", "error"), ("integer", "double", "error"),
    ("integer", "varchar(10)", "warning"), ("integer", "date", "error"),
    ("integer", "json", "error"), ("integer", "blob", "error"),
    ("decimal", "int(11)", None), ("decimal", "decimal(38,10)", None),
    ("decimal", "decimal(39,10)", "warning"), ("decimal", "float", None),
    ("decimal", "char(8)", "warning"), ("decimal", "datetime", "error"), ("decimal", "time", "error"),
    ("string", "int(11)", None), ("string", "decimal(65,30)", None), ("string", "datetime", None),
    ("string", "json", None), ("string", "time", None), ("string", "varbinary(16)", "error"),
    ("uuid", "char(36)", None), ("uuid", "int(11)", "warning"), ("uuid", "binary(16)", "error"),
    ("datetime", "datetime(6)", None), ("datetime", "timestamp", None), ("datetime", "date", None),
    ("datetime", "varchar(30)", "warning"), ("datetime", "int(11)", "error"),
    ("datetime", "time", "error"),
    ("boolean", "tinyint(1)", None), ("boolean", "int(11)", "warning"),
    ("boolean", "bit(1)", "error"), ("boolean", "varchar(5)", "error"),
    ("object", "json", None), ("array", "longtext", None), ("object", "int(11)", "error"),
    ("binary", "varbinary(16)", None), ("binary", "longblob", None), ("binary", "varchar(16)", "error"),
    ("binary", "int(11)", "error"), ("string", "geometry", "error"), ("string", "vector(3)", "warning"),
])
def test_the_type_rules(field_type: str, column_type: str, verdict: str | None) -> None:
    column = col("c", column_type)
    problem = type_problem(field_type, column_kind(column), "column t.c", column)
    assert (problem[0] if problem else None) == verdict, problem
