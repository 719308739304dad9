"""8 threads, 2,000 random operations each, across every write of the shop, with many
collisions on the same users, products and carts; afterwards a full comparison of
every item the contract defines finds zero differences and no username is held twice.

That the threads did contend is asserted, not hoped for: they start with a staged
round in which all of them add to the same new cart line at once (each has looked for
the line, found it absent, before any inserts it), so all but one must be retried;
the engine's retry counter says they were, and the line holds every quantity exactly
once.

Runs against MariaDB and DynamoDB Local (never moto: it is not concurrency-safe).
`MIGRATE_STRESS_OPS` changes the operations per thread (default 2000).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from migration.shop.dual_write import Shop
from migration.shop.repositories import MySQLShoppingCartRepository, ShopError
from migration.sync.compare import actual_items, compare_all

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb, pytest.mark.slow]

THREADS = 8
OPS = int(os.environ.get("MIGRATE_STRESS_OPS", "2000"))


class Pools:
    """Ids the threads pick from: small on purpose, so operations collide."""

    def __init__(self, shop: Shop):
        self.shop = shop
        self.lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        with self.shop.engine.connect() as conn:
            def ids(query: str) -> list[Any]:
                return [tuple(r) if len(r) > 1 else r[0] for r in conn.execute(sa.text(query))]
            users = ids("SELECT id FROM users ORDER BY id LIMIT 40")
            products = ids("SELECT id, seller_id FROM products ORDER BY id LIMIT 30")
            orders = ids("SELECT id FROM orders ORDER BY id DESC LIMIT 30")
            categories = ids("SELECT id FROM categories WHERE name LIKE 'stress %' "
                             "ORDER BY id LIMIT 20")
            roots = ids("SELECT id FROM categories ORDER BY id LIMIT 5")
        with self.lock:
            self.users, self.products, self.orders = users, products, orders
            self.categories, self.roots = categories, roots


# Told of every operation that succeeded: (its name, monotonic start, monotonic end).
Record = Callable[[str, float, float], None]


def run_thread(shop: Shop, pools: Pools, seed: int, errors: list[BaseException],
               outcomes: Counter[str], record: Record | None = None) -> None:
    rng = random.Random(seed)

    def pick(values: list[Any]) -> Any:
        return rng.choice(values) if values else 1

    for n in range(OPS):
        if n % 50 == 0:
            pools.refresh()
        tag = f"{seed}-{n}"
        user, (product, seller) = pick(pools.users), pick(pools.products) or (1, 1)
        order, category = pick(pools.orders), pick(pools.categories or pools.roots)
        name = rng.choice([
            "users.create", "users.update", "users.update", "users.delete",
            "users.upgrade_to_seller", "products.create_product", "products.update_product",
            "products.update_product", "products.delete_product", "products.update_inventory",
            "orders.create_order", "orders.create_order_item", "orders.create_order_item",
            "orders.update_order_status", "categories.create", "categories.update",
            "categories.delete", "cart.add_item", "cart.add_item", "cart.update_item_quantity",
            "cart.remove_item", "cart.clear_cart"])
        started = time.monotonic()
        try:
            if name == "users.create":
                shop.users.create({"username": f"stress{rng.randrange(60)}",
                                   "email": f"stress{rng.randrange(60)}@example.org",
                                   "password_hash": "h"})
            elif name == "users.update":
                change = rng.choice([{"email": f"moved{rng.randrange(60)}@example.org"},
                                     {"username": f"renamed{rng.randrange(60)}"},
                                     {"first_name": rng.choice(["Zoë", "Li", None])}])
                shop.users.update(user, change)
            elif name == "users.delete":
                if rng.random() < 0.3:
                    shop.users.delete(user)
            elif name == "users.upgrade_to_seller":
                shop.users.upgrade_to_seller(user)
            elif name == "products.create_product":
                shop.products.create_product(user, {"category_id": pick(pools.roots),
                                                    "name": f"Stress product {tag}",
                                                    "price": Decimal(rng.randrange(1, 9999)) / 100})
            elif name == "products.update_product":
                owner = seller if rng.random() < 0.9 else user
                shop.products.update_product(product, owner, rng.choice([
                    {"name": f"Renamed {tag}"}, {"price": Decimal(rng.randrange(1, 9999)) / 100},
                    {"description": rng.choice(["Ünïcode ✓", None])}]))
            elif name == "products.delete_product":
                if rng.random() < 0.3:
                    shop.products.delete_product(product, seller)
            elif name == "products.update_inventory":
                shop.products.update_inventory(product, rng.randrange(0, 100))
            elif name == "orders.create_order":
                shop.orders.create_order(user, Decimal(rng.randrange(100, 99999)) / 100)
            elif name == "orders.create_order_item":
                shop.orders.create_order_item(order, product, rng.randrange(1, 5),
                                              Decimal(rng.randrange(1, 9999)) / 100)
            elif name == "orders.update_order_status":
                shop.orders.update_order_status(order, rng.choice(["pending", "completed",
                                                                   "cancelled"]))
            elif name == "categories.create":
                parent = rng.choice([None, category])
                shop.categories.create({"name": f"stress {tag}", "parent_id": parent})
            elif name == "categories.update":
                if category in pools.categories:
                    shop.categories.update(category, rng.choice([
                        {"name": f"stress renamed {tag}"},
                        {"parent_id": rng.choice([None, pick(pools.categories)])}]))
            elif name == "categories.delete":
                if category in pools.categories and rng.random() < 0.3:
                    shop.categories.delete(category)
            elif name == "cart.add_item":
                shop.cart.add_item(user, product, rng.randrange(1, 4))
            elif name == "cart.update_item_quantity":
                shop.cart.update_item_quantity(user, product, rng.randrange(1, 9))
            elif name == "cart.remove_item":
                shop.cart.remove_item(user, product)
            elif name == "cart.clear_cart":
                shop.cart.clear_cart(user)
            outcomes["ok"] += 1
            if record is not None:
                record(name, started, time.monotonic())
        except ShopError as err:
            outcomes[type(err).__name__] += 1
        except BaseException as err:  # noqa: BLE001 - collected and failed on below
            errors.append(err)
            outcomes["unexpected"] += 1


class ContendedLine:
    """All threads add to one new cart line at once. Each add_item's locking read finds
    the line absent (no gap lock under READ COMMITTED); a barrier in the MySQL write holds
    every thread there until all have looked. Then one inserts and commits; each of the
    others either deadlocks on the duplicate key or updates a row it never saw (RowRaced):
    retried either way, so the engine must count at least THREADS - 1 retries."""

    def __init__(self, shop: Shop, monkeypatch: pytest.MonkeyPatch):
        with shop.engine.connect() as conn:
            self.user, self.product = conn.execute(sa.text(
                "SELECT u.id, p.id FROM users u CROSS JOIN products p WHERE NOT EXISTS "
                "(SELECT 1 FROM shopping_carts c WHERE c.user_id = u.id "
                "AND c.product_id = p.id) ORDER BY u.id, p.id LIMIT 1")).one()
        self.shop = shop
        self.barrier = threading.Barrier(THREADS)
        self.first_attempt = threading.local()
        original = MySQLShoppingCartRepository.add_item

        def add_item(repo: MySQLShoppingCartRepository, user_id: int, product_id: int,
                     quantity: int) -> None:
            if getattr(self.first_attempt, "pending", False):
                self.first_attempt.pending = False
                self.barrier.wait(timeout=60)  # every thread has looked: none has inserted
            original(repo, user_id, product_id, quantity)

        monkeypatch.setattr(MySQLShoppingCartRepository, "add_item", add_item)

    def add(self, seed: int) -> None:
        self.first_attempt.pending = True
        self.shop.cart.add_item(self.user, self.product, seed + 1)

    def quantity(self) -> int:
        with self.shop.engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT quantity FROM shopping_carts WHERE user_id = :u AND product_id = :p"),
                {"u": self.user, "p": self.product}).scalar_one())


def test_random_operations_from_eight_threads_leave_no_difference(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    pools = Pools(shop)
    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    contended = ContendedLine(shop, monkeypatch)

    def contend_then_run(seed: int) -> None:
        try:
            contended.add(seed)
        except BaseException as err:  # noqa: BLE001 - collected and failed on below
            errors.append(err)
        staged.wait(timeout=120)
        run_thread(shop, pools, seed, errors, outcomes)

    staged = threading.Barrier(THREADS + 1)  # the main thread checks the round in between
    started = time.monotonic()
    threads = [threading.Thread(target=contend_then_run, args=(seed,))
               for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    staged.wait(timeout=120)
    # The staged round: every add landed once (retries never apply a change twice), and
    # all but the first were retried.
    staged_errors = list(errors)
    staged_retries = shop.sync.stats.retries
    staged_quantity = contended.quantity()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    print(f"\n{THREADS * OPS} operations in {elapsed:.1f}s "
          f"({THREADS * OPS / elapsed:.0f}/s): {dict(outcomes)}; engine: {shop.sync.stats}; "
          f"retries in the staged round: {staged_retries}")
    assert not staged_errors, staged_errors
    assert staged_quantity == sum(range(1, THREADS + 1))
    assert staged_retries >= THREADS - 1, shop.sync.stats
    assert not errors, f"{len(errors)} unexpected errors, first: {errors[0]!r}"
    assert outcomes["ok"] > THREADS * OPS // 3, "too few operations succeeded to prove much"
    assert shop.sync.outbox.count() == 0, "every dual-write cleared its outbox row"
    # The shop's touches name every root its writes reach: no write needed its before-image
    # completed from a second read (correct either way, but slower).
    assert shop.sync.stats.late_roots == 0, shop.sync.stats
    result = compare_all(shop.contract, shop.engine, shop.ddb)
    assert result.clean, (result.summary(), result.missing[:5], result.extra[:5],
                          list(result.mismatched.items())[:3])
    guards = [item for item in actual_items(shop.contract, shop.ddb).values()
              if item["_type"] == {"S": "_unique"}]
    with shop.engine.connect() as conn:
        users = dict(conn.execute(sa.text("SELECT username, id FROM users")).all())
    # No username is held twice: by two User items, or by a guard and another user.
    holders = Counter(item["username"]["S"]
                      for item in actual_items(shop.contract, shop.ddb).values()
                      if item["_type"] == {"S": "USER"})
    assert holders and max(holders.values()) == 1
    assert {name: f"User#{user_id}" for name, user_id in users.items()} == \
        {g["PK"]["S"].rsplit("#", 1)[1]: g["_owner"]["S"] for g in guards}
