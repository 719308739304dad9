"""Dual-write latency per shop operation: `mysql_only` against `dual_write`, next to one
raw DynamoDB PutItem, all measured in one run against the same local services.

    .venv/bin/python bench/dual_write.py [--repeat 200] [--users 200]

Uses MIGRATE_MYSQL_URL's server (or a throwaway MariaDB) and DynamoDB Local
(started unless MIGRATE_DYNAMODB_ENDPOINT answers); creates and drops its own
database and table prefix.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from migration.contract import load_contract  # noqa: E402
from migration.dynamodb.client import DynamoDB  # noqa: E402
from migration.dynamodb.ids import IdAllocator  # noqa: E402
from migration.dynamodb.schema import apply  # noqa: E402
from migration.local.services import local_services  # noqa: E402
from migration.settings import Settings  # noqa: E402
from migration.shop import schema  # noqa: E402
from migration.shop.dual_write import SHOP_ENTITIES, Shop, shop_contract_path  # noqa: E402
from migration.shop.repositories import NotFound  # noqa: E402
from migration.shop.seed import seed  # noqa: E402
from migration.source.mysql import create_engine  # noqa: E402
from migration.source.records import RecordReader  # noqa: E402

Step = Callable[[], Any]


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def next(self) -> int:
        self.n += 1
        return self.n


def operations(shop: Shop, ids: dict[str, Any], counter: Counter) -> dict[str, tuple[Step, Step]]:
    """Each operation as (untimed preparation, timed call); both repeatable."""
    users, products, orders, categories, cart = (shop.users, shop.products, shop.orders,
                                                 shop.categories, shop.cart)
    state: dict[str, Any] = {}

    def fresh_user() -> None:
        n = counter.next()
        state["user"] = users.create({"username": f"bench{n}", "email": f"bench{n}@example.org",
                                      "password_hash": "h"})

    def fresh_product() -> None:
        state["product"] = products.create_product(ids["seller"], {
            "category_id": ids["category"], "name": f"Bench {counter.next()}",
            "price": Decimal("9.99")})

    def fresh_category() -> None:
        state["category"] = categories.create({"name": f"bench cat {counter.next()}"})

    def fresh_line() -> None:
        cart.add_item(ids["buyer"], ids["product"], 1)

    def no_line() -> None:
        with contextlib.suppress(NotFound):  # the first time there is no line yet
            cart.remove_item(ids["buyer3"], ids["product"])

    def full_cart() -> None:
        for product in ids["cart_products"]:
            cart.add_item(ids["buyer2"], product, 1)

    def nothing() -> None:
        return None

    def toggle(key: str, a: Any, b: Any) -> Any:
        state[key] = b if state.get(key) == a else a
        return state[key]

    return {
        "users.create": (nothing, lambda: users.create({
            "username": f"new{counter.next()}", "email": f"new{counter.n}@example.org",
            "password_hash": "h"})),
        "users.update (email: moves 3 orders, 1 cart line)": (nothing, lambda: users.update(
            ids["mover"], {"email": toggle("email", "a@bench.example", "b@bench.example")})),
        "users.delete": (fresh_user, lambda: users.delete(state["user"])),
        "users.upgrade_to_seller": (fresh_user, lambda: users.upgrade_to_seller(state["user"])),
        "products.create_product": (nothing, lambda: products.create_product(ids["seller"], {
            "category_id": ids["category"], "name": f"P{counter.next()}",
            "price": Decimal("1.00")})),
        "products.update_product (price: rewrites carts)": (nothing, lambda: products.update_product(
            ids["product"], ids["seller"], {"price": toggle("price", Decimal("5.00"),
                                                            Decimal("6.00"))})),
        "products.delete_product": (fresh_product, lambda: products.delete_product(
            state["product"], ids["seller"])),
        "products.update_inventory": (nothing, lambda: products.update_inventory(
            ids["product"], toggle("inventory", 10, 11))),
        "orders.create_order": (nothing, lambda: orders.create_order(ids["user"], Decimal("1"))),
        "orders.create_order_item": (lambda: state.__setitem__(
            "order", orders.create_order(ids["user"], Decimal("1"))),
            lambda: orders.create_order_item(state["order"], ids["product"], 1, Decimal("1"))),
        "orders.update_order_status": (nothing, lambda: orders.update_order_status(
            ids["order"], toggle("status", "pending", "completed"))),
        "categories.create": (nothing, lambda: categories.create(
            {"name": f"c{counter.next()}", "parent_id": ids["category"]})),
        "categories.update (rename: moves children)": (nothing, lambda: categories.update(
            ids["parent"], {"name": toggle("cname", "bench parent A", "bench parent B")})),
        "categories.delete": (fresh_category, lambda: categories.delete(state["category"])),
        "cart.add_item": (nothing, lambda: cart.add_item(ids["buyer"], ids["product"], 1)),
        # A line that was not there: the engine looks for a row committed meanwhile
        # (one more query, on a second connection) where an existing line needs none.
        "cart.add_item (new line)": (no_line, lambda: cart.add_item(ids["buyer3"],
                                                                    ids["product"], 1)),
        # The preparing add_item raises the quantity by one: the new one must differ from
        # that (an even number after an odd one), or the call changes nothing.
        "cart.update_item_quantity": (fresh_line, lambda: cart.update_item_quantity(
            ids["buyer"], ids["product"], 10_000 + 2 * counter.next())),
        "cart.remove_item": (fresh_line, lambda: cart.remove_item(ids["buyer"], ids["product"])),
        "cart.clear_cart (3 lines)": (full_cart, lambda: cart.clear_cart(ids["buyer2"])),
    }


def prepare(shop: Shop) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    seller = shop.users.create({"username": "bench_seller", "email": "seller@bench.example",
                                "password_hash": "h"})
    shop.users.upgrade_to_seller(seller)
    with shop.engine.connect() as conn:
        category = conn.execute(sa.text("SELECT id FROM categories ORDER BY id LIMIT 1")).scalar()
    ids.update(seller=seller, category=category)
    ids["product"] = shop.products.create_product(seller, {
        "category_id": category, "name": "Bench product", "price": Decimal("5.00")})
    ids["cart_products"] = [shop.products.create_product(seller, {
        "category_id": category, "name": f"Bench cart {i}", "price": Decimal("1.00")})
        for i in range(3)]
    # The user whose email moves keeps exactly 3 orders and 1 cart line; the orders
    # benchmarks add theirs to another user.
    ids["mover"] = shop.users.create({"username": "bench_mover", "email": "a@bench.example",
                                      "password_hash": "h"})
    for _ in range(3):
        order = shop.orders.create_order(ids["mover"], Decimal("5.00"))
        shop.orders.create_order_item(order, ids["product"], 1, Decimal("5.00"))
    shop.cart.add_item(ids["mover"], ids["product"], 1)
    ids["user"] = shop.users.create({"username": "bench_user", "email": "user@bench.example",
                                     "password_hash": "h"})
    ids["order"] = shop.orders.create_order(ids["user"], Decimal("5.00"))
    ids["buyer"] = shop.users.create({"username": "bench_buyer", "email": "buyer@bench.example",
                                      "password_hash": "h"})
    ids["buyer2"] = shop.users.create({"username": "bench_buyer2",
                                       "email": "buyer2@bench.example", "password_hash": "h"})
    ids["buyer3"] = shop.users.create({"username": "bench_buyer3",
                                       "email": "buyer3@bench.example", "password_hash": "h"})
    for i in range(5):  # other carts holding the product: a price change rewrites them
        other = shop.users.create({"username": f"holder{i}", "email": f"holder{i}@bench.example",
                                   "password_hash": "h"})
        shop.cart.add_item(other, ids["product"], 1)
    ids["parent"] = shop.categories.create({"name": "bench parent A"})
    for i in range(3):
        shop.categories.create({"name": f"bench child {i}", "parent_id": ids["parent"]})
    return ids


def measure(step: tuple[Step, Step], repeat: int, ddb: DynamoDB) -> tuple[list[float], list[float]]:
    """Latency of each call, and the part of it spent inside DynamoDB requests."""
    prepare_step, call = step
    samples, in_dynamodb = [], []
    for _ in range(repeat):
        prepare_step()
        before = sum(ddb.seconds.values())
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
        in_dynamodb.append(sum(ddb.seconds.values()) - before)
    return samples, in_dynamodb


def fence_cost(step: tuple[Step, Step], repeat: int, shop: Shop) -> tuple[float, float]:
    """Median latency of a dual-written call with the flag fence and without it, the two
    alternating call by call (in ms)."""
    prepare_step, call = step
    fence, enabled = shop.sync.fence, shop.sync.enabled

    def unfenced_enabled() -> set[str]:  # every entity dual-written, as in this bench
        return set(shop.sync.readers)

    with_fence: list[float] = []
    without: list[float] = []
    try:
        for i in range(2 * repeat + 6):
            on = i % 2 == 0
            shop.sync.fence, shop.sync.enabled = (fence, enabled) if on else (None, unfenced_enabled)
            prepare_step()
            started = time.perf_counter()
            call()
            if i >= 6:  # the first three pairs warm up
                (with_fence if on else without).append(time.perf_counter() - started)
    finally:
        shop.sync.fence, shop.sync.enabled = fence, enabled
    return statistics.median(with_fence) * 1000, statistics.median(without) * 1000


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


@contextlib.contextmanager
def bench_settings(name: str) -> Iterator[Settings]:
    """Settings for a database and table prefix of the bench's own, on the local
    services (started when none answer); the database is dropped afterwards."""
    with local_services(Settings().model_copy(update={"table_prefix": f"{name}_"})) as live:
        url = schema.create_database(live.sqlalchemy_url(), name)
        try:
            yield live.model_copy(update={"mysql_url": SecretStr(
                url.render_as_string(hide_password=False))})
        finally:
            schema.drop_database(live.sqlalchemy_url(), name)


def dual_writing_shop(settings: Settings, users: int) -> Shop:
    """The seeded shop, every entity dual-writing, DynamoDB holding every item."""
    schema.upgrade(settings)
    engine = create_engine(settings)
    seed(engine, users)
    engine.dispose()
    contract = load_contract(shop_contract_path(settings))
    ddb = DynamoDB(settings)
    apply(contract, ddb)
    shop = Shop(settings, contract=contract, ddb=ddb)
    for flag in SHOP_ENTITIES:
        shop.flags.set_phase(flag, "dual_write")
    with shop.engine.connect() as conn:
        for entity in contract.source_entities():
            reader = RecordReader(contract, entity)
            for chunk in reader.stream(conn, chunk_size=500):
                shop.sync.sync_roots({entity.name: [reader.root_of(r) for r in chunk]})
    return shop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args(argv)
    with bench_settings(f"bench_dw_{uuid.uuid4().hex[:8]}") as settings:
        return run(settings, args.repeat, args.users)


def run(settings: Settings, repeat: int, users: int) -> int:
    shop = dual_writing_shop(settings, users)
    ddb = shop.ddb
    ids = prepare(shop)
    counter = Counter()
    ops = operations(shop, ids, counter)

    table = ddb.table_name("Products")
    raw = []
    for i in range(repeat):
        item = {"PK": {"S": f"raw#{i}"}, "SK": {"S": "#META"}, "name": {"S": "raw put"}}
        started = time.perf_counter()
        ddb.call("PutItem", TableName=table, Item=item)
        raw.append(time.perf_counter() - started)
    raw_transaction = []
    for i in range(repeat):
        actions = [{"Put": {"TableName": table, "Item": {
            "PK": {"S": f"rawtx#{i}#{j}"}, "SK": {"S": "#META"}, "name": {"S": "raw put"}}}}
            for j in range(10)]
        started = time.perf_counter()
        ddb.call("TransactWriteItems", TransactItems=actions)
        raw_transaction.append(time.perf_counter() - started)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    dynamodb_part: dict[str, float] = {}
    for phase in ("mysql_only", "dual_write"):
        for flag in SHOP_ENTITIES:
            shop.flags.set_phase(flag, phase)
        for op, step in ops.items():
            measure(step, 3, ddb)  # warm up
            samples, in_dynamodb = measure(step, repeat, ddb)
            results.setdefault(op, {})[phase] = stats(samples)
            if phase == "dual_write":
                dynamodb_part[op] = statistics.median(in_dynamodb) * 1000
                idle = sum(1 for seconds in in_dynamodb if seconds == 0)
                if idle:  # a call that changes nothing would flatter the figures
                    raise SystemExit(f"{op}: {idle} of {repeat} timed calls sent nothing to "
                                     "DynamoDB; the benchmark must change something each time")
    # The fence (each write transaction re-reads its phases, share-locked): each call made
    # with and without it in turn, so both halves see the same noise.
    unfenced: dict[str, float] = {}
    fenced: dict[str, float] = {}
    for op, step in ops.items():
        fenced[op], unfenced[op] = fence_cost(step, repeat, shop)
    put_median, put_p99 = stats(raw)
    tx_median, tx_p99 = stats(raw_transaction)
    print(f"repeat={repeat}; raw DynamoDB PutItem: median {put_median:.2f} ms, p99 {put_p99:.2f} ms;"
          f" raw TransactWriteItems of 10 puts: median {tx_median:.2f} ms, p99 {tx_p99:.2f} ms")
    print("times in ms; 'in DynamoDB' is the median time inside DynamoDB requests during the "
          "dual-write; 'rest' = added - in DynamoDB")
    print(f"{'operation':<50} {'mysql_only med/p99':>19} {'dual_write med/p99':>19} "
          f"{'added':>7} {'in DynamoDB':>11} {'rest':>6} {'added/PutItem':>13} {'fence':>6}")
    for op, phases in results.items():
        m_med, m_p99 = phases["mysql_only"]
        d_med, d_p99 = phases["dual_write"]
        added = d_med - m_med
        print(f"{op:<50} {m_med:>8.2f} /{m_p99:>8.2f} {d_med:>8.2f} /{d_p99:>8.2f} "
              f"{added:>7.2f} {dynamodb_part[op]:>11.2f} {added - dynamodb_part[op]:>6.2f} "
              f"{added / put_median:>13.2f} {fenced[op] - unfenced[op]:>6.2f}")
    print("'fence' = median with the fence minus median without it, the two alternating call "
          "by call")
    print_allocation(shop, repeat)
    print_dynamodb_only(shop, ops, repeat, {op: phases["dual_write"][0]
                                            for op, phases in results.items()})
    shop.close()
    return 0


def print_dynamodb_only(shop: Shop, ops: dict[str, tuple[Step, Step]], repeat: int,
                        dual_write: dict[str, float]) -> None:
    """The same operations once the shop is `dynamodb_only` (DynamoDB alone, through
    transactions; see `migration.shop.dynamodb_only`), next to their dual-write medians."""
    # The mysql_only rounds above left DynamoDB behind MySQL: bring it up to date first,
    # as a migration does (reconcile clean) before its last step.
    for flag in SHOP_ENTITIES:
        shop.flags.set_phase(flag, "dual_write")
    with shop.engine.connect() as conn:
        for entity in shop.contract.source_entities():
            reader = RecordReader(shop.contract, entity)
            for chunk in reader.stream(conn, chunk_size=500):
                shop.sync.sync_roots({entity.name: [reader.root_of(r) for r in chunk]})
    links = shop.enter_dynamodb_only()
    print(f"dynamodb_only (entered: {links} holder links written); times in ms")
    print(f"{'operation':<50} {'dynamodb_only med/p99':>22} {'dual_write med':>15} "
          f"{'calls incl. prep':>17}")
    for op, step in ops.items():
        measure(step, 3, shop.ddb)
        calls = sum(shop.ddb.calls.values())
        samples, _ = measure(step, repeat, shop.ddb)
        per_call = (sum(shop.ddb.calls.values()) - calls) / repeat
        median, p99 = stats(samples)
        print(f"{op:<50} {median:>10.2f} /{p99:>10.2f} {dual_write[op]:>15.2f} {per_call:>17.1f}")


def print_allocation(shop: Shop, repeat: int) -> None:
    """The cost of an id in `dynamodb_only` (see `migration.dynamodb.ids`): one counter
    update per block, so per id it falls with the block size."""
    count = max(repeat * 5, 500)
    for block in (1, 100):
        allocator = IdAllocator(shop.ddb, "orders", engine=shop.engine, block=block)
        allocator.next()  # the first call reads MySQL and raises the counter: not timed
        started = time.perf_counter()
        for _ in range(count):
            allocator.next()
        per_id = (time.perf_counter() - started) / count * 1e6
        print(f"dynamodb_only id allocation, block {block:>3}: {per_id:8.1f} us per id "
              f"({allocator.counter_updates} counter updates for {count + 1} ids)")


if __name__ == "__main__":
    sys.exit(main())
