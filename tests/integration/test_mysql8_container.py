"""The shop schema, seed and row-to-item path on a real MySQL 8 (testcontainers).

Skipped cleanly when no Docker engine answers (as on the development machines
of this project); MariaDB covers the same path in every other test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from migration.contract import load_contract
from migration.mapping.item import ItemMapper
from migration.shop import SHOP_CONTRACT
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from migration.source.mysql import create_engine
from migration.source.records import RecordReader

pytestmark = pytest.mark.docker


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no engine to use"
        return False


@pytest.fixture(scope="module")
def mysql8_url() -> Iterator[sa.engine.URL]:
    if not _docker_answers():
        pytest.skip("no Docker engine answers; testcontainers tests skipped")
    from testcontainers.mysql import MySqlContainer

    with MySqlContainer("mysql:8.0", dialect="pymysql") as container:
        yield sa.engine.make_url(container.get_connection_url())


def test_shop_on_mysql8(mysql8_url: sa.engine.URL) -> None:
    upgrade(mysql8_url)
    engine = create_engine(mysql8_url)
    try:
        counts = seed(engine, 50)
        assert counts.users == 50
        contract = load_contract(SHOP_CONTRACT)
        with engine.connect() as conn:
            for entity in contract.source_entities():
                reader, mapper = RecordReader(contract, entity), ItemMapper(contract, entity)
                items = [mapper.to_item(r) for chunk in reader.stream(conn) for r in chunk]
                assert items, entity.name
    finally:
        engine.dispose()
