"""The project starts what it needs on a machine without services: a throwaway
MariaDB and DynamoDB Local, each answering and each gone after stop()."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from migration.errors import ServiceError
from migration.local.services import (
    dynamodb_answers,
    local_services,
    mysql_answers,
    start_dynamodb_local,
    start_mariadb,
)
from migration.settings import Settings
from migration.shop.schema import upgrade
from migration.source.mysql import create_engine

HAS_MARIADBD = any(shutil.which(name) or Path(f"/usr/sbin/{name}").exists()
                   for name in ("mariadbd", "mysqld"))


@pytest.mark.skipif(not HAS_MARIADBD and os.geteuid() != 0,
                    reason="no mariadbd here, and not root to install it")
def test_throwaway_mariadb_starts_takes_the_schema_and_goes_away() -> None:
    service = start_mariadb()
    try:
        url = sa.engine.make_url(service.address)
        assert mysql_answers(url) is None
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE DATABASE shop"))
        engine.dispose()
        upgrade(url.set(database="shop"))
        engine = create_engine(url.set(database="shop"))
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        engine.dispose()
        assert {"users", "products", "orders", "order_items", "categories",
                "shopping_carts"} <= tables
    finally:
        service.stop()
    assert mysql_answers(url, timeout=1) is not None
    assert service.workdir is not None and not service.workdir.exists()


def test_dynamodb_local_starts_and_stops() -> None:
    service = start_dynamodb_local()
    try:
        assert dynamodb_answers(service.address)
    finally:
        service.stop()
    assert not dynamodb_answers(service.address, timeout=1)


def test_local_services_falls_back_when_the_configured_mysql_does_not_answer() -> None:
    dead = Settings(mysql_url="mysql+pymysql://root@127.0.0.1:1/shop",  # type: ignore[arg-type]
                    dynamodb_endpoint="")
    with local_services(dead, need_dynamodb=False) as live:
        url = live.sqlalchemy_url()
        assert url.port != 1 and url.database == "shop"
        assert mysql_answers(url.set(database=None)) is None
    assert mysql_answers(url, timeout=1) is not None


def test_a_remote_endpoint_that_does_not_answer_is_an_error() -> None:
    settings = Settings(dynamodb_endpoint="http://192.0.2.1:9")
    with pytest.raises(ServiceError, match="does not answer"), \
            local_services(settings, need_mysql=False):
        pass
