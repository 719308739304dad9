"""`migrate repair` and `reconcile --repair --yes` beside live dual-writes never overwrite
newer data, against MariaDB and DynamoDB Local.

Three threads dual-write random changes to a few users, their cart lines and orders, and
a few products (prices rewrite every cart holding them), under the `outbox` policy; some
of their changes meet DynamoDB down, so MySQL commits and the outbox keeps them. A fourth
thread runs the two repairs in turn, each on its own DynamoDB client and sync engine as
the commands do, until the writers are done. Then a last `migrate repair` catches up on
the outbox and reconcile, without repairing, finds no drift: whatever a repair wrote while
the writers went on, the last committed state of every row is what DynamoDB holds.

Overlap is staged, not hoped for. The writers' first change always fails, and the repair
thread starts once all three have failed: the first reconcile finds their drift (each
writer moved a user to a new address, so the old address's items are extra), and the
first `migrate repair` finds their outbox rows. The first two repairs of outbox rows in
each `migrate repair`, and every reconcile once it has read MySQL's users, wait (holding
no lock) until a dual-write that started after that point has succeeded; the test
asserts such writes landed inside them.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import botocore.exceptions
import pytest
import sqlalchemy as sa

from migration.dynamodb.client import DynamoDB
from migration.shop.dual_write import Shop
from migration.shop.repositories import ShopError
from migration.sync.engine import Policy, SyncEngine
from migration.sync.outbox import OutboxEntry
from reconcile.result import ReconcileResult
from reconcile.run import ReconcileOptions, reconcile

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

WRITERS = 3
OPS = 40  # per writer
FAIL_EVERY = 6  # every sixth change of a writer meets DynamoDB down (its first included)


class Landings:
    """Successful dual-writes, and the windows a repair marked: a window waits until a
    write that started after its mark has succeeded (or no writer is left)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writes: list[tuple[float, float]] = []
        self.since: float | None = None
        self.landed = threading.Event()
        self.writers: list[threading.Thread] = []

    def wrote(self, started: float, finished: float) -> None:
        with self.lock:
            self.writes.append((started, finished))
            if self.since is not None and started > self.since:
                self.landed.set()

    def mark(self) -> float:
        with self.lock:
            self.since = time.monotonic()
            self.landed.clear()
            mark = self.since
        # Woken by the next write; the liveness check ends the wait only once every
        # writer is done (nothing here is timed).
        while not self.landed.wait(0.05) and any(t.is_alive() for t in self.writers):
            pass
        return mark

    def inside(self, mark: float, end: float) -> int:
        with self.lock:
            return sum(mark < started and finished < end for started, finished in self.writes)


class Rows:
    """The few rows the writers share."""

    def __init__(self, shop: Shop):
        with shop.engine.connect() as conn:
            self.users = list(conn.execute(sa.text(
                "SELECT DISTINCT u.id FROM users u JOIN orders o ON o.user_id = u.id "
                "JOIN shopping_carts c ON c.user_id = u.id ORDER BY u.id LIMIT 4")).scalars())
            self.products = [tuple(r) for r in conn.execute(sa.text(
                "SELECT id, seller_id FROM products ORDER BY id LIMIT 3"))]
            self.orders = list(conn.execute(sa.text(
                "SELECT id FROM orders WHERE user_id IN :users ORDER BY id").bindparams(
                    sa.bindparam("users", expanding=True)), {"users": self.users}).scalars())
        assert len(self.users) == 4 and len(self.products) == 3 and self.orders


def write(shop: Shop, rows: Rows, rng: random.Random, tag: str, user: int) -> None:
    product, seller = rng.choice(rows.products)
    name = rng.choice(["first_name", "email", "add", "add", "quantity", "remove", "status",
                       "price"])
    if name == "first_name":
        shop.users.update(user, {"first_name": f"n{tag}"})
    elif name == "email":
        shop.users.update(user, {"email": f"w{tag}@example.org"})  # never used twice
    elif name == "add":
        shop.cart.add_item(user, product, rng.randrange(1, 4))
    elif name == "quantity":
        shop.cart.update_item_quantity(user, product, rng.randrange(1, 9))
    elif name == "remove":
        shop.cart.remove_item(user, product)
    elif name == "status":
        shop.orders.update_order_status(rng.choice(rows.orders),
                                        rng.choice(["pending", "completed", "cancelled"]))
    else:
        shop.products.update_product(product, seller,
                                     {"price": Decimal(rng.randrange(100, 9999)) / 100})


