"""The shop's whole journey under traffic, through its gates: every entity goes
mysql_only → dual_write → (backfill) → shadow_read → dynamodb_read → dynamodb_only with
`migration.ops.operate.set_phase` (what `migrate flags set` runs), never forced, while
three threads keep writing (and reading their carts, user, product, orders and category
back). The gates' windows are short (`Settings.gates`); their evidence is real: the
ledger's dual-write and shadow-read counts, the backfill's checkpoints, recorded
reconciles. A refused switch runs a reconcile (repairing what it found), lets traffic
run, and tries again, up to a bound; then the test fails with the gate's reasons. The
last step names one entity: the shop's contract couples all five, so they move
together, and the shop enters on its writers' first native write.

At the end every acknowledged write is in DynamoDB, no shadow read found a difference,
every denormalized value equals its source, no username is held twice, no cart line or
order is orphaned, and no id DynamoDB handed out collides with one MySQL issued.
Against MariaDB and DynamoDB Local.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from migration.backfill.run import BackfillOptions, backfill
from migration.ops import operate
from migration.ops.operate import GateRefused
from migration.ops.status import Collector
from migration.settings import GateSettings, Settings
from migration.shop.dual_write import SHOP_ENTITIES, Shop
from migration.shop.dynamodb_only import ShopNotReady
from reconcile.run import reconcile
from tests.conftest import make_shop
from tests.stress.shop_items import plain, scan

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb, pytest.mark.slow]

WRITERS = 3
PER_PHASE = 4  # writes each writer has acknowledged in a phase before the next switch
# Short windows, the rest as a real migration has them (no threshold switched off).
GATES = GateSettings(window_seconds=120, max_failure_rate=0.01, min_dual_writes=1,
                     outbox_max_age_seconds=30, max_mismatch_rate=0.001, min_comparisons=1,
                     clean_reconciles=2, final_window_seconds=2)
GATE_BOUND = 45.0  # seconds a refused switch may wait for its evidence


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
        self.categories: dict[int, str] = {}  # created: id -> name
        self.done = 0
        self.n = 0

    def step(self) -> None:
        shop, rng = self.shop, self.rng
        self.n += 1
        kind = rng.randrange(7)
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
        elif kind == 5 or not self.categories:
            name = f"w{self.slot}-c{self.n}"
            self.categories[self.write(lambda: shop.categories.create({"name": name}))] = name
        else:
            order = self.write(lambda: shop.orders.create_order(self.user, Decimal("3.00")))
            self.orders[order] = []
            item = self.write(lambda: shop.orders.create_order_item(order, product, 1,
                                                                    Decimal("3.00")))
            self.orders[order].append(item)
        # Read back from whichever store the phase names (both, compared, in shadow_read).
        held = {line.product_id: line.quantity for line in shop.cart.list_items(self.user)}
        assert held == self.lines, f"writer {self.slot} reads its own cart back"
        # Reads of every entity: the shadow comparisons the gate to dynamodb_read counts.
        user: Any = shop.users.get(self.user)
        assert self.first_name is None or user.first_name == self.first_name
        product: Any = shop.products.get_product(self.product)
        assert self.price is None or product.price == self.price
        assert {o.id for o in shop.orders.list_for_user(self.user)} >= set(self.orders)
        if self.categories:
            latest = max(self.categories)
            category: Any = shop.categories.get(latest)
            assert category.name == self.categories[latest]
        self.done += 1

    @staticmethod
    def write(call: Callable[[], Any]) -> Any:
        while True:  # the shop refuses while it enters dynamodb_only: not acknowledged
            try:
                return call()
            except ShopNotReady:
                continue


def test_the_shop_goes_to_dynamodb_only_through_its_gates(live_settings: Settings) -> None:
    settings = live_settings.model_copy(update={"gates": GATES, "outcome_flush_seconds": 0.2})
    shop = make_shop(settings, synced=False)
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
    refusals: Counter[str] = Counter()

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

    def evidence() -> None:
        """What a refused gate waits for: counts flushed, a reconcile recorded (what it
        finds repaired, so the next one can be clean), traffic in the phase."""
        shop.ledger.flush()
        if reconcile(shop.contract, shop.engine, shop.ddb).has_drift:
            shop.repair()
        traffic_in_this_phase()

    def switch(name: str, phase: str) -> operate.PhaseSwitch:
        deadline = time.monotonic() + GATE_BOUND
        while True:
            shop.ledger.flush()
            try:
                return operate.set_phase(Collector(shop.contract, shop.engine, shop.ddb,
                                                   shop.flags), settings, name, phase,
                                         by="journey")
            except GateRefused as refused:
                refusals[f"{name}->{phase}"] += 1
                if time.monotonic() > deadline:
                    pytest.fail(f"{name} -> {phase}: the gate still refused after "
                                f"{GATE_BOUND:g}s: {refused.reasons}")
                evidence()

    def move_all(phase: str) -> None:
        for name in SHOP_ENTITIES:
            switched = switch(name, phase)
            assert not switched.forced
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
        move_all("shadow_read")
        move_all("dynamodb_read")
        last = switch("user", "dynamodb_only")  # the shop's five move together
        assert sorted(f.entity for f in last.moved_with) == sorted(set(SHOP_ENTITIES) - {"user"})
        traffic_in_this_phase()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors[:1]
    assert {flag.phase.value for flag in shop.flags.all()} == {"dynamodb_only"}
    assert shop.flags.mismatch_counts() == dict.fromkeys(SHOP_ENTITIES, 0), "shadow reads agreed"
    assert shop.writes.is_ready()

    # Every acknowledged write is in DynamoDB.
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
        for category_id, name in writer.categories.items():
            category = shop.dynamodb.categories.get(category_id)
            assert category is not None and category.name == name
    check_items(shop)
    shop.close()


def check_items(shop: Shop) -> None:
    """Denormalized values equal their sources; no username twice; no cart line or order
    without its user and products; no id shared by two items, and every id MySQL never
    issued above those it did (MySQL is left as it was at the switch)."""
    users_table = [plain(i) for i in scan(shop, "Users")]
    users = {int(u["id"]): u for u in users_table if u["_type"] == "USER"}
    orders = [i for i in users_table if i["_type"] == "ORDER"]
    lines = [i for i in users_table if i["_type"] == "CART"]
    products = {int(p["id"]): p for p in map(plain, scan(shop, "Products"))
                if p["_type"] == "PRODUCT"}
    categories = [c for c in map(plain, scan(shop, "Categories")) if c["_type"] == "CATEGORY"]
    assert len(users) == sum(u["_type"] == "USER" for u in users_table)
    assert len({u["username"] for u in users.values()}) == len(users), "no username twice"
    for line in lines:
        owner, product = users.get(int(line["user_id"])), products.get(int(line["product_id"]))
        assert owner is not None and product is not None, f"orphaned cart line {line}"
        assert line["PK"] == owner["email"]
        assert (line["product_name"], Decimal(line["product_price"])) == \
            (product["name"], Decimal(product["price"])), line
    for order in orders:
        owner = users.get(int(order["user_id"]))
        assert owner is not None and order["PK"] == owner["email"], f"orphaned order {order}"
        for item in order["order_items"]:
            product = products.get(int(item["product_id"]))
            assert product is not None and item["product_name"] == product["name"], order
    by_category = {int(c["id"]): c for c in categories}
    assert len(by_category) == len(categories)
    for category in categories:
        parent = by_category.get(int(category["parent_id"])) \
            if category.get("parent_id") is not None else None
        assert category["PK"] == (parent["name"] if parent is not None else "ROOT")
    items = [int(i["id"]) for o in orders for i in o["order_items"]]
    assert len(items) == len(set(items)), "no two order items share an id"
    assert len({int(o["id"]) for o in orders}) == len(orders), "no two orders share an id"
    with shop.engine.connect() as conn:
        for table, found in (("users", {i: u["username"] for i, u in users.items()}),
                             ("orders", {int(o["id"]): o["user_id"] for o in orders}),
                             ("categories", {i: c["name"] for i, c in by_category.items()}),
                             ("order_items", {i: None for i in items})):
            column = {"users": "username", "orders": "user_id", "categories": "name",
                      "order_items": "NULL"}[table]
            issued = {int(i): v for i, v in conn.execute(sa.text(
                f"SELECT id, {column} FROM {table}"))}
            high = max(issued, default=0)
            for item_id, value in found.items():
                if item_id in issued:  # a row MySQL holds: the same row, not a newcomer
                    assert value is None or str(issued[item_id]) == str(value), \
                        (table, item_id, issued[item_id], value)
                else:
                    assert item_id > high, f"{table} id {item_id} collides below MySQL's {high}"
