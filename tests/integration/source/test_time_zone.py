"""Sessions run in UTC whatever time zone the server gives them, against MariaDB and
DynamoDB Local.

The server's default zone is shared by every test on the server, so it is not changed
here: each connection starts in '+05:30' instead (an `init_command` the driver runs at
connect, before any SQLAlchemy event), as it would on a server whose `time_zone` is
'+05:30'. The toolkit's engine (`migration.source.mysql.create_engine`) must still write
and read TIMESTAMPs as UTC, and the items it makes must carry UTC text, keys included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import wrappers.dual_write
from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import SHOP_ENTITIES, open_shop
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from migration.source.mysql import create_engine
from migration.source.records import RecordReader
from migration.sync.compare import compare_all

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

ELSEWHERE = {"init_command": "SET time_zone = '+05:30'"}
NOON_UTC = dt.datetime(2024, 5, 1, 12, 0, 0)  # naive: UTC, as the toolkit's values are


def utc_text(moment: dt.datetime) -> str:
    """The item form of a timestamp (README, type rules)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def shop_schema(live_settings: Settings) -> Iterator[Settings]:
    upgrade(live_settings)
    engine = create_engine(live_settings)
    seed(engine, 3)
    engine.dispose()
    apply(load_contract(SHOP_CONTRACT), DynamoDB(live_settings))
    yield live_settings


def session_zone(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT @@session.time_zone")).scalar_one())


def test_the_toolkits_sessions_read_and_write_utc_in_a_server_set_to_another_zone(
        shop_schema: Settings) -> None:
    settings = shop_schema
    elsewhere = sa.create_engine(settings.sqlalchemy_url(), connect_args=ELSEWHERE)
    toolkit = create_engine(settings, connect_args=ELSEWHERE)
    try:
        assert session_zone(elsewhere) == "+05:30", "the simulated server zone holds"
        assert session_zone(toolkit) == "+00:00"

        # A TIMESTAMP written by the toolkit is noon UTC; the '+05:30' session sees 17:30.
        with toolkit.begin() as conn:
            user = conn.execute(sa.text(
                "INSERT INTO users (username, email, password_hash, created_at) "
                "VALUES ('tz', 'tz@example.org', 'h', :at)"), {"at": NOON_UTC}).lastrowid
        with elsewhere.connect() as conn:
            local, epoch = conn.execute(sa.text(
                "SELECT created_at, UNIX_TIMESTAMP(created_at) FROM users WHERE id = :u"),
                {"u": user}).one()
        assert local == dt.datetime(2024, 5, 1, 17, 30)
        assert int(epoch) == int(NOON_UTC.replace(tzinfo=dt.UTC).timestamp())
        with toolkit.connect() as conn:
            read = conn.execute(sa.text("SELECT created_at FROM users WHERE id = :u"),
                                {"u": user}).scalar_one()
        assert read == NOON_UTC
    finally:
        elsewhere.dispose()
        toolkit.dispose()


def test_items_carry_utc_text_when_the_server_is_in_another_zone(
        shop_schema: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shop's own engine starts in '+05:30' too: an order it creates (created_at set by
    MySQL) gets a sort key and a created_at in UTC, and reads of it give back UTC."""
    settings = shop_schema
    plain = wrappers.dual_write.create_engine

    def create_engine_elsewhere(*args: Any, **kwargs: Any) -> Engine:
        return plain(*args, connect_args=ELSEWHERE, **kwargs)

    monkeypatch.setattr(wrappers.dual_write, "create_engine", create_engine_elsewhere)
    with open_shop(settings) as shop:
        assert session_zone(shop.engine) == "+00:00"
        for name in SHOP_ENTITIES:
            shop.flags.set_phase(name, "dual_write")
        with shop.engine.connect() as conn:
            user, email = conn.execute(sa.text(
                "SELECT id, email FROM users ORDER BY id LIMIT 1")).one()
        order = shop.orders.create_order(user, Decimal("9.99"))
        with shop.engine.connect() as conn:
            epoch = conn.execute(sa.text("SELECT UNIX_TIMESTAMP(created_at) FROM orders "
                                         "WHERE id = :o"), {"o": order}).scalar_one()
        created = dt.datetime.fromtimestamp(int(epoch), dt.UTC)
        assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=10)

        items = shop.ddb.call("Query", TableName=shop.ddb.table_name("Users"),
                              IndexName="GSI3", KeyConditionExpression="GSI3PK = :id",
                              ExpressionAttributeValues={":id": {"S": str(order)}})["Items"]
        assert len(items) == 1
        item = items[0]
        assert item["PK"] == {"S": email}
        assert item["SK"] == {"S": f"ORDER#{utc_text(created)}#{order}"}
        assert item["created_at"] == {"S": utc_text(created)}

        for phase in ("dual_write", "dynamodb_read"):
            shop.flags.set_phase("order", phase)
            answer = shop.orders.get_order(order)
            assert answer is not None and answer.created_at == created, phase

        # Every other row, re-synced through the same '+05:30'-started engine, makes the
        # items the toolkit's engine makes when the server gives it no other zone.
        with shop.engine.connect() as conn:
            for entity in shop.contract.source_entities():
                reader = RecordReader(shop.contract, entity)
                for chunk in reader.stream(conn, chunk_size=200):
                    shop.sync.sync_roots({entity.name: [reader.root_of(r) for r in chunk]})
        utc = create_engine(settings)
        result = compare_all(shop.contract, utc, shop.ddb)
        utc.dispose()
        assert result.clean, result.summary()
