"""The shop's whole journey under traffic: every entity goes mysql_only → dual_write →
(backfill, reconcile until clean) → shadow_read → dynamodb_read → dynamodb_only while
three threads keep writing (and reading their carts back), and at the end every
acknowledged write is in DynamoDB and no shadow read found a difference.

Each thread owns a user (their first name, their cart lines, their orders) and a product
(its price), so the last acknowledged value of each is known exactly. After each phase
switch the main thread waits until every writer has had writes acknowledged in the new
phase (a condition, not a sleep). Phases are moved with `set_phase` directly, the shop's
last step with `Shop.enter_dynamodb_only`. Against MariaDB and DynamoDB Local.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from migration.backfill.run import BackfillOptions, backfill
from migration.settings import Settings
from migration.shop.dual_write import SHOP_ENTITIES, Shop
from migration.shop.dynamodb_only import ShopNotReady
from reconcile.run import reconcile
from tests.conftest import make_shop

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb, pytest.mark.slow]

WRITERS = 3
PER_PHASE = 4  # writes each writer has acknowledged in a phase before the next switch


class Writer:
    """One thread's writes and what it knows they left behind."""

    def __init__(self, shop: Shop, slot: int, user: int, product: int, seller: int,
                 products: list[int], lines: dict[int, int]):
        self.shop, self.slot, self.user, self.product, self.seller = \
            shop, slot, user, product, seller
        self.products = products
        self.rng = random.Random(slot)
        self.first_name: str | None = None
        self.price: Decimal | None = None
        self.lines = dict(lines)  # product -> quantity, as acknowledged
        self.orders: dict[int, list[int]] = {}  # order -> acknowledged items
        self.done = 0
        self.n = 0

    def step(self) -> None:
        shop, rng = self.shop, self.rng
        self.n += 1
        kind = rng.randrange(6)
        product = rng.choice(self.products)
        if kind == 0:
            name = f"w{self.slot}-{self.n}"
            self.write(lambda: shop.users.update(self.user, {"first_name": name}))
            self.first_name = name
        elif kind == 1:
            price = Decimal(f"{self.slot + 1}.{self.n % 100:02d}")
            self.write(lambda: shop.products.update_product(self.product, self.seller,
                                                            {"price": price}))
            self.price = price
        elif kind == 2 or (kind == 3 and product not in self.lines):
            self.write(lambda: shop.cart.add_item(self.user, product, 1))
            self.lines[product] = self.lines.get(product, 0) + 1
        elif kind == 3:
            quantity = rng.randint(1, 9)
            self.write(lambda: shop.cart.update_item_quantity(self.user, product, quantity))
            self.lines[product] = quantity
        elif kind == 4 and self.lines:
            gone = rng.choice(sorted(self.lines))
            self.write(lambda: shop.cart.remove_item(self.user, gone))
            del self.lines[gone]
        else:
            order = self.write(lambda: shop.orders.create_order(self.user, Decimal("3.00")))
            self.orders[order] = []
            item = self.write(lambda: shop.orders.create_order_item(order, product, 1,
                                                                    Decimal("3.00")))
            self.orders[order].append(item)
        # Read back from whichever store the phase names (both, compared, in shadow_read).
        held = {line.product_id: line.quantity for line in shop.cart.list_items(self.user)}
        assert held == self.lines, f"writer {self.slot} reads its own cart back"
        self.done += 1

    @staticmethod
    def write(call: Callable[[], Any]) -> Any:
        while True:  # the shop refuses while it enters dynamodb_only: not acknowledged
            try:
                return call()
            except ShopNotReady:
                continue


def test_the_shop_goes_to_dynamodb_only_under_traffic(live_settings: Settings) -> None:
    shop = make_shop(live_settings, synced=False)
    for name in SHOP_ENTITIES:
        shop.flags.set_phase(name, "mysql_only")
    with shop.engine.connect() as conn:
        users = [int(u) for u in conn.scalars(sa.text(
            "SELECT id FROM users ORDER BY id LIMIT 3"))]
        owned = [tuple(map(int, r)) for r in conn.execute(sa.text(
            "SELECT id, seller_id FROM products ORDER BY id LIMIT 3"))]
        products = [int(p) for p in conn.scalars(sa.text(
            "SELECT id FROM products ORDER BY id DESC LIMIT 4"))]
        lines = {u: {int(p): int(q) for p, q in conn.execute(sa.text(
            "SELECT product_id, quantity FROM shopping_carts WHERE user_id = :u"), {"u": u})}
            for u in users}
    writers = [Writer(shop, i, users[i], owned[i][0], owned[i][1], products, lines[users[i]])
               for i in range(WRITERS)]
    progress = threading.Condition()
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_writing(writer: Writer) -> None:
        try:
            while not stop.is_set():
                writer.step()
                with progress:
                    progress.notify_all()
        except BaseException as err:  # noqa: BLE001 - failed on below
            errors.append(err)
            with progress:
                progress.notify_all()

    def traffic_in_this_phase() -> None:
        marks = [w.done for w in writers]
        with progress:
            assert progress.wait_for(lambda: errors or all(
                w.done >= mark + PER_PHASE for w, mark in zip(writers, marks, strict=True)),
                timeout=120), "writers stalled"
        assert not errors, errors[:1]

    def move_all(phase: str) -> None:
        for name in SHOP_ENTITIES:
            shop.flags.set_phase(name, phase)
        traffic_in_this_phase()

    threads = [threading.Thread(target=keep_writing, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    try:
        traffic_in_this_phase()
        move_all("dual_write")
        summary = backfill(shop.contract, shop.engine, shop.ddb,
                           BackfillOptions(workers=2, batch_size=100))
        assert summary.exit_code == 0
        traffic_in_this_phase()
        for _ in range(3):  # reconcile until clean (dual-writes in flight may clear late)
            result = reconcile(shop.contract, shop.engine, shop.ddb)
            if not result.has_drift:
                break
            shop.repair()
        assert not result.has_drift, {e.entity: e.to_json() for e in result.entities if e.drift}
        move_all("shadow_read")
        move_all("dynamodb_read")
        shop.enter_dynamodb_only()
        traffic_in_this_phase()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors[:1]
    assert shop.flags.mismatch_counts() == dict.fromkeys(SHOP_ENTITIES, 0), "shadow reads agreed"

    repos = shop.dynamodb.repos
    for writer in writers:
        user: Any = repos.user.get_user_by_id(writer.user)
        if writer.first_name is not None:
            assert user.first_name == writer.first_name
        held = {m.product_id: m.quantity for m in shop.dynamodb.cart.list_items(writer.user)}
        assert held == writer.lines, f"writer {writer.slot}'s cart"
        product: Any = repos.product.get_product(writer.product)
        if writer.price is not None:
            assert product.price == writer.price
        for order_id, items in writer.orders.items():
            order = shop.dynamodb.orders.get_order(order_id)
            assert order is not None and [i.id for i in order.items] == items
    # Every cart line carries its product's current price (whichever phase changed it).
    for user_id in users:
        for line in shop.dynamodb.cart.list_items(user_id):
            item: Any = repos.cart_item.get_cart_item(
                repos.user.get_user_by_id(user_id).email, line.product_id)  # type: ignore[union-attr]
            product = repos.product.get_product(line.product_id)
            assert item.product_price == product.price
    shop.close()
