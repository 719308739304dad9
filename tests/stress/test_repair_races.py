"""A repair never deletes what a writer committed after the repair looked.

A row a repair finds absent holds no lock (READ COMMITTED takes no gap locks): a
writer may insert it, write its item and commit while the repair goes on. These
tests stage that interleaving at the point where it hurt (the repair has read
MySQL and is about to take its version) against MariaDB and DynamoDB Local: the
repair's delete must leave the new item alone, and both stores must agree.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions
import pytest
import sqlalchemy as sa

from migration.sync.compare import compare_all
from migration.sync.engine import Policy
from migration.sync.outbox import Outbox
from reconcile.run import ReconcileOptions, reconcile
from wrappers.shop import Shop

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def cart_item(shop: Shop, email: str, product_id: int) -> dict[str, Any] | None:
    answer = shop.ddb.call("GetItem", TableName=shop.ddb.table_name("Users"),
                           Key={"PK": {"S": email}, "SK": {"S": f"CART#{product_id}"}},
                           ConsistentRead=True)
    item: dict[str, Any] | None = answer.get("Item")
    return item


@pytest.fixture
def line(shop: Shop) -> Iterator[tuple[int, int, str]]:
    """A cart line that exists in both stores: (user, product, the user's email)."""
    with shop.engine.connect() as conn:
        user_id, product_id, email = conn.execute(sa.text(
            "SELECT c.user_id, c.product_id, u.email FROM shopping_carts c "
            "JOIN users u ON u.id = c.user_id ORDER BY c.user_id, c.product_id LIMIT 1")).one()
    assert cart_item(shop, email, product_id) is not None
    yield user_id, product_id, email


class PausedRecord:
    """Pauses the first `Outbox.record` of one kind (a repair about to take its version,
    after it has read MySQL) until the test lets it go."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, kind: str):
        self.kind = kind
        self.reached = threading.Event()
        self.go = threading.Event()
        original = Outbox.record

        def record(outbox: Outbox, kind: str, *args: Any, **kwargs: Any) -> int:
            if kind == self.kind and not self.reached.is_set():
                self.reached.set()
                assert self.go.wait(30)
            return original(outbox, kind, *args, **kwargs)

        monkeypatch.setattr(Outbox, "record", record)


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[BaseException], list[Any]]:
    errors: list[BaseException] = []
    results: list[Any] = []

    def target() -> None:
        try:
            results.append(call())
        except BaseException as err:  # noqa: BLE001 - the test fails on it
            errors.append(err)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, errors, results


def assert_agree(shop: Shop) -> None:
    result = compare_all(shop.contract, shop.engine, shop.ddb)
    assert result.clean, (result.summary(), result.extra[:3], result.missing[:3])


def test_repair_of_a_removal_keeps_the_line_added_again_meanwhile(
        shop: Shop, line: tuple[int, int, str], monkeypatch: pytest.MonkeyPatch) -> None:
    user_id, product_id, email = line
    # remove_item under the outbox policy while DynamoDB fails: MySQL commits, the item
    # stays in DynamoDB, the outbox row stays for repair.
    shop.policies["CartItem"] = Policy.OUTBOX
    shop.ddb.max_attempts = 1

    def down(operation: str, params: dict[str, Any]) -> None:
        if operation in ("DeleteItem", "TransactWriteItems"):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://down")

    shop.ddb.before.append(down)
    shop.cart.remove_item(user_id, product_id)  # outbox: MySQL commits
    shop.ddb.before.clear()
    shop.ddb.max_attempts = 8
    assert shop.sync.outbox.count() == 1
    assert cart_item(shop, email, product_id) is not None

    # The repair finds the line absent; before it takes its version, the line is added
    # again and its item written and committed.
    paused = PausedRecord(monkeypatch, "repair")
    thread, errors, results = in_thread(lambda: shop.repair())
    assert paused.reached.wait(30)
    shop.cart.add_item(user_id, product_id, 3)
    added = cart_item(shop, email, product_id)
    assert added is not None and added["quantity"] == {"N": "3"}
    paused.go.set()
    thread.join(30)
    assert not errors and results == [(1, 0)]

    assert cart_item(shop, email, product_id) == added, "the repair deleted the new line's item"
    assert shop.sync.outbox.count() == 0
    assert_agree(shop)


def test_reconcile_repair_keeps_an_item_rewritten_after_it_looked(
        shop: Shop, line: tuple[int, int, str], monkeypatch: pytest.MonkeyPatch) -> None:
    user_id, product_id, email = line
    # An extra item: the line is gone from MySQL (behind dual-write's back) and its item,
    # written by no row (no owner, no version), is still in DynamoDB.
    with shop.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM shopping_carts WHERE user_id = :u AND product_id = :p"),
                     {"u": user_id, "p": product_id})
    table = shop.ddb.table_name("Users")
    orphan = {k: v for k, v in (cart_item(shop, email, product_id) or {}).items()
              if k not in ("_owner", "_version")}
    shop.ddb.call("PutItem", TableName=table, Item=orphan)

    # Reconcile finds it extra; before its repair takes a version, the line is added
    # again through dual-write, which writes the item at that key.
    paused = PausedRecord(monkeypatch, "reconcile")
    thread, errors, results = in_thread(lambda: reconcile(
        shop.contract, shop.engine, shop.ddb,
        ReconcileOptions(entities=["CartItem"], repair=True, yes=True, settle_seconds=0)))
    assert paused.reached.wait(60)
    shop.cart.add_item(user_id, product_id, 4)
    added = cart_item(shop, email, product_id)
    assert added is not None and "_owner" in added
    paused.go.set()
    thread.join(60)
    assert not errors, errors
    assert results[0].entity("CartItem").extra_in_dynamodb == 1

    assert cart_item(shop, email, product_id) == added, "the repair deleted the new line's item"
    assert_agree(shop)
