"""Faults injected at the single DynamoDB choke point, against MariaDB and DynamoDB Local.

After each fault both stores agree: at once under the `rollback` policy, or once
`repair` has run under `outbox` (and after a crash, whatever the policy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import botocore.exceptions
import pytest
import sqlalchemy as sa

from migration.errors import DynamoDBUnavailable, Throttled
from migration.shop.dual_write import Shop
from migration.sync.compare import compare_all
from migration.sync.engine import CommitFailed, DualWriteFailed, Policy

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


class Crash(BaseException):
    """The process dies: nothing after this point of the dual-write runs."""


def client_error(code: str, operation: str, status: int = 400, **extra: Any) -> Exception:
    response = {"Error": {"Code": code, "Message": f"injected {code}"},
                "ResponseMetadata": {"HTTPStatusCode": status}, **extra}
    return botocore.exceptions.ClientError(response, operation)  # type: ignore[arg-type]


@pytest.fixture
def fast(shop: Shop) -> Iterator[Shop]:
    shop.ddb.max_attempts = 3
    shop.ddb.base_delay = 0.001
    yield shop
    shop.ddb.before.clear()
    shop.ddb.after.clear()


def writes(operation: str) -> bool:
    return operation in ("PutItem", "DeleteItem", "TransactWriteItems", "UpdateItem")


def fail_writes(shop: Shop, make: Callable[[str], Exception], times: int | None = None) -> list[str]:
    seen: list[str] = []

    def hook(operation: str, params: dict[str, Any]) -> None:
        if writes(operation) and (times is None or len(seen) < times):
            seen.append(operation)
            raise make(operation)

    shop.ddb.before.append(hook)
    return seen


def email_of(shop: Shop, user_id: int) -> str:
    with shop.engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT email FROM users WHERE id = :u"),
                                {"u": user_id}).scalar_one())


def a_user(shop: Shop) -> int:
    with shop.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT u.id FROM users u JOIN orders o ON o.user_id = u.id "
            "JOIN shopping_carts c ON c.user_id = u.id ORDER BY u.id LIMIT 1")).scalar_one())


def assert_agree(shop: Shop) -> None:
    result = compare_all(shop.contract, shop.engine, shop.ddb)
    assert result.clean, result.summary()


@pytest.mark.parametrize("fault", ["unreachable", "throttled", "server_error"])
def test_rollback_policy_keeps_both_stores_as_they_were(fast: Shop, fault: str) -> None:
    shop = fast
    user = a_user(shop)
    old_email = email_of(shop, user)
    make = {
        "unreachable": lambda op: botocore.exceptions.EndpointConnectionError(
            endpoint_url="http://dynamodb.invalid"),
        "throttled": lambda op: client_error("ThrottlingException", op),
        "server_error": lambda op: client_error("InternalServerError", op, 500),
    }[fault]
    seen = fail_writes(shop, make)
    with pytest.raises(DualWriteFailed) as caught:
        shop.users.update(user, {"email": "moved@example.org"})
    assert isinstance(caught.value.__cause__, DynamoDBUnavailable | Throttled)
    assert len(seen) >= shop.ddb.max_attempts, "transient faults are retried first"
    # Right after the failure, DynamoDB still down, before any repair: MySQL rolled back
    # and no request reached DynamoDB, so the two stores already agree. The immediate
    # re-sync failed too (DynamoDB is down), so the outbox keeps the change for repair.
    assert email_of(shop, user) == old_email
    assert_agree(shop)
    assert not caught.value.repaired
    pending = shop.sync.outbox.pending()
    assert [e.operation for e in pending] == ["users.update"]
    # Then DynamoDB is back and repair runs: it re-syncs what MySQL has, nothing more.
    shop.ddb.before.clear()
    assert shop.repair() == (1, 0)
    assert_agree(shop)
    assert shop.sync.outbox.count() == 0
    assert email_of(shop, user) == old_email


def test_a_transient_fault_is_retried_and_the_write_lands(fast: Shop) -> None:
    shop = fast
    user = a_user(shop)
    seen = fail_writes(shop, lambda op: client_error("ProvisionedThroughputExceededException", op),
                       times=2)
    shop.users.update(user, {"email": "retried@example.org"})
    assert len(seen) == 2
    assert_agree(shop)
    assert shop.sync.outbox.count() == 0


def test_outbox_policy_commits_mysql_and_repair_catches_up(fast: Shop) -> None:
    shop = fast
    shop.policies["User"] = shop.policies["Order"] = shop.policies["CartItem"] = Policy.OUTBOX
    user = a_user(shop)
    fail_writes(shop, lambda op: botocore.exceptions.EndpointConnectionError(
        endpoint_url="http://dynamodb.invalid"))
    shop.users.update(user, {"email": "outboxed@example.org"})
    assert email_of(shop, user) == "outboxed@example.org"
    shop.ddb.before.clear()
    assert not compare_all(shop.contract, shop.engine, shop.ddb).clean
    entries = shop.sync.outbox.pending()
    assert len(entries) == 1 and entries[0].operation == "users.update"
    assert entries[0].attempts == 1 and "DynamoDBUnavailable" in (entries[0].last_error or "")
    assert shop.repair() == (1, 0)
    assert_agree(shop)
    assert shop.repair() == (0, 0), "repair is idempotent: nothing left to do"


@pytest.mark.parametrize("persistent", [False, True])
def test_a_cancelled_transaction_rolls_back(fast: Shop, persistent: bool) -> None:
    shop = fast
    user = a_user(shop)
    old_email = email_of(shop, user)

    cancelled: list[int] = []

    def cancel(operation: str, params: dict[str, Any]) -> None:
        if operation == "TransactWriteItems" and (persistent or not cancelled):
            cancelled.append(1)
            reasons = [{"Code": "ValidationError", "Message": "injected"}] + \
                [{"Code": "None"}] * (len(params.get("_json", params)["TransactItems"]) - 1)
            raise client_error("TransactionCanceledException", operation,
                               CancellationReasons=reasons)

    shop.ddb.before.append(cancel)
    with pytest.raises(DualWriteFailed, match="TransactionCanceledException"):
        shop.users.update(user, {"email": "cancelled@example.org"})
    assert email_of(shop, user) == old_email
    if persistent:
        assert shop.sync.outbox.count() == 1, "the failed re-sync leaves one row for repair"
        shop.ddb.before.clear()
        assert shop.repair() == (1, 0)
    assert_agree(shop)
    assert shop.sync.outbox.count() == 0


def test_a_crash_between_the_two_writes_is_repaired(fast: Shop) -> None:
    """DynamoDB took the change, then the process died before MySQL committed: MySQL
    rolls back (the connection is gone); the outbox row survives; repair puts DynamoDB
    back to what MySQL committed."""
    shop = fast
    user = a_user(shop)
    old_email = email_of(shop, user)
    dead = {"yes": False}

    def crash_after(operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        if writes(operation) and not dead["yes"]:
            dead["yes"] = True
            raise Crash()

    def nothing_runs_after_a_crash(operation: str, params: dict[str, Any]) -> None:
        if dead["yes"]:
            raise Crash()

    shop.ddb.after.append(crash_after)
    shop.ddb.before.append(nothing_runs_after_a_crash)
    with pytest.raises(Crash):
        shop.users.update(user, {"email": "crashed@example.org"})
    shop.ddb.before.clear()
    shop.ddb.after.clear()
    assert email_of(shop, user) == old_email
    assert not compare_all(shop.contract, shop.engine, shop.ddb).clean, \
        "DynamoDB holds the rolled-back change until repair"
    assert shop.sync.outbox.count() == 1
    assert shop.repair() == (1, 0)
    assert_agree(shop)


@pytest.mark.parametrize("dynamodb_after", ["up", "down"])
def test_mysql_commit_failing_after_dynamodb_took_the_write(fast: Shop, dynamodb_after: str) -> None:
    shop = fast
    user = a_user(shop)
    old_email = email_of(shop, user)
    database = shop.engine.url.database
    killed = {"yes": False}

    def kill_mysql_connections(operation: str, params: dict[str, Any],
                               response: dict[str, Any]) -> None:
        if not writes(operation) or killed["yes"]:
            return
        killed["yes"] = True
        admin = sa.create_engine(shop.engine.url.set(database="mysql"))
        with admin.connect() as conn:
            ids = conn.execute(sa.text(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = :db "
                "AND ID <> CONNECTION_ID()"), {"db": database}).scalars().all()
            for connection_id in ids:
                conn.execute(sa.text(f"KILL CONNECTION {int(connection_id)}"))
        admin.dispose()
        if dynamodb_after == "down":
            shop.ddb.before.append(lambda op, p: (_ for _ in ()).throw(
                botocore.exceptions.EndpointConnectionError(endpoint_url="http://x.invalid")))

    shop.ddb.after.append(kill_mysql_connections)
    with pytest.raises(CommitFailed):
        shop.users.update(user, {"email": "lost-commit@example.org"})
    shop.ddb.after.clear()
    assert email_of(shop, user) == old_email
    if dynamodb_after == "up":
        assert_agree(shop)
        assert shop.sync.outbox.count() == 0
    else:
        shop.ddb.before.clear()
        assert shop.sync.outbox.count() == 1
        shop.repair()
        assert_agree(shop)


def test_repair_of_an_order_item_append(fast: Shop) -> None:
    """A multi-item change under the outbox policy: every affected item is re-synced."""
    shop = fast
    shop.policies["Order"] = Policy.OUTBOX
    with shop.engine.connect() as conn:
        order, product = conn.execute(sa.text(
            "SELECT o.id, (SELECT MIN(id) FROM products) FROM orders o LIMIT 1")).one()
    fail_writes(shop, lambda op: client_error("ThrottlingException", op))
    shop.orders.create_order_item(order, product, 2, Decimal("1.99"))
    shop.ddb.before.clear()
    assert shop.repair() == (1, 0)
    assert_agree(shop)


def user_with_many_orders(shop: Shop, orders: int) -> int:
    user = shop.users.create({"username": "busy", "email": "busy@example.org",
                              "password_hash": "h"})
    with shop.engine.begin() as conn:
        for _ in range(orders):
            conn.execute(sa.text("INSERT INTO orders (user_id, total_amount) VALUES (:u, 1)"),
                         {"u": user})
    shop.sync.sync_roots({"Order": [(r,) for r in _order_ids(shop, user)]})
    return user


def _order_ids(shop: Shop, user: int) -> list[int]:
    with shop.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT id FROM orders WHERE user_id = :u"),
                                           {"u": user})]


def test_a_change_of_more_than_100_items_is_chunked(fast: Shop) -> None:
    shop = fast
    user = user_with_many_orders(shop, 70)
    transactions: list[int] = []
    shop.ddb.before.append(lambda op, p: transactions.append(
        len(p.get("_json", p)["TransactItems"])) if op == "TransactWriteItems" else None)
    shop.users.update(user, {"email": "busy@new.example"})
    assert len(transactions) == 2 and max(transactions) <= 100 and sum(transactions) == 142
    assert_agree(shop)


def test_a_half_landed_change_with_dynamodb_down_waits_for_repair(fast: Shop) -> None:
    """The documented exception to `rollback`: a change of more than 100 items whose first
    transaction landed before DynamoDB went down. MySQL rolls back, the immediate re-sync
    fails as well, so DynamoDB holds part of the change until repair; the outbox names it."""
    shop = fast
    user = user_with_many_orders(shop, 70)
    sent: list[str] = []

    def down_after_the_first_transaction(operation: str, params: dict[str, Any]) -> None:
        if writes(operation):
            sent.append(operation)
            if len(sent) > 1:
                raise client_error("InternalServerError", operation, 500)

    shop.ddb.before.append(down_after_the_first_transaction)
    with pytest.raises(DualWriteFailed) as caught:
        shop.users.update(user, {"email": "busy@new.example"})
    assert not caught.value.repaired
    assert email_of(shop, user) == "busy@example.org"
    half = compare_all(shop.contract, shop.engine, shop.ddb)
    assert not half.clean and half.extra, "the first transaction's items are in DynamoDB"
    assert [e.operation for e in shop.sync.outbox.pending()] == ["users.update"]
    shop.ddb.before.clear()
    assert shop.repair() == (1, 0)
    assert_agree(shop)
    assert shop.sync.outbox.count() == 0


def test_a_failure_in_the_second_chunk_leaves_no_half_change(fast: Shop) -> None:
    """The first chunk landed, the second failed: MySQL rolls back and the items of the
    first chunk are put back as MySQL has them."""
    shop = fast
    user = user_with_many_orders(shop, 70)
    sent: list[int] = []

    def fail_second(operation: str, params: dict[str, Any]) -> None:
        if operation == "TransactWriteItems":
            sent.append(1)
            if len(sent) == 2:
                raise client_error("ValidationException", operation)

    shop.ddb.before.append(fail_second)
    with pytest.raises(DualWriteFailed):
        shop.users.update(user, {"email": "busy@new.example"})
    assert email_of(shop, user) == "busy@example.org"
    shop.ddb.before.clear()
    assert_agree(shop)
    assert shop.sync.outbox.count() == 0
