"""A seeded shop on real MariaDB and DynamoDB Local, every entity dual-writing, DynamoDB
already holding every item (as after a backfill)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.settings import SHOP_CONTRACT, Settings
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from migration.source.mysql import create_engine
from migration.source.records import RecordReader
from wrappers.shop import SHOP_ENTITIES, Shop, open_shop

CONTRACT = load_contract(SHOP_CONTRACT)


def bring_dynamodb_up_to_date(shop: Shop) -> None:
    with shop.engine.connect() as conn:
        for entity in CONTRACT.source_entities():
            reader = RecordReader(CONTRACT, entity)
            for chunk in reader.stream(conn, chunk_size=200):
                shop.sync.sync_roots({entity.name: [reader.key_of(r) for r in chunk]})


@pytest.fixture
def shop(live_settings: Settings) -> Iterator[Shop]:
    upgrade(live_settings)
    engine = create_engine(live_settings)
    seed(engine, 12)
    engine.dispose()
    apply(CONTRACT, DynamoDB(live_settings))
    opened = open_shop(live_settings)
    for name in SHOP_ENTITIES:
        opened.flags.set_phase(name, "dual_write")
    bring_dynamodb_up_to_date(opened)
    yield opened
    opened.close()
