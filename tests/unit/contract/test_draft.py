"""The draft designer on schemas and workloads built in-process: keys per layout, GSIs for
lookups by non-key columns, lookups and embeds from joins, unique guards, one note for
each thing a person must decide; every draft loads as a valid contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from migration.commands import validate_contracts
from migration.contract.draft import Draft, DraftError, DraftOptions, draft, field_type, singular
from migration.contract.model import AccessPattern, Entity
from migration.source.catalog import ForeignKey
from migration.source.statements import Workload
from migration.source.tables import Column, Index, SourceSchema, SourceTable


def col(name: str, kind: str = "int", full: str | None = None, *, null: bool = False,
        precision: int | None = None) -> Column:
    return Column(name=name, data_type=kind, column_type=full or kind, nullable=null,
                  precision=precision)


def fk(child: str, columns: tuple[str, ...], parent: str, parent_columns: tuple[str, ...],
       on_delete: str = "CASCADE") -> ForeignKey:
    return ForeignKey(name=f"fk_{child}_{parent}", child=child, child_columns=columns,
                      parent=parent, parent_columns=parent_columns, on_delete=on_delete,
                      on_update="RESTRICT")


def shop_schema() -> SourceSchema:
    tables = [
        SourceTable("users", (col("id"), col("email", "varchar", "varchar(100)"),
                              col("name", "varchar", "varchar(50)", null=True),
                              col("created_at", "datetime", "datetime(6)")), ("id",),
                    (Index("uq_email", ("email",), True),)),
        SourceTable("orders", (col("id"), col("user_id"), col("status", "enum", "enum('a','b')"),
                               col("total", "decimal", "decimal(10,2)", precision=10),
                               col("created_at", "datetime", "datetime(6)")), ("id",),
                    (Index("ix_orders_user", ("user_id",), False),),
                    (fk("orders", ("user_id",), "users", ("id",)),)),
        SourceTable("order_items", (col("id"), col("order_id"), col("sku", "varchar", "varchar(20)"),
                                    col("quantity")), ("id",), (),
                    (fk("order_items", ("order_id",), "orders", ("id",)),)),
        SourceTable("carts", (col("user_id"), col("sku", "varchar", "varchar(20)"),
                              col("quantity")), ("user_id", "sku"), (),
                    (fk("carts", ("user_id",), "users", ("id",)),)),
        SourceTable("migrate_outbox", (col("id"),), ("id",)),
        SourceTable("alembic_version", (col("version_num", "varchar", "varchar(32)"),),
                    ("version_num",)),
    ]
    return SourceSchema("shop", {t.name: t for t in tables}, server="test")


def workload(*statements: tuple[str, int]) -> Workload:
    out = Workload(source="a test")
    for sql, count in statements:
        out.add(sql, count)
    return out


def valid(result: Draft, tmp_path: Path) -> None:
    """The draft as written passes `migrate contract validate`."""
    path = tmp_path / "draft.yaml"
    path.write_text(result.to_yaml(), encoding="utf-8")
    report, = validate_contracts([path])
    assert report.valid, report.summary()


def patterns(entity: Entity) -> dict[str, AccessPattern]:
    return {p.name: p for p in entity.access_patterns}


def test_single_table_keys_put_children_in_their_parents_partition(tmp_path: Path) -> None:
    result = draft(shop_schema(), Workload())
    valid(result, tmp_path)
    contract = result.contract
    assert len(contract.tables) == 1 and contract.tables[0].name == "Shop"
    keys = {e.name: (e.pk.source, e.sk.source if e.sk else None) for e in contract.entities()}
    assert keys == {"User": ("USER#{id}", "#META"), "Order": ("ORDER#{id}", "#META"),
                    "OrderItem": ("ORDER_ITEM#{id}", "#META"),
                    "Cart": ("USER#{user_id}", "CART#{sku}")}
    user = contract.entity("User")
    assert user.source is not None and user.source.unique == ("email",)
    assert "alembic_version" in " ".join(result.notes)  # left out, and said so


def test_per_table_keys_hold_the_key_columns(tmp_path: Path) -> None:
    result = draft(shop_schema(), Workload(), DraftOptions(layout="per-table"))
    valid(result, tmp_path)
    tables = {t.name: (t.partition_key, t.sort_key) for t in result.contract.tables}
    assert tables == {"Users": ("PK", None), "Orders": ("PK", None),
                      "OrderItems": ("PK", None), "Carts": ("PK", "SK")}
    cart = result.contract.entity("Cart")
    assert (cart.pk.source, cart.sk.source if cart.sk else None) == ("{user_id}", "{sku}")


@pytest.mark.parametrize("layout", ["single-table", "per-table"])
def test_lookups_by_non_key_columns_get_a_gsi(layout: str, tmp_path: Path) -> None:
    result = draft(shop_schema(), workload(
        ("SELECT * FROM users WHERE email = 'a@b'", 40),
        ("SELECT * FROM orders WHERE user_id = 5 ORDER BY created_at DESC", 25),
        ("SELECT * FROM orders WHERE user_id = 5 AND created_at >= '2024-01-01'", 7),
        ("SELECT * FROM carts WHERE user_id = 5", 12),
        ("SELECT * FROM users WHERE id = 5", 60),
    ), DraftOptions(layout=layout))
    valid(result, tmp_path)
    contract = result.contract
    user, order, cart = (contract.entity(n) for n in ("User", "Order", "Cart"))
    by_email = patterns(user)["get_user_by_email"]
    assert by_email.operation == "Query" and by_email.return_type == "single_entity"
    assert by_email.description.startswith("40 call(s)")
    assert patterns(user)["get_user"].operation == "GetItem"
    # Orders of a user, newest first and since a date: one GSI keyed (user_id, created_at).
    listed = patterns(order)["list_orders_by_user_id"]
    since = patterns(order)["list_orders_by_user_id_since"]
    assert listed.index_name == since.index_name is not None
    assert since.range_condition == ">=" and [p.name for p in since.parameters] == \
        ["user_id", "created_at"]
    assert "descending" in listed.description
    keys = order.index_key(listed.index_name or "")
    assert keys is not None and [t.fields for t in keys.templates] == [("user_id",), ("created_at",)]
    # A cart's lines are its own key's partition: no index.
    assert patterns(cart)["list_carts_by_user_id"].index_name is None
    assert len(contract.tables[0].gsis) >= 1


def test_joins_propose_lookups_and_embeds(tmp_path: Path) -> None:
    result = draft(shop_schema(), workload(
        ("SELECT o.id, o.total, u.email, u.name FROM orders o JOIN users u ON u.id = o.user_id "
         "WHERE o.id = 3", 9),
        ("SELECT o.*, i.sku, i.quantity FROM orders o LEFT JOIN order_items i "
         "ON i.order_id = o.id WHERE o.user_id = 1", 4),
        ("SELECT * FROM order_items WHERE order_id IN (1, 2, 3)", 5),
    ))
    valid(result, tmp_path)
    order = result.contract.entity("Order")
    assert order.source is not None
    assert {(lk.name, lk.table, lk.on, lk.column) for lk in order.source.lookups} == {
        ("user_email", "users", (("id", "user_id"),), "email"),
        ("user_name", "users", (("id", "user_id"),), "name")}
    assert order.field("user_email") is not None and order.field("user_email").required  # type: ignore[union-attr]
    assert order.field("user_name") is not None and not order.field("user_name").required  # type: ignore[union-attr]
    embed, = order.source.embeds
    assert (embed.name, embed.table, embed.on, embed.primary_key) == (
        "order_items", "order_items", (("order_id", "id"),), ("id",))
    assert [c for _, c in embed.columns] == ["id", "sku", "quantity"]  # order_id is the join
    assert patterns(order)["get_order"].description.startswith("9 call(s)")
    assert any("embedded in Order" in n for n in result.notes)


def test_one_note_for_each_thing_a_person_must_decide(tmp_path: Path) -> None:
    tables = {
        "ledger": SourceTable("ledger", (
            col("id"), col("amount", "decimal", "decimal(65,30)", precision=65),
            col("flags", "bit", "bit(1)"), col("place", "point", null=True),
            col("doc", "json", "longtext", null=True), col("body", "longtext", null=True),
            col("ok", "tinyint", "tinyint(1)")), ("id",)),
        "events_log": SourceTable("events_log", (col("at", "datetime"), col("what", "text")), ()),
        "tags": SourceTable("tags", (col("name", "varchar", "varchar(20)"), col("n")), (),
                            (Index("uq_name", ("name",), True),)),
    }
    result = draft(SourceSchema("db", tables), workload(
        ("SELECT * FROM ledger WHERE id = 1 OR amount > 5", 3),
        ("UPDATE ledger SET ok = 1 WHERE amount > 3", 2),
        ("SELECT COUNT(*) FROM ledger WHERE ok = 1", 2),
        ("SELECT * FROM events_log WHERE at > NOW()", 2),
    ))
    valid(result, tmp_path)
    notes = "\n".join(result.notes)
    for phrase in ("table events_log has no primary key", "amount DECIMAL(65,30)",
                   "flags BIT(1)", "place POINT", "doc LONGTEXT: JSON", "body LONGTEXT: can exceed",
                   "OR between conditions", "UPDATE by a condition other than the key",
                   "COUNT over rows", "its unique index uq_name (name) is used as the source key"):
        assert phrase in notes, phrase
    ledger = result.contract.entity("Ledger")
    assert {f.name: f.type for f in ledger.fields} == {
        "id": "integer", "amount": "string", "flags": "binary", "place": "binary",
        "doc": "object", "body": "string", "ok": "boolean"}
    assert result.contract.entity("Tag").source.primary_key == ("name",)  # type: ignore[union-attr]
    assert result.counts["unmapped"] == 4  # the events_log one included


def test_what_is_not_the_applications_is_left_out() -> None:
    result = draft(shop_schema(), workload(
        ("SELECT * FROM migrate_outbox WHERE id = 1", 50),
        ("SELECT * FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop'", 5),
        ("SELECT * FROM crm.users WHERE id = 1", 5),
        ("SELECT * FROM invoices WHERE id = 1", 5),
        ("SELECT * FROM users WHERE id = 1", 1),
    ), DraftOptions(min_count=2))
    assert sum(len(e.access_patterns) for e in result.contract.entities()) == 0
    assert result.workload.ignored == {
        "statements on the toolkit's own tables": 50, "statements on system schemas": 5,
        "statements on other databases": 5, "statements on tables that are not in the schema": 5,
        "statements run fewer than 2 times (--min-count)": 1}


def test_table_selection() -> None:
    only = draft(shop_schema(), Workload(), DraftOptions(tables=("users", "carts")))
    assert {e.name for e in only.contract.entities()} == {"User", "Cart"}
    less = draft(shop_schema(), Workload(), DraftOptions(exclude=("carts",)))
    assert {e.name for e in less.contract.entities()} == {"User", "Order", "OrderItem"}
    with pytest.raises(DraftError, match="no table 'invoices'"):
        draft(shop_schema(), Workload(), DraftOptions(tables=("invoices",)))
    with pytest.raises(DraftError, match="unknown layout"):
        draft(shop_schema(), Workload(), DraftOptions(layout="two-tables"))


def test_writes_by_key_and_statements_of_one_shape_merge(tmp_path: Path) -> None:
    result = draft(shop_schema(), workload(
        ("INSERT INTO carts (user_id, sku, quantity) VALUES (1, 'a', 2) "
         "ON DUPLICATE KEY UPDATE quantity = quantity + 2", 8),
        ("UPDATE carts SET quantity = 3 WHERE user_id = 1 AND sku = 'a'", 6),
        ("DELETE FROM carts WHERE user_id = 1 AND sku = 'a'", 4),
        ("DELETE FROM carts WHERE user_id = 1", 2),
        ("SELECT quantity FROM carts WHERE user_id = 1 AND sku = 'a'", 3),
        ("SELECT * FROM carts WHERE sku = 'a' AND user_id = 1", 2),
    ))
    valid(result, tmp_path)
    cart = patterns(result.contract.entity("Cart"))
    assert cart["put_cart"].operation == "PutItem" and "upsert" in cart["put_cart"].description
    assert [p.name for p in cart["update_cart_quantity"].parameters] == ["user_id", "sku",
                                                                          "quantity"]
    assert cart["delete_cart"].operation == "DeleteItem"
    assert cart["get_cart"].description.startswith("5 call(s)")  # two spellings, one pattern
    assert any("DELETE not by the whole key" in n for n in result.notes)


@pytest.mark.parametrize(("column", "expected"), [
    (col("a", "tinyint", "tinyint(1)"), "boolean"), (col("a", "tinyint", "tinyint(4)"), "integer"),
    (col("a", "bigint", "bigint(20) unsigned"), "integer"), (col("a", "year"), "integer"),
    (col("a", "decimal", "decimal(38,0)", precision=38), "decimal"),
    (col("a", "double"), "decimal"), (col("a", "date"), "string"), (col("a", "time"), "string"),
    (col("a", "timestamp"), "datetime"), (col("a", "enum", "enum('x')"), "string"),
    (col("a", "varbinary", "varbinary(16)"), "binary"), (col("a", "uuid"), "uuid"),
])
def test_field_types(column: object, expected: str) -> None:
    kind, note = field_type(column)  # type: ignore[arg-type]
    assert (kind, note) == (expected, None)


def test_singular_names() -> None:
    assert [singular(w) for w in ("users", "categories", "addresses", "statuses", "entries",
                                  "news", "status", "data", "boxes")] == \
        ["user", "category", "address", "status", "entry", "new", "status", "data", "box"]


def test_names_the_contract_cannot_hold_are_left_out_with_a_note(tmp_path: Path) -> None:
    tables = {
        "order-lines": SourceTable("order-lines", (col("id"), col("qty")), ("id",)),
        "notes": SourceTable("notes", (col("note id"), col("text", "text")), ("note id",)),
        "users": SourceTable("users", (col("id"), col("display name", "varchar", "varchar(9)")),
                             ("id",)),
        "pets": SourceTable("pets", (col("id"), col("user_id"), col("pet name", "varchar"),
                                     col("kind", "varchar")), ("id",), (),
                            (fk("pets", ("user_id",), "users", ("id",)),)),
    }
    result = draft(SourceSchema("db", tables), workload(
        ("SELECT `pet name`, kind FROM pets WHERE user_id IN (1, 2)", 3)))
    valid(result, tmp_path)
    assert {e.name for e in result.contract.entities()} == {"User", "Pet"}
    notes = "\n".join(result.notes)
    assert "'order-lines' is not one" in notes and "'note id' is not one" in notes
    user = result.contract.entity("User")
    assert user.field("display name") is not None  # a field may have any name
    embed, = user.source.embeds  # type: ignore[union-attr]
    assert [c for _, c in embed.columns] == ["kind"]  # `pet name` cannot be listed
