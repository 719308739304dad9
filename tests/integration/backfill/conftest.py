"""The seeded shop the backfill tests copy: a database and table prefix of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from migration.contract import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from migration.source.mysql import create_engine

SHOP = load_contract(SHOP_CONTRACT)
SEEDED_USERS = 60


@pytest.fixture
def seeded(live_settings: Settings) -> Iterator[tuple[Engine, DynamoDB]]:
    """The shop seeded with SEEDED_USERS users in MySQL, its DynamoDB tables empty."""
    upgrade(live_settings)
    engine = create_engine(live_settings)
    seed(engine, SEEDED_USERS)
    ddb = DynamoDB(live_settings)
    apply(SHOP, ddb)
    yield engine, ddb
    engine.dispose()
