"""8 threads, 2,000 random operations each, across every write of the shop, with many
collisions on the same users, products and carts; afterwards a full comparison of
every item the contract defines finds zero differences and no username is held twice.

Runs against MariaDB and DynamoDB Local (never moto: it is not concurrency-safe).
`MIGRATE_STRESS_OPS` changes the operations per thread (default 2000).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from migration.shop.dual_write import Shop
from migration.shop.repositories import ShopError
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


def run_thread(shop: Shop, pools: Pools, seed: int, errors: list[BaseException],
               outcomes: Counter[str]) -> None:
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
        except ShopError as err:
            outcomes[type(err).__name__] += 1
        except BaseException as err:  # noqa: BLE001 - collected and failed on below
            errors.append(err)
            outcomes["unexpected"] += 1


def test_random_operations_from_eight_threads_leave_no_difference(shop: Shop) -> None:
    pools = Pools(shop)
    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    threads = [threading.Thread(target=run_thread, args=(shop, pools, seed, errors, outcomes))
               for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    print(f"\n{THREADS * OPS} operations in {elapsed:.1f}s "
          f"({THREADS * OPS / elapsed:.0f}/s): {dict(outcomes)}; engine: {shop.sync.stats}")
    assert not errors, f"{len(errors)} unexpected errors, first: {errors[0]!r}"
    assert outcomes["ok"] > THREADS * OPS // 3, "too few operations succeeded to prove much"
    assert shop.sync.outbox.count() == 0, "every dual-write cleared its outbox row"
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
