"""Going back from dynamodb_only (`migrate shop catch-up`): MySQL brought up to the shop's
three tables while the shop keeps serving, ids allocated in DynamoDB kept (AUTO_INCREMENT
raised past them), the outbox counter raised past the items' versions, the flags back in
dynamodb_read, reconcile without drift, and dual-writes working again."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration.cli import cli
from migration.dynamodb.streams import Record, StreamCursor
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.catch_up import SWITCH_ORDER, catch_up
from migration.shop.dual_write import SHOP_ENTITIES, Shop, open_shop
from migration.sync import catch_up as catch_up_driver
from migration.sync.compare import compare_all
from migration.sync.phases import Phase
from tests.integration.shop.test_dynamodb_only import (
    a_product_in_carts_and_orders,
    a_user_with_orders_and_cart,
    mysql_max,
)

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def _env(settings: Settings) -> dict[str, str | None]:
    return {"MIGRATE_CONTRACT": str(SHOP_CONTRACT),
            "MIGRATE_MYSQL_URL": settings.sqlalchemy_url().render_as_string(hide_password=False),
            "MIGRATE_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
            "MIGRATE_TABLE_PREFIX": settings.table_prefix}


def _phases(shop: Shop) -> set[Phase]:
    shop.flags.invalidate()
    return {shop.flags.flag(name).phase for name in SWITCH_ORDER}


def _level(shop: Shop) -> None:
    """MySQL and DynamoDB hold the same shop (holder links and guards aside)."""
    comparison = compare_all(shop.contract, shop.engine, shop.ddb,
                             entities=list(SHOP_ENTITIES.values()))
    assert comparison.clean, comparison.summary()


def _rows(shop: Shop, sql: str, **params: Any) -> list[Any]:
    with shop.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def test_catch_up_brings_mysql_level_with_dynamodb_and_goes_back(
        shop: Shop, live_settings: Settings) -> None:
    user_id = a_user_with_orders_and_cart(shop)
    product_id, seller_id = a_product_in_carts_and_orders(shop)
    in_cart = _rows(shop, "SELECT product_id FROM shopping_carts WHERE user_id = :u", u=user_id)
    highest_user = mysql_max(shop, "users")
    assert shop.enter_dynamodb_only() > 0

    # Native writes of every kind.
    new_user = shop.users.create({"username": "late", "email": "late@example.org",
                                  "password_hash": "h"})
    assert new_user > highest_user
    shop.users.update(user_id, {"email": "moved@example.org"})  # orders and cart lines move
    shop.products.update_product(product_id, seller_id, {"price": Decimal("7.25")})
    for quantity in range(5):  # its version climbs above the outbox counter
        shop.products.update_inventory(product_id, 100 + quantity)
    category = shop.categories.create({"name": "Late arrivals"})
    order = shop.orders.create_order(new_user, Decimal("21.75"))
    lines = [shop.orders.create_order_item(order, product_id, 3, Decimal("7.25")),
             shop.orders.create_order_item(order, in_cart[0][0], 1, Decimal("4.00"))]
    shop.cart.add_item(new_user, product_id, 2)
    shop.cart.remove_item(user_id, in_cart[0][0])
    assert _rows(shop, "SELECT id FROM users WHERE id = :u", u=new_user) == []

    refused = CliRunner().invoke(cli, ["flags", "set", "cart", "dynamodb_read"],
                                 env=_env(live_settings))
    assert refused.exit_code == 2 and "migrate shop catch-up" in refused.stderr, refused.stderr
    result = CliRunner().invoke(cli, ["shop", "catch-up", "--settle-seconds", "0"],
                                env=_env(live_settings))
    assert result.exit_code == 0, (result.output, result.exception)
    assert re.fullmatch(r"caught up: \d+ items copied, 1 rows without an item deleted, \d+ "
                        r"stream records applied; outbox counter above version \d+; writes "
                        r"paused \d+ ms; back in dynamodb_read: user, product, order, "
                        r"category, cart\n", result.output), result.output
    assert _phases(shop) == {Phase.DYNAMODB_READ}
    _level(shop)
    assert _rows(shop, "SELECT email FROM users WHERE id = :u", u=user_id) == \
        [("moved@example.org",)]
    assert _rows(shop, "SELECT price, inventory_quantity FROM products WHERE id = :p",
                 p=product_id) == [(Decimal("7.25"), 104)]
    assert _rows(shop, "SELECT id, product_id, quantity FROM order_items WHERE order_id = :o "
                       "ORDER BY id", o=order) == \
        [(lines[0], product_id, 3), (lines[1], in_cart[0][0], 1)]
    assert _rows(shop, "SELECT quantity FROM shopping_carts WHERE user_id = :u AND "
                       "product_id = :p", u=new_user, p=product_id) == [(2,)]
    assert _rows(shop, "SELECT name, parent_id FROM categories WHERE id = :c", c=category) == \
        [("Late arrivals", None)]
    assert not shop.writes._marked(), "the entered mark is dropped"

    # Dual-writes again: the ids MySQL hands out are above DynamoDB's, the versions above
    # the items' (the product's went up natively), and DynamoDB follows.
    shop.flags.invalidate()
    again = shop.users.create({"username": "back", "email": "back@example.org",
                               "password_hash": "h"})
    assert again > new_user
    assert shop.orders.create_order_item(order, product_id, 1, Decimal("7.25")) > lines[1]
    shop.products.update_product(product_id, seller_id, {"price": Decimal("8.50")})
    product = shop.dynamodb.products.get_product(product_id)
    assert product is not None and product.price == Decimal("8.50")
    _level(shop)
    # Entering again writes the holder links afresh (the mark was dropped).
    assert shop.enter_dynamodb_only() > 0


def test_help() -> None:
    result = CliRunner().invoke(cli, ["shop", "catch-up", "-h"])
    assert result.exit_code == 0 and "Go back from dynamodb_only" in result.output


def _held(shop: Shop, gates: dict[str, threading.Event]) -> None:
    """Holds the first transaction of each named thread until its gate is set; sets
    `<name> refused` when the thread reads the fence (its write was refused by it)."""
    sent: set[str] = set()

    def hook(operation: str, params: dict[str, Any]) -> None:
        name = threading.current_thread().name
        if name not in gates:
            return
        if operation == "TransactWriteItems" and name not in sent:
            sent.add(name)
            gates[name].wait(timeout=60)
        if operation == "GetItem" and params["Key"].get("id", {}).get("S", "").startswith(
                "fence#"):
            gates[f"{name} refused"].set()

    shop.ddb.before.append(hook)


def test_a_native_write_racing_the_close_lands_once(shop: Shop, live_settings: Settings) -> None:
    product_id, _ = a_product_in_carts_and_orders(shop)
    order_id, = _rows(shop, "SELECT order_id FROM order_items GROUP BY order_id "
                            "HAVING COUNT(*) > 1 ORDER BY order_id LIMIT 1")[0]
    order_lines = _rows(shop, "SELECT id FROM order_items WHERE order_id = :o ORDER BY id",
                        o=order_id)
    mover = a_user_with_orders_and_cart(shop)
    held = _rows(shop, "SELECT (SELECT COUNT(*) FROM orders WHERE user_id = :u), "
                       "(SELECT COUNT(*) FROM shopping_carts WHERE user_id = :u)", u=mover)
    shop.enter_dynamodb_only()
    users = {name: shop.users.create({"username": name, "email": f"{name}@example.org",
                                      "password_hash": "h"}) for name in ("before", "after")}
    gates = {name: threading.Event() for name in
             ("before", "after", "before refused", "after refused")}
    _held(shop, gates)
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            shop.cart.add_item(users[name], product_id, 1)
        except BaseException as err:  # noqa: BLE001 - asserted below
            errors.append(err)

    writers = [threading.Thread(target=write, args=(n,), name=n) for n in ("before", "after")]
    for t in writers:
        t.start()

    def drained() -> None:  # "before" commits after a drain, before the close
        gates["before"].set()
        writers[0].join(timeout=60)

    def closed() -> None:  # "after" is sent once the fence is closed: refused, then waits
        gates["after"].set()
        assert gates["after refused"].wait(timeout=60)

    def copied() -> None:
        # In the stream: an email change (orders and cart lines removed at the old email,
        # created at the new one), and an order losing a line (its lines replaced).
        shop.users.update(mover, {"email": "moved@example.org"})
        order = shop.writes._order(order_id)
        order["order_items"] = {"L": order["order_items"]["L"][:-1]}
        order["_version"] = {"N": str(int(order["_version"]["N"]) + 1)}
        shop.ddb.call("PutItem", TableName=shop.ddb.table_name("Users"), Item=order)

    summary = catch_up(live_settings, settle_seconds=0.0,
                       hooks={"copied": copied, "drained": drained, "closed": closed})
    writers[1].join(timeout=60)
    assert errors == []
    assert _rows(shop, "SELECT id FROM order_items WHERE order_id = :o ORDER BY id",
                 o=order_id) == order_lines[:-1]
    assert _rows(shop, "SELECT (SELECT COUNT(*) FROM orders WHERE user_id = :u), "
                       "(SELECT COUNT(*) FROM shopping_carts WHERE user_id = :u)", u=mover) == held
    assert _rows(shop, "SELECT email FROM users WHERE id = :u", u=mover) == [("moved@example.org",)]
    assert not gates["before refused"].is_set(), "committed before the close"
    assert _phases(shop) == {Phase.DYNAMODB_READ}
    assert summary.records_applied > summary.records_before_close, "the final drain applied it"
    for name in ("before", "after"):  # each line once, in both stores
        assert _rows(shop, "SELECT quantity FROM shopping_carts WHERE user_id = :u",
                     u=users[name]) == [(1,)], name
    _level(shop)


class _Shards(StreamCursor):
    """A stream read as if each item's changes were in a shard of its own, read in
    reverse: each item's changes in order, the items' not (as several shards on AWS)."""

    def read(self) -> Iterator[list[Record]]:
        by_item: dict[str, list[Record]] = {}
        for batch in super().read():
            for record in batch:
                key = json.dumps(record["dynamodb"]["Keys"], sort_keys=True)
                by_item.setdefault(key, []).append(record)
        if by_item:
            yield [r for records in reversed(by_item.values()) for r in records]


def test_a_move_read_out_of_order_still_lands(shop: Shop, live_settings: Settings,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    mover = a_user_with_orders_and_cart(shop)
    orders = _rows(shop, "SELECT id FROM orders WHERE user_id = :u ORDER BY id", u=mover)
    carts = _rows(shop, "SELECT product_id, quantity FROM shopping_carts WHERE user_id = :u "
                        "ORDER BY product_id", u=mover)
    shop.enter_dynamodb_only()
    monkeypatch.setattr(catch_up_driver, "StreamCursor", _Shards)

    def copied() -> None:  # moved, then changed at the new key
        shop.users.update(mover, {"email": "moved@example.org"})
        shop.orders.update_order_status(orders[0][0], "completed")
        shop.cart.update_item_quantity(mover, carts[0][0], 9)

    summary = catch_up(live_settings, settle_seconds=0.0, hooks={"copied": copied})
    assert summary.records_applied > 0
    assert _rows(shop, "SELECT id FROM orders WHERE user_id = :u ORDER BY id", u=mover) == orders
    assert _rows(shop, "SELECT status FROM orders WHERE id = :o", o=orders[0][0]) == \
        [("completed",)]
    assert _rows(shop, "SELECT product_id, quantity FROM shopping_carts WHERE user_id = :u "
                       "ORDER BY product_id", u=mover) == [(carts[0][0], 9), *carts[1:]]
    _level(shop)


def test_a_process_that_slept_through_a_catch_up_waits_for_the_links_on_entering_again(
        shop: Shop, live_settings: Settings) -> None:
    """Two processes were in dynamodb_only and made no write while a catch-up went back:
    both still hold "ready" in memory. Back in dual-write, a cart line is added (DynamoDB
    gets its item, no holder link: links are written on entering). When the shop enters
    dynamodb_only again, the first writer writes the links (held here mid-way); the
    other process's price change must wait for them, or the new line keeps the old
    price."""
    product_id, seller_id = a_product_in_carts_and_orders(shop)
    shop.enter_dynamodb_only()
    other = open_shop(live_settings)
    try:
        assert other.writes.is_ready()
        catch_up(live_settings, settle_seconds=0.0)
        assert _phases(shop) == {Phase.DYNAMODB_READ}
        buyer = shop.users.create({"username": "between", "email": "between@example.org",
                                   "password_hash": "h"})
        shop.cart.add_item(buyer, product_id, 1)
        shop.flags.set_phases(list(SHOP_ENTITIES), "dynamodb_only")

        preparing, go = threading.Event(), threading.Event()
        put_links = shop.writes._put_links

        def held_links(links: list[Any]) -> int:
            preparing.set()
            assert go.wait(timeout=60)
            return put_links(links)

        shop.writes._put_links = held_links  # type: ignore[method-assign]
        errors: list[BaseException] = []
        waiting, done = threading.Event(), threading.Event()

        def fence_read(operation: str, params: dict[str, Any]) -> None:
            if operation == "GetItem" and params["Key"].get("id", {}).get("S", "").startswith(
                    "fence#"):
                waiting.set()

        other.ddb.before.append(fence_read)

        def first() -> None:  # refused by the released fence, then writes the links
            try:
                shop.products.update_inventory(product_id, 77)
            except BaseException as err:  # noqa: BLE001 - asserted below
                errors.append(err)

        def second() -> None:
            try:
                other.products.update_product(product_id, seller_id,
                                              {"price": Decimal("9.75")})
            except BaseException as err:  # noqa: BLE001 - asserted below
                errors.append(err)
            finally:
                done.set()
                waiting.set()

        writers = [threading.Thread(target=first)]
        writers[0].start()
        assert preparing.wait(timeout=60)
        writers.append(threading.Thread(target=second))
        writers[1].start()
        assert waiting.wait(timeout=60)
        assert not done.is_set(), "the price changed before the links were written"
        go.set()
        for writer in writers:
            writer.join(timeout=90)
        assert errors == []
        for user_id, email in _rows(shop, "SELECT c.user_id, u.email FROM shopping_carts c "
                                          "JOIN users u ON u.id = c.user_id "
                                          "WHERE c.product_id = :p", p=product_id):
            line = shop.ddb.call("GetItem", TableName=shop.ddb.table_name("Users"),
                                 Key={"PK": {"S": email}, "SK": {"S": f"CART#{product_id}"}},
                                 ConsistentRead=True)["Item"]
            assert Decimal(line["product_price"]["N"]) == Decimal("9.75"), (user_id, email)
        assert any(u == buyer for u, _ in _rows(
            shop, "SELECT user_id, 1 FROM shopping_carts WHERE product_id = :p", p=product_id))
    finally:
        other.close()


def test_rows_no_item_holds_are_deleted_a_page_of_keys_at_a_time(
        shop: Shop, live_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows MySQL holds that no item stands for (here written to MySQL behind the shop's
    back while it ran on DynamoDB) are deleted, read two keys a page: across the pages
    of a one-column key (categories) and of a two-column key (cart lines), every
    stray row goes and every row an item holds stays."""
    monkeypatch.setattr(catch_up_driver, "UNSEEN_PAGE", 2)
    assert shop.enter_dynamodb_only() > 0
    carts = set(_rows(shop, "SELECT user_id, product_id FROM shopping_carts"))
    categories = set(_rows(shop, "SELECT id FROM categories"))
    users = [u for (u,) in _rows(shop, "SELECT id FROM users ORDER BY id")]
    products = [p for (p,) in _rows(shop, "SELECT id FROM products ORDER BY id")]
    strays = [(u, p) for u in users for p in products if (u, p) not in carts][:5]
    with shop.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO shopping_carts (user_id, product_id, quantity) "
                             "VALUES (:u, :p, 1)"), [{"u": u, "p": p} for u, p in strays])
        for n in range(3):
            conn.execute(sa.text("INSERT INTO categories (name) VALUES (:n)"),
                         {"n": f"stray {n}"})
    assert len(strays) == 5 and len(carts) > 2 and len(categories) > 2

    summary = catch_up(live_settings, settle_seconds=0)
    assert summary.rows_deleted == 8
    assert set(_rows(shop, "SELECT user_id, product_id FROM shopping_carts")) == carts
    assert set(_rows(shop, "SELECT id FROM categories")) == categories
    _level(shop)
