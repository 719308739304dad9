"""Shared fixtures.

Unit tests need nothing. Integration tests ask for `mysql_url` and/or
`dynamodb_settings`: the first such test of a session finds the services
(MIGRATE_MYSQL_URL, MIGRATE_DYNAMODB_ENDPOINT) or starts them (a throwaway
mariadbd, DynamoDB Local from npm), and every test gets its own database and
table prefix so nothing collides and nothing is assumed empty.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.local.services import local_services, sigterm_interrupts
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import SHOP_ENTITIES, Shop, open_shop
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from migration.source.mysql import create_engine, server_url
from migration.source.records import RecordReader

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _sigterm_ends_the_session() -> Iterator[None]:
    """SIGTERM (`kill`, a CI runner's timeout) ends the run as Ctrl-C does: pytest then
    tears the session's fixtures down, and they stop the DynamoDB Local and MariaDB they
    started. Those run in process sessions of their own, so no signal sent to pytest
    alone reaches them; without this they outlived a terminated run."""
    with sigterm_interrupts():
        yield


@pytest.fixture(scope="session")
def _mysql_session() -> Iterator[Settings]:
    with local_services(Settings(), need_dynamodb=False) as settings:
        yield settings


@pytest.fixture(scope="session")
def _dynamodb_session() -> Iterator[Settings]:
    with local_services(Settings(), need_mysql=False) as settings:
        yield settings


def unique_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def fresh_database(server: URL) -> Iterator[URL]:
    """Create an empty database on `server` and drop it afterwards."""
    name = unique_name("mt_")
    admin = create_engine(server_url(server), pool_size=1)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                             "COLLATE utf8mb4_unicode_ci"))
    try:
        yield server.set(database=name)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture
def mysql_url(_mysql_session: Settings) -> Iterator[URL]:
    """A new, empty database of its own on the real MySQL/MariaDB server."""
    with fresh_database(_mysql_session.sqlalchemy_url()) as url:
        yield url


@pytest.fixture
def mysql_engine(mysql_url: URL) -> Iterator[Engine]:
    engine = create_engine(mysql_url)
    yield engine
    engine.dispose()


@pytest.fixture
def dynamodb_settings(_dynamodb_session: Settings) -> Iterator[Settings]:
    """Settings for DynamoDB Local with a table prefix of the test's own."""
    settings = _dynamodb_session.model_copy(update={"table_prefix": unique_name("t") + "_"})
    yield settings
    ddb = DynamoDB(settings)
    for name in ddb.call("ListTables").get("TableNames", []):
        if name.startswith(settings.table_prefix):
            with contextlib.suppress(Exception):
                ddb.call("DeleteTable", TableName=name)


@pytest.fixture
def ddb(dynamodb_settings: Settings) -> DynamoDB:
    return DynamoDB(dynamodb_settings)


@pytest.fixture
def live_settings(mysql_url: URL, dynamodb_settings: Settings) -> Settings:
    """Settings pointing at a fresh database and a fresh table prefix."""
    from pydantic import SecretStr

    return dynamodb_settings.model_copy(
        update={"mysql_url": SecretStr(mysql_url.render_as_string(hide_password=False)),
                "mysql_password": None})


# -- the shop with dual-write ----------------------------------------------------------
SHOP = load_contract(SHOP_CONTRACT)


def bring_dynamodb_up_to_date(shop: Shop) -> None:
    with shop.engine.connect() as conn:
        for entity in SHOP.source_entities():
            reader = RecordReader(SHOP, entity)
            for chunk in reader.stream(conn, chunk_size=200):
                shop.sync.sync_roots({entity.name: [reader.root_of(r) for r in chunk]})


def make_shop(settings: Settings, *, users: int = 12, synced: bool = True) -> Shop:
    """A seeded shop with every entity dual-writing; `synced`: DynamoDB already holds
    every item (as after a backfill), else its tables are empty."""
    upgrade(settings)
    engine = create_engine(settings)
    seed(engine, users)
    engine.dispose()
    apply(SHOP, DynamoDB(settings))
    opened = open_shop(settings)
    for name in SHOP_ENTITIES:
        opened.flags.set_phase(name, "dual_write")
    if synced:
        bring_dynamodb_up_to_date(opened)
    return opened


@pytest.fixture
def shop(live_settings: Settings) -> Iterator[Shop]:
    """A seeded shop on real MariaDB and DynamoDB Local, every entity dual-writing,
    DynamoDB already holding every item (as after a backfill)."""
    opened = make_shop(live_settings)
    yield opened
    opened.close()
