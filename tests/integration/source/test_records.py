"""Records read from the real shop schema: lookups, embeds and one query per related
table per chunk, then mapped and written to DynamoDB Local and read back intact."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.mapping.item import ItemMapper
from migration.shop import SHOP_CONTRACT
from migration.shop.schema import upgrade
from migration.source.records import RecordReader

pytestmark = pytest.mark.mysql

CONTRACT = load_contract(SHOP_CONTRACT)


def populate(engine: Engine, orders: int = 120) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO users (id, username, email, password_hash, first_name) VALUES "
            "(1, 'zoe', 'zoë@exämple.de', 'h', 'Zoë'), (2, 'li', 'li@example.com', 'h', NULL)"))
        conn.execute(sa.text("INSERT INTO categories (id, name, parent_id) VALUES "
                             "(1, 'Phones', NULL), (2, 'Accessories', 1)"))
        conn.execute(sa.text(
            "INSERT INTO products (id, seller_id, category_id, name, price) VALUES "
            "(1, 2, 2, 'Case', 9.99), (2, 2, 2, 'Charger', 19.50)"))
        conn.execute(sa.text("INSERT INTO shopping_carts (user_id, product_id, quantity) "
                             "VALUES (1, 1, 2), (1, 2, 1), (2, 1, 5)"))
        for order_id in range(1, orders + 1):
            conn.execute(sa.text(
                "INSERT INTO orders (id, user_id, total_amount, status, created_at) VALUES "
                "(:id, :user, 29.49, 'pending', '2024-05-01 10:00:00')"),
                {"id": order_id, "user": 1 + order_id % 2})
            conn.execute(sa.text(
                "INSERT INTO order_items (order_id, product_id, quantity, price_at_time) "
                "VALUES (:o, 1, 1, 9.99), (:o, 2, 1, 19.50)"), {"o": order_id})


def selects(conn: Connection) -> int:
    """SELECT statements the server has run on this connection (its own count: the
    reads go through the DBAPI cursor, past SQLAlchemy's events)."""
    row = conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Com_select'").one()
    return int(row[1])


def test_order_records_carry_lookups_and_embeds(mysql_engine: Engine) -> None:
    populate(mysql_engine)
    reader = RecordReader(CONTRACT, CONTRACT.entity("Order"))
    with mysql_engine.connect() as conn:
        before = selects(conn)
        chunks = list(reader.stream(conn, chunk_size=50))
        ran = selects(conn) - before
    assert [len(c) for c in chunks] == [50, 50, 20]
    # Per chunk: the orders, their users, their items, the items' products. Never per row.
    assert ran == 3 * 4
    first = chunks[0][0]
    assert first["user_email"] == "li@example.com"
    items = first["order_items"]
    assert [sorted(i) for i in items] == [["id", "price_at_time", "product_id", "product_name",
                                           "quantity"]] * 2
    assert [(i["product_id"], i["quantity"], i["price_at_time"], i["product_name"])
            for i in items] == [(1, 1, Decimal("9.99"), "Case"), (2, 1, Decimal("19.50"), "Charger")]
    assert items[0]["id"] < items[1]["id"]
    assert first["created_at"] == datetime(2024, 5, 1, 10, 0)


def test_fetch_by_composite_key_and_keyset_bounds(mysql_engine: Engine) -> None:
    populate(mysql_engine, orders=0)
    reader = RecordReader(CONTRACT, CONTRACT.entity("CartItem"))
    with mysql_engine.connect() as conn:
        records = reader.fetch(conn, [(2, 1), (1, 2), (9, 9)])
        assert [reader.root_of(r) for r in records] == [(1, 2), (2, 1)]
        assert records[0]["product_name"] == "Charger"
        assert records[0]["product_price"] == Decimal("19.50")
        assert records[1]["user_email"] == "li@example.com"
        after = [reader.root_of(r) for chunk in reader.stream(conn, chunk_size=1, after=(1, 1))
                 for r in chunk]
        assert after == [(1, 2), (2, 1)]
        until = [reader.root_of(r) for chunk in reader.stream(conn, chunk_size=2, until=(1, 2))
                 for r in chunk]
        assert until == [(1, 1), (1, 2)]


def test_categories_map_to_parent_name_keys(mysql_engine: Engine) -> None:
    populate(mysql_engine, orders=0)
    entity = CONTRACT.entity("Category")
    reader, mapper = RecordReader(CONTRACT, entity), ItemMapper(CONTRACT, entity)
    with mysql_engine.connect() as conn:
        items = [mapper.to_item(r) for chunk in reader.stream(conn) for r in chunk]
    assert [(i["PK"]["S"], i["SK"]["S"]) for i in items] == [("ROOT", "Phones"),
                                                             ("Phones", "Accessories")]


@pytest.mark.dynamodb
def test_items_survive_a_round_trip_through_dynamodb_local(mysql_engine: Engine,
                                                           ddb: DynamoDB) -> None:
    from migration.dynamodb.schema import apply

    populate(mysql_engine, orders=3)
    apply(CONTRACT, ddb)
    for entity in CONTRACT.source_entities():
        reader, mapper = RecordReader(CONTRACT, entity), ItemMapper(CONTRACT, entity)
        with mysql_engine.connect() as conn:
            items = [mapper.to_item(r) for chunk in reader.stream(conn) for r in chunk]
        table = ddb.table_name(entity.table)
        for item in items:
            ddb.call("PutItem", TableName=table, Item=item)
            key = {k: item[k] for k in ("PK", "SK")}
            stored = ddb.call("GetItem", TableName=table, Key=key, ConsistentRead=True)["Item"]
            assert stored == item, entity.name
