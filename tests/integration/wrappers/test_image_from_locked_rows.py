"""The images of a dual-write built from the rows its locking reads (and re-reads) already
hold are the records `RecordReader.fetch` reads for the same roots: every operation of the
shop, each image checked against a fetch in the same transaction."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from migration.shop.dual_write import Shop
from migration.source.records import RecordReader
from migration.sync.engine import SyncEngine

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def test_every_operation_builds_the_records_fetch_reads(shop: Shop,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    used = {"rows": 0, "fetch": 0}
    records = SyncEngine._records

    def checked(self: SyncEngine, conn: Any, reader: RecordReader, keys: list[Any],
                known: Any) -> list[dict[str, Any]]:
        built = records(self, conn, reader, keys, known)
        fetched = reader.fetch(conn, keys, lock="update")
        assert built == fetched, (reader.entity.name, keys)
        assert [list(r) for r in built] == [list(r) for r in fetched]  # same columns, same order
        held = (known or {}).get(reader.source.table, {})
        used["rows" if all(tuple(k) in held for k in keys) else "fetch"] += 1
        return built

    monkeypatch.setattr(SyncEngine, "_records", checked)
    users, products, orders, categories, cart = (shop.users, shop.products, shop.orders,
                                                 shop.categories, shop.cart)
    seller = users.create({"username": "img_seller", "email": "img_seller@example.org",
                           "password_hash": "h"})
    users.upgrade_to_seller(seller)
    buyer = users.create({"username": "img_buyer", "email": "img_buyer@example.org",
                          "password_hash": "h", "first_name": "Zoë"})
    parent = categories.create({"name": "img parent"})
    child = categories.create({"name": "img child", "parent_id": parent})
    product = products.create_product(seller, {"category_id": child, "name": "Lamp",
                                                "price": Decimal("9.99")})
    spare = products.create_product(seller, {"category_id": child, "name": "Spare",
                                              "price": Decimal("1.50")})
    cart.add_item(buyer, product, 2)
    cart.add_item(buyer, spare, 1)
    cart.update_item_quantity(buyer, product, 5)
    order = orders.create_order(buyer, Decimal("12.30"))
    orders.create_order_item(order, product, 1, Decimal("12.30"))
    orders.update_order_status(order, "completed")
    products.update_inventory(product, 42)
    products.update_product(product, seller, {"price": Decimal("8.49"), "name": "Lamp 2"})
    users.update(buyer, {"email": "img_buyer2@example.org"})
    categories.update(parent, {"name": "img parent 2"})
    cart.remove_item(buyer, spare)
    products.delete_product(spare, seller)
    cart.clear_cart(buyer)
    categories.delete(parent)
    users.delete(buyer)
    assert used["rows"] >= 15 and used["fetch"] >= 5, used
