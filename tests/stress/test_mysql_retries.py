"""Deadlocks (1213) and lock wait timeouts (1205) are retried, against MariaDB and DynamoDB
Local: a dual-write and a repair that meet them succeed after retrying, with both stores
agreeing; a backfill whose every chunk keeps meeting them exits 2 with one line.

The errors are injected where MySQL raises them (inside the operation's transaction, as
SQLAlchemy wraps PyMySQL's error), except in one test where a real lock wait timeout is
provoked by a row another connection holds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import botocore.exceptions
import pymysql
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Connection

import migration.sync.engine as sync_engine
from migration.cli import cli
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import Shop
from migration.shop.repositories import MySQLUserRepository
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from migration.source.mysql import create_engine, mysql_error_code
from migration.source.records import RecordReader
from migration.sync.compare import compare_all
from migration.sync.engine import Policy, SyncEngine

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

MESSAGES = {1213: "Deadlock found when trying to get lock; try restarting transaction",
            1205: "Lock wait timeout exceeded; try restarting transaction"}


def mysql_error(code: int, statement: str = "UPDATE users SET email=%(email)s") -> sa.exc.DBAPIError:
    """What SQLAlchemy raises when MySQL answers a statement with `code`."""
    return sa.exc.OperationalError(statement, {}, pymysql.err.OperationalError(code, MESSAGES[code]))


def a_user(shop: Shop) -> int:
    with shop.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT u.id FROM users u JOIN orders o ON o.user_id = u.id "
            "JOIN shopping_carts c ON c.user_id = u.id ORDER BY u.id LIMIT 1")).scalar_one())


def email_of(shop: Shop, user: int) -> str:
    with shop.engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT email FROM users WHERE id = :u"),
                                {"u": user}).scalar_one())


def assert_agree(shop: Shop) -> None:
    result = compare_all(shop.contract, shop.engine, shop.ddb)
    assert result.clean, result.summary()


@pytest.mark.parametrize("codes", [(1213,), (1205,), (1213, 1205, 1213)])
def test_a_dual_write_meeting_deadlocks_is_retried_and_lands_once(
        shop: Shop, monkeypatch: pytest.MonkeyPatch, codes: tuple[int, ...]) -> None:
    """The user's email change (its User item, orders and cart lines move) fails inside
    its transaction with each of `codes` in turn, then goes through."""
    user = a_user(shop)
    failures = list(codes)
    calls: list[int] = []
    original = MySQLUserRepository.update

    def update(repo: MySQLUserRepository, user_id: int, data: Mapping[str, Any]) -> None:
        calls.append(user_id)
        original(repo, user_id, data)  # the statement ran; MySQL then chose this victim
        if failures:
            raise mysql_error(failures.pop(0))

    monkeypatch.setattr(MySQLUserRepository, "update", update)
    shop.users.update(user, {"email": "retried@example.org"})
    assert len(calls) == len(codes) + 1
    assert shop.sync.stats.retries == len(codes)
    assert email_of(shop, user) == "retried@example.org"
    assert shop.sync.outbox.count() == 0
    assert_agree(shop)


def test_a_real_lock_wait_timeout_is_retried(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another connection holds the user's row: the dual-write's locking read times out
    (a real 1205, after one second), is retried, and lands once the row is free."""
    user = a_user(shop)

    @sa.event.listens_for(shop.engine, "checkout")
    def short_lock_waits(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")

    timed_out = threading.Event()
    plain = sync_engine.is_retryable

    def is_retryable(err: BaseException) -> bool:
        if mysql_error_code(err) == 1205:
            timed_out.set()
        return plain(err)

    monkeypatch.setattr(sync_engine, "is_retryable", is_retryable)
    blocker = create_engine(shop.engine.url, pool_size=1)
    errors: list[BaseException] = []
    with blocker.connect() as conn:
        conn.begin()
        conn.execute(sa.text("SELECT id FROM users WHERE id = :u FOR UPDATE"), {"u": user})

        def change() -> None:
            try:
                shop.users.update(user, {"email": "waited@example.org"})
            except BaseException as err:  # noqa: BLE001 - the test fails on it
                errors.append(err)

        thread = threading.Thread(target=change)
        thread.start()
        assert timed_out.wait(60), "the locking read never timed out"
        conn.rollback()  # the row is free: the retry goes through
    thread.join(60)
    blocker.dispose()
    assert not errors, errors
    assert shop.sync.stats.retries >= 1
    assert email_of(shop, user) == "waited@example.org"
    assert_agree(shop)


@pytest.fixture
def staged_outbox_row(shop: Shop) -> Iterator[tuple[Shop, int]]:
    """A user's email change that MySQL committed while DynamoDB was down (outbox policy):
    its outbox row waits for repair."""
    for entity in ("User", "Order", "CartItem"):
        shop.policies[entity] = Policy.OUTBOX
    shop.ddb.max_attempts = 1
    user = a_user(shop)

    def down(operation: str, params: dict[str, Any]) -> None:
        raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://down.invalid")

    shop.ddb.before.append(down)
    shop.users.update(user, {"email": "pending@example.org"})
    shop.ddb.before.clear()
    shop.ddb.max_attempts = 8
    assert shop.sync.outbox.count() == 1
    yield shop, user


@pytest.mark.parametrize("code", [1213, 1205])
def test_a_repair_meeting_a_deadlock_is_retried(
        staged_outbox_row: tuple[Shop, int], monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """The repair's locking read of the rows it re-syncs is chosen as a deadlock victim
    once: the repair is retried, not reported failed (a live dual-write beside
    `migrate repair` makes exactly this happen)."""
    shop, user = staged_outbox_row
    failures = [code]
    original = SyncEngine._image

    def image(engine: SyncEngine, conn: Connection, roots: Any, **kwargs: Any) -> Any:
        found = original(engine, conn, roots, **kwargs)
        if failures:
            raise mysql_error(failures.pop(0), "SELECT ... FOR UPDATE")
        return found

    monkeypatch.setattr(SyncEngine, "_image", image)
    retries = shop.sync.stats.retries
    assert shop.repair() == (1, 0)
    assert not failures and shop.sync.stats.retries == retries + 1
    assert shop.sync.outbox.count() == 0
    assert email_of(shop, user) == "pending@example.org"
    assert_agree(shop)


# -- the backfill: retries run out -----------------------------------------------------------
def test_backfill_exits_2_with_one_line_when_lock_waits_outlast_its_retries(
        live_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    contract = load_contract(SHOP_CONTRACT)
    upgrade(live_settings)
    engine = create_engine(live_settings)
    seed(engine, 5)
    apply(contract, DynamoDB(live_settings))
    reads: list[str] = []
    original = RecordReader.read_range

    def read_range(reader: RecordReader, conn: Connection, after: Any, until: Any, *,
                   lock: str | None = None, **kwargs: Any) -> Any:
        if lock == "share":  # a chunk's read, under its locks
            reads.append(reader.entity.name)
            raise mysql_error(1205, "SELECT ... LOCK IN SHARE MODE")
        return original(reader, conn, after, until, lock=lock, **kwargs)

    monkeypatch.setattr(RecordReader, "read_range", read_range)
    arguments = ["--contract", str(SHOP_CONTRACT),
                 "--mysql-url", live_settings.sqlalchemy_url().render_as_string(hide_password=False),
                 "--dynamodb-endpoint", live_settings.dynamodb_endpoint,
                 "--table-prefix", live_settings.table_prefix,
                 "backfill", "--entity", "user", "--workers", "1", "--progress", "json"]
    result = CliRunner().invoke(cli, arguments)

    assert result.exit_code == 2, (result.output, result.exception)
    assert len(reads) > 1 and set(reads) == {"User"}, "the chunk was retried first"
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "sqlalche.me" not in output
    lines = result.stderr.strip().splitlines()
    *progress, error = lines
    assert all(json.loads(line)["entity"] == "User" for line in progress), lines
    assert error.startswith("error: backfill failed: ") and "1205" in error, error
    assert "Lock wait timeout exceeded" in error
    assert "total" not in result.stdout, "no summary: the run did not finish"

    # Nothing was claimed: a rerun without the fault copies every user.
    monkeypatch.setattr(RecordReader, "read_range", original)
    rerun = CliRunner().invoke(cli, arguments)
    assert rerun.exit_code == 0, rerun.output
    assert compare_all(contract, engine, DynamoDB(live_settings), entities=["User"]).clean
    engine.dispose()
