"""The shop in `dynamodb_only` under 8 threads of random operations with many collisions (a
few users, products and orders): afterwards every denormalized value in DynamoDB equals
its source item, no username or email is held twice, no cart line, order or holder link
is orphaned, every acknowledged order item is in its order exactly once, and no id
collides with one MySQL issued or with another.

The races are staged, not hoped for: the threads start at a barrier with a round in
which all of them add to one new cart line and then append to one order, each commit
held (a hook at the client's choke point) until every thread has read and built its own;
so in each race all but one are cancelled and read again, the retry counter says they
were, and the line and the order hold every contribution exactly once.

Against MariaDB and DynamoDB Local. `MIGRATE_STRESS_DYNAMODB_ONLY_OPS` sets the
operations per thread: the default is 40 (8 × 2,000 takes many minutes on the shared
two-core machine it was written on; see the README).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from migration.shop.dual_write import Shop
from migration.shop.dynamodb_only import Contended, TooManyItems
from migration.shop.repositories import Conflict, InUse, InvalidInput, NotFound, NotOwner
from tests.stress.shop_items import plain, scan

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb, pytest.mark.slow]

THREADS = 8
OPS = int(os.environ.get("MIGRATE_STRESS_DYNAMODB_ONLY_OPS", "40"))
# TooManyItems: a long run gives a product more holders than one transaction can rewrite
# (the documented limit), refused before anything is written.
EXPECTED = (Conflict, NotFound, NotOwner, InUse, InvalidInput, TooManyItems)


class World:
    """The small pools the threads pick from, and what was acknowledged."""

    def __init__(self, shop: Shop):
        with shop.engine.connect() as conn:
            def ids(query: str) -> list[int]:
                return [int(r[0]) for r in conn.execute(sa.text(query))]
            # Movers change their email; their orders are the seed's (an email change of a
            # user with more than ~48 orders and lines is refused: one transaction).
            self.movers = ids("SELECT id FROM users ORDER BY id LIMIT 4")
            self.buyers = ids("SELECT id FROM users ORDER BY id DESC LIMIT 3")
            self.products = ids("SELECT id FROM products ORDER BY id LIMIT 5")
            self.orders = ids(f"SELECT id FROM orders WHERE user_id IN "
                              f"({','.join(map(str, self.movers))}) ORDER BY id LIMIT 4")
            self.category = ids("SELECT id FROM categories ORDER BY id LIMIT 1")[0]
            self.sellers = {p: int(s) for p, s in conn.execute(sa.text(
                "SELECT id, seller_id FROM products"))}
            self.mysql_max = {table: int(conn.execute(sa.text(
                f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar_one())
                for table in ("users", "products", "orders", "order_items", "categories")}
        self.lock = threading.Lock()
        self.order_items: list[tuple[int, int]] = []  # acknowledged (order, item)
        self.created_users: list[int] = []
        self.deleted_users: set[int] = set()
        self.categories: list[int] = []  # created natively, renamed and moved below

    def users(self) -> list[int]:
        return self.movers + self.buyers


def operation(shop: Shop, world: World, rng: random.Random) -> None:
    """One random write, on a few users, products and orders."""
    users, products = world.users(), world.products
    kind = rng.randrange(100)
    user, product = rng.choice(users), rng.choice(products)
    if kind < 25:
        shop.cart.add_item(user, product, rng.randint(1, 3))
    elif kind < 32:
        shop.cart.update_item_quantity(user, product, rng.randint(1, 9))
    elif kind < 40:
        shop.cart.remove_item(user, product)
    elif kind < 43:
        shop.cart.clear_cart(user)
    elif kind < 52:
        mover = rng.choice(world.movers)
        shop.users.update(mover, {"email": f"m{mover}-{rng.randrange(3)}@stress.example"})
    elif kind < 57:
        shop.users.update(rng.choice(users), {"username": f"taken{rng.randrange(6)}"})
    elif kind < 59:
        created = shop.users.create({"username": f"taken{rng.randrange(6)}",
                                     "email": f"new{rng.randrange(6)}@stress.example",
                                     "password_hash": "h"})
        with world.lock:
            world.created_users.append(created)
    elif kind < 60:
        with world.lock:
            victim = rng.choice(world.created_users) if world.created_users else None
        if victim is not None:
            shop.users.delete(victim)
            with world.lock:
                world.deleted_users.add(victim)
    elif kind < 62:
        shop.categories.update(rng.choice(world.categories), {"name": f"sc{rng.randrange(4)}"})
    elif kind < 64:
        parent = rng.choice(world.categories)
        shop.categories.update(rng.choice(world.categories), {"parent_id": parent})
    elif kind < 65:
        created = shop.categories.create({"name": f"sc{rng.randrange(8)}",
                                          "parent_id": rng.choice(world.categories)})
        with world.lock:
            world.categories.append(created)
    elif kind < 70:
        shop.products.update_product(product, world.sellers[product], {
            "price": f"{rng.randint(1, 40)}.{rng.randrange(100):02d}",
            "name": f"Stress {product} v{rng.randrange(4)}"})
    elif kind < 74:
        shop.products.update_inventory(product, rng.randrange(50))
    elif kind < 86:
        order = rng.choice(world.orders)
        item = shop.orders.create_order_item(order, product, rng.randint(1, 3), Decimal("2.50"))
        with world.lock:
            world.order_items.append((order, item))
    elif kind < 92:
        shop.orders.update_order_status(rng.choice(world.orders),
                                        rng.choice(["pending", "completed", "cancelled"]))
    elif kind < 96:
        order = shop.orders.create_order(rng.choice(world.buyers), Decimal("9.99"))
        item = shop.orders.create_order_item(order, product, 1, Decimal("9.99"))
        with world.lock:
            world.order_items.append((order, item))
    else:
        shop.users.upgrade_to_seller(user)


def test_dynamodb_only_under_contention(shop: Shop) -> None:
    shop.enter_dynamodb_only()
    world = World(shop)
    staged_user, staged_product = world.buyers[0], world.products[0]
    with contextlib.suppress(NotFound):
        shop.cart.remove_item(staged_user, staged_product)
    staged_order = shop.orders.create_order(staged_user, Decimal("1.00"))
    root = shop.categories.create({"name": "stress root"})
    world.categories = [root] + [shop.categories.create({"name": f"sc{n}", "parent_id": root})
                                 for n in range(3)]
    barrier = threading.Barrier(THREADS)
    staged_done = threading.Barrier(THREADS + 1)  # the main thread checks the staged round
    # In the staged round each thread's first commit waits until every thread has built
    # its own: all have read the line (absent) and the order before any writes.
    commit_gate = threading.Barrier(THREADS)
    staging = threading.local()

    def hold(operation: str, _params: dict[str, Any]) -> None:
        if operation == "TransactWriteItems" and getattr(staging, "holds", 0):
            staging.holds = 0
            commit_gate.wait(timeout=120)

    shop.ddb.before.append(hold)
    unexpected: list[BaseException] = []
    counts: Counter[str] = Counter()

    def run(slot: int) -> None:
        rng = random.Random(1000 + slot)
        try:
            barrier.wait()
            # The staged round: everyone at once on one new line and one order.
            staging.holds = 1
            shop.cart.add_item(staged_user, staged_product, 1)
            staging.holds = 1
            item = shop.orders.create_order_item(staged_order, staged_product, 1, Decimal("1"))
            with world.lock:
                world.order_items.append((staged_order, item))
            staged_done.wait(timeout=300)
            staged_done.wait(timeout=300)
            for _ in range(OPS):
                try:
                    operation(shop, world, rng)
                    counts["ok"] += 1
                except EXPECTED as err:
                    counts[type(err).__name__] += 1
                except Contended:
                    counts["Contended"] += 1
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            unexpected.append(err)
            staged_done.abort()
            commit_gate.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    retries_before = shop.writes.retries
    for thread in threads:
        thread.start()
    try:
        staged_done.wait(timeout=300)
        # Every thread's add and append landed once, though all read before any wrote.
        assert shop.writes.retries - retries_before >= 2 * (THREADS - 1), \
            "in each staged race all but one writer started again"
        line = shop.cart.get_item(staged_user, staged_product)
        assert line is not None and line.quantity == THREADS
        got = shop.orders.get_order(staged_order)
        assert got is not None and len(got.items) == THREADS
    except threading.BrokenBarrierError:
        pass  # a thread failed: reported below
    finally:
        with contextlib.suppress(threading.BrokenBarrierError):
            staged_done.wait(timeout=300)
        for thread in threads:
            thread.join()
        shop.ddb.before.remove(hold)
    assert not unexpected, unexpected[:3]
    assert counts["ok"] > THREADS * OPS // 2, counts
    assert counts["Contended"] <= THREADS * OPS // 100, counts

    users_table = [plain(i) for i in scan(shop, "Users")]
    products_table = [plain(i) for i in scan(shop, "Products")]
    users = [i for i in users_table if i["_type"] == "USER"]
    guards = [i for i in users_table if i["_type"] == "_unique"]
    orders = [i for i in users_table if i["_type"] == "ORDER"]
    lines = [i for i in users_table if i["_type"] == "CART"]
    products = {int(i["id"]): i for i in products_table if i["_type"] == "PRODUCT"}
    links = {(int(i["PK"]), i["SK"]) for i in products_table if i["_type"] == "_held"}

    # Ids: unique per entity, and any id above MySQL's belongs to no MySQL row.
    by_id = {int(u["id"]): u for u in users}
    assert len(by_id) == len(users), "no two user items share an id"
    assert len({int(o["id"]) for o in orders}) == len(orders)
    item_ids = [int(i["id"]) for o in orders for i in o["order_items"]]
    assert len(item_ids) == len(set(item_ids)), "no two order items share an id"
    for created in world.created_users:
        assert created > world.mysql_max["users"]
        assert (created in by_id) is (created not in world.deleted_users)
    for _order, item in world.order_items:
        assert item > world.mysql_max["order_items"]
    assert staged_order > world.mysql_max["orders"]

    # Uniqueness: one user per email (the key) and per username, one guard each.
    assert len({u["username"] for u in users}) == len(users), "no username held twice"
    guarded = {g["PK"].removeprefix("UNIQUE#USER#username#"): g["_owner"] for g in guards}
    assert len(guarded) == len(guards)
    assert guarded == {u["username"]: f"User#{u['id']}" for u in users}

    # Denormalized values equal their sources; nothing orphaned.
    for cart_line in lines:
        owner = by_id.get(int(cart_line["user_id"]))
        assert owner is not None and cart_line["PK"] == owner["email"], cart_line
        product = products.get(int(cart_line["product_id"]))
        assert product is not None, cart_line
        assert (cart_line["product_name"], Decimal(cart_line["product_price"])) == \
            (product["name"], Decimal(product["price"])), cart_line
        assert (int(cart_line["product_id"]), f"HELD#CART#{cart_line['user_id']}") in links
    acknowledged: dict[int, Counter[int]] = defaultdict(Counter)
    for order, item in world.order_items:
        acknowledged[order][item] += 1
    for order in orders:
        owner = by_id.get(int(order["user_id"]))
        assert owner is not None and order["PK"] == owner["email"], order["id"]
        held = Counter(int(i["id"]) for i in order["order_items"])
        assert all(held[i] == 1 for i in acknowledged.get(int(order["id"]), {})), \
            f"order {order['id']} lost or doubled an acknowledged item"
        for item in order["order_items"]:
            product = products.get(int(item["product_id"]))
            assert product is not None and item["product_name"] == product["name"]
            assert (int(item["product_id"]), f"HELD#ORDER#{order['id']}") in links
    holders = {(int(c["product_id"]), f"HELD#CART#{c['user_id']}") for c in lines} | \
        {(int(i["product_id"]), f"HELD#ORDER#{o['id']}") for o in orders
         for i in o["order_items"]}
    assert links == holders, "every link names a holder, every holder has its link"
    # Categories: keyed by their parent's current name, ids unique, parents present.
    categories = [plain(i) for i in scan(shop, "Categories") if plain(i)["_type"] == "CATEGORY"]
    by_category = {int(c["id"]): c for c in categories}
    assert len(by_category) == len(categories)
    for category in categories:
        parent = by_category.get(int(category["parent_id"])) \
            if category.get("parent_id") is not None else None
        assert category["PK"] == (parent["name"] if parent is not None else "ROOT"), category
        assert category.get("parent_name") == (parent["name"] if parent else None)
    assert all(c > world.mysql_max["categories"] for c in world.categories)
    staged = next(o for o in orders if int(o["id"]) == staged_order)
    assert len(staged["order_items"]) >= THREADS