def test_repairs_beside_dual_writes_never_overwrite_newer_data(shop: Shop) -> None:
    for entity in ("User", "Order", "CartItem", "Product"):
        shop.policies[entity] = Policy.OUTBOX
    shop.ddb.max_attempts = 2
    shop.ddb.base_delay = 0.001
    rows = Rows(shop)
    landings = Landings()
    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    down = threading.local()

    def dynamodb_down(operation: str, params: dict[str, Any]) -> None:
        if getattr(down, "on", False) and operation in ("PutItem", "DeleteItem",
                                                        "TransactWriteItems"):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://down.invalid")

    shop.ddb.before.append(dynamodb_down)  # the writers' client only
    first_failed = threading.Barrier(WRITERS + 1)

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for n in range(OPS):
                tag = f"{seed}-{n}"
                down.on = n % FAIL_EVERY == 0
                started = time.monotonic()
                try:
                    if n == 0:  # moves the user: its old address's items stay behind
                        shop.users.update(rows.users[seed], {"email": f"w{tag}@example.org"})
                    else:
                        write(shop, rows, rng, tag, rng.choice(rows.users))
                    outcomes["ok"] += 1
                    landings.wrote(started, time.monotonic())
                except ShopError as err:
                    outcomes[type(err).__name__] += 1
                finally:
                    down.on = False
                if n == 0:
                    first_failed.wait(timeout=60)
        except BaseException as err:  # noqa: BLE001 - collected and failed on below
            errors.append(err)

    # The repairs, each on a client and an engine of their own (as the commands make them).
    repair_ddb = DynamoDB(shop.settings)
    repair_sync = SyncEngine(shop.contract, shop.engine, repair_ddb)
    repaired_entries: list[tuple[float, float]] = []  # (mark, end) of each outbox row repaired
    plain_repair_entry = repair_sync.repair_entry

    def repair_entry(entry: OutboxEntry) -> int:
        if len(repaired_entries) >= 2 * len(repairs) + 2:  # the first two of each pass wait
            return plain_repair_entry(entry)
        mark = landings.mark()  # a dual-write lands between picking the row and repairing it
        try:
            return plain_repair_entry(entry)
        finally:
            repaired_entries.append((mark, time.monotonic()))

    repair_sync.repair_entry = repair_entry  # type: ignore[method-assign]
    repairs: list[tuple[int, int]] = []
    repair_errors: list[tuple[OutboxEntry, BaseException]] = []
    reconciles: list[tuple[ReconcileResult, float, float]] = []

    def reconcile_beside_writes() -> None:
        marks: list[float] = []

        def progress(event: str, _detail: dict[str, Any]) -> None:
            if event == "mysql" and not marks:
                marks.append(landings.mark())

        result = reconcile(shop.contract, shop.engine, repair_ddb, ReconcileOptions(
            repair=True, yes=True, settle_seconds=0.2, progress=progress))
        reconciles.append((result, marks[0], time.monotonic()))

    def repairer() -> None:
        try:
            first_failed.wait(timeout=60)
            while any(t.is_alive() for t in landings.writers):
                reconcile_beside_writes()
                repairs.append(repair_sync.repair(older_than=0, on_error=lambda entry, err:
                                                  repair_errors.append((entry, err))))
        except BaseException as err:  # noqa: BLE001 - collected and failed on below
            errors.append(err)

    landings.writers += [threading.Thread(target=writer, args=(seed,))
                         for seed in range(WRITERS)]
    threads = [*landings.writers, threading.Thread(target=repairer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shop.ddb.before.clear()
    print(f"\n{dict(outcomes)}; writers: {shop.sync.stats}; repairs: {repairs}; reconcile "
          f"repaired {[r.repair.repaired_keys for r, _, _ in reconciles if r.repair]} keys")
    assert not errors, errors[:3]
    assert outcomes["ok"] >= WRITERS * OPS // 2
    assert shop.sync.stats.dynamodb_failures >= WRITERS, "some changes met DynamoDB down"

    # Both repairs did work, and dual-writes landed while they did it.
    assert repairs and sum(done for done, _ in repairs) >= WRITERS
    assert all(failed == 0 for _, failed in repairs), repair_errors
    assert reconciles[0][0].repair is not None
    assert reconciles[0][0].repair.repaired_keys >= WRITERS, reconciles[0][0].to_json()
    for result, _, _ in reconciles:
        assert result.repair is not None and not result.repair.failures, result.repair
    assert any(landings.inside(mark, end) for mark, end in repaired_entries), repaired_entries
    assert any(landings.inside(mark, end) for _, mark, end in reconciles)

    # The writers are done: the last `migrate repair` catches up on the outbox, and then
    # DynamoDB holds the last committed state of every row. A repair that had written an
    # older state over a newer one would show here: that newer write's outbox row is gone.
    final = SyncEngine(shop.contract, shop.engine, DynamoDB(shop.settings))
    assert final.repair(older_than=0)[1] == 0
    final.outbox.close()
    repair_sync.outbox.close()
    assert shop.sync.outbox.count() == 0
    check = reconcile(shop.contract, shop.engine, DynamoDB(shop.settings))
    assert not check.has_drift, {e.entity: e.to_json() for e in check.entities if e.drift}
    assert check.totals["cleared_in_flight"] == 0
    assert_last_values_in_dynamodb(shop, rows)


def assert_last_values_in_dynamodb(shop: Shop, rows: Rows) -> None:
    """The users' names and addresses and their cart lines, as MySQL has them last, are what
    DynamoDB answers (through the shop's own DynamoDB reads)."""
    for user in rows.users:
        with shop.engine.connect() as conn:
            email, first_name = conn.execute(sa.text(
                "SELECT email, first_name FROM users WHERE id = :u"), {"u": user}).one()
            lines: dict[int, int] = dict(conn.execute(sa.text(
                "SELECT product_id, quantity FROM shopping_carts WHERE user_id = :u"),
                {"u": user}).all())
        item = shop.dynamodb.users.get_by_email(email)
        assert item is not None and item.id == user and item.first_name == first_name
        in_dynamodb = {line.product_id: line.quantity
                       for line in shop.dynamodb.cart.list_items(user)}
        assert in_dynamodb == lines, user

