"""Records read through the DBAPI cursor (`raw_query`: every read of `RecordReader`, its
lookups, embeds and aggregates included) are exactly the records SQLAlchemy's own result
rows give for the same statements: same keys, same values, same types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migration.contract import load_contract
from migration.settings import Settings
from migration.shop import SHOP_CONTRACT
from migration.shop.schema import upgrade
from migration.shop.seed import seed
from migration.source import records
from migration.source.catalog import read_catalog
from migration.source.mysql import create_engine

pytestmark = [pytest.mark.mysql]

CONTRACT = load_contract(SHOP_CONTRACT)


def reference_query(conn: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The same statement through SQLAlchemy (the path before `raw_query`)."""
    return [dict(row) for row in records.run_text(conn, sql, params).mappings()]


def reference_rows(conn: Connection, sql: str, params: dict[str, Any]
                   ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The same statement through SQLAlchemy, as `raw_rows` gives it (a lookup's rows)."""
    result = records.run_text(conn, sql, params)
    return list(result.keys()), [tuple(row) for row in result]


@pytest.fixture
def shop_engine(live_settings: Settings) -> Iterator[Engine]:
    upgrade(live_settings)
    engine = create_engine(live_settings)
    seed(engine, 40)
    with engine.begin() as conn:  # values at their edges: NULLs, text, decimals, dates
        conn.execute(sa.text("UPDATE users SET first_name = NULL, last_name = 'Ünïcødé ''q'' %s' "
                             "WHERE id = 3"))
        conn.execute(sa.text("UPDATE products SET price = 0.10, description = NULL WHERE id = 1"))
        # Values whose length takes one, two and three bytes in the row's packet.
        conn.execute(sa.text("UPDATE products SET description = :d WHERE id = 2"), {"d": "é" * 300})
        conn.execute(sa.text("UPDATE products SET description = :d WHERE id = 3"),
                     {"d": "x" * 60_000})
        conn.execute(sa.text("UPDATE products SET name = '' WHERE id = 4"))
        conn.execute(sa.text("UPDATE orders SET created_at = '2024-02-29 23:59:59.5' "
                             "WHERE id = 2"))
    yield engine
    engine.dispose()


def both(read: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    fast = read()
    with monkeypatch.context() as patch:
        patch.setattr(records, "raw_query", reference_query)
        patch.setattr(records, "raw_rows", reference_rows)
        reference = read()
    return fast, reference


def typed(value: Any) -> Any:
    """A record with every value's type beside it (1 == True == 1.0 would hide a change)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def reads(reader: records.RecordReader, conn: Connection, keys: list[tuple[Any, ...]],
          lock: str | None) -> dict[str, Any]:
    """Every way `RecordReader` reads records, over one entity's rows."""
    middle = keys[len(keys) // 3]
    return {
        "read_range": lambda: reader.read_range(conn, None, middle, lock=lock),
        "read_range rest": lambda: reader.read_range(conn, middle, None, lock=lock),
        "fetch": lambda: reader.fetch(conn, keys[::3] + [(10**6,) * len(keys[0])], lock=lock),
        "stream": lambda: [r for chunk in reader.stream(conn, chunk_size=7, lock=lock)
                           for r in chunk],
    }


@pytest.mark.parametrize("lock", [None, "share"])
def test_every_read_gives_sqlalchemys_records(shop_engine: Engine, lock: str | None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for entity in CONTRACT.source_entities():
        reader = records.RecordReader(CONTRACT, entity)
        with shop_engine.connect() as conn:
            keys = reader.read_keys(conn, None, 10_000)
            assert keys, entity.name
            for name, read in reads(reader, conn, keys, lock).items():
                fast, reference = both(read, monkeypatch)
                assert fast, (entity.name, name)
                assert typed(fast) == typed(reference), (entity.name, name)
            conn.rollback()


@pytest.mark.parametrize("lock", [None, "share"])
def test_lookups_read_inside_their_rows_select_give_the_same_records(
        shop_engine: Engine, lock: str | None) -> None:
    """Given the catalog, a lookup by a unique integer key is read as a subquery of its
    rows' SELECT (and an embed's, of its children's): the records are those of its own
    query, for every read, with a reference to no row (foreign key checks off) and NULLs."""
    with shop_engine.begin() as conn:
        conn.execute(sa.text("SET SESSION foreign_key_checks = 0"))
        conn.execute(sa.text("INSERT INTO orders (id, user_id, total_amount, status, created_at, "
                             "updated_at) VALUES (900001, 987654, 1.00, 'pending', NOW(), NOW())"))
        conn.execute(sa.text("INSERT INTO order_items (order_id, product_id, quantity, "
                             "price_at_time) VALUES (900001, 987654, 1, 1.00)"))
        conn.execute(sa.text("SET SESSION foreign_key_checks = 1"))
    with shop_engine.connect() as conn:
        catalog = read_catalog(conn)
    order = records.RecordReader(CONTRACT, CONTRACT.entity("Order"), catalog)
    assert order._joined and order._embed_groups["order_items"][0]  # the case at hand
    for entity in CONTRACT.source_entities():
        separate = records.RecordReader(CONTRACT, entity)
        joined = records.RecordReader(CONTRACT, entity, catalog)
        with shop_engine.connect() as conn:
            keys = separate.read_keys(conn, None, 10_000)
            plain = {name: read() for name, read in reads(separate, conn, keys, lock).items()}
            for name, read in reads(joined, conn, keys, lock).items():
                assert typed(read()) == typed(plain[name]), (entity.name, name)
            conn.rollback()


def test_lookups_read_inside_their_rows_select_are_locked(shop_engine: Engine) -> None:
    """A locking read locks the rows its subqueries read (each takes the lock itself): a
    user and a product an order's record holds cannot change until its reader commits."""
    with shop_engine.connect() as conn:
        catalog = read_catalog(conn)
        user_id, product_id = conn.execute(sa.text(
            "SELECT o.user_id, i.product_id FROM orders o JOIN order_items i "
            "ON i.order_id = o.id ORDER BY o.id LIMIT 1")).one()
    reader = records.RecordReader(CONTRACT, CONTRACT.entity("Order"), catalog)
    with shop_engine.connect() as reading, shop_engine.connect() as writing:
        first = reader.read_range(reading, None, (reader.read_keys(reading, None, 1)[0][0],),
                                  lock="share")
        assert first[0]["user_email"] is not None
        writing.execute(sa.text("SET SESSION innodb_lock_wait_timeout = 1"))
        for statement, key in (("UPDATE users SET first_name = 'x' WHERE id = :k", user_id),
                               ("UPDATE products SET name = 'x' WHERE id = :k", product_id)):
            with pytest.raises(sa.exc.OperationalError, match="1205"):
                writing.execute(sa.text(statement), {"k": key})
            writing.rollback()
        reading.rollback()


class _ShortPeeks:
    """A connection's read buffer whose `peek` sees less than a packet's start one time in
    two or three (as at the end of what the socket gave so far)."""

    def __init__(self, rfile: Any):
        self.rfile = rfile
        self.calls = 0

    def peek(self, size: int) -> bytes:
        self.calls += 1
        return b"" if self.calls % 2 else self.rfile.peek(size)[: self.calls % 5]

    def read(self, size: int) -> bytes:
        return self.rfile.read(size)


@pytest.mark.parametrize("lock", [None, "share"])
def test_rows_not_yet_in_the_buffer_are_read_as_pymysql_reads_them(
        shop_engine: Engine, lock: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row packets whose start is not in the read buffer go through PyMySQL's own packet
    reading: the same records either way."""
    for entity in CONTRACT.source_entities():
        reader = records.RecordReader(CONTRACT, entity)
        with shop_engine.connect() as conn:
            keys = reader.read_keys(conn, None, 10_000)
            driver: Any = conn.connection.driver_connection
            plain = {name: read() for name, read in reads(reader, conn, keys, lock).items()}
            driver._rfile = _ShortPeeks(driver._rfile)
            try:
                for name, read in reads(reader, conn, keys, lock).items():
                    assert typed(read()) == typed(plain[name]), (entity.name, name)
                assert driver._rfile.calls > 10
            finally:
                driver._rfile = driver._rfile.rfile
            fast, reference = both(reads(reader, conn, keys, lock)["read_range"], monkeypatch)
            assert typed(fast) == typed(reference)
            conn.rollback()


def test_keys_read_for_chunks_are_sqlalchemys(shop_engine: Engine) -> None:
    """`read_keys` (the backfill's chunk planning) reads as `raw_query` does: the same
    keys, values and types as SQLAlchemy's rows, from the start and after a key."""
    for entity in CONTRACT.source_entities():
        reader = records.RecordReader(CONTRACT, entity)
        assert entity.source is not None
        pk = ", ".join(map(records.quote_name, entity.source.primary_key))
        with shop_engine.connect() as conn:
            everything = [tuple(row) for row in conn.execute(sa.text(
                f"SELECT {pk} FROM {records.quote_name(entity.source.table)} ORDER BY {pk}"))]
            def as_lists(keys: list[tuple[Any, ...]]) -> Any:
                return typed([list(key) for key in keys])  # each value with its type

            assert as_lists(reader.read_keys(conn, None, 10_000)) == as_lists(everything)
            middle = everything[len(everything) // 2]
            assert as_lists(reader.read_keys(conn, middle, 7)) == \
                as_lists(everything[len(everything) // 2 + 1:][:7])


def test_a_chunk_end_is_the_last_of_the_chunks_keys(shop_engine: Engine) -> None:
    """`read_chunk_end` plans the chunks `read_keys` plans: the same last key and the same
    "whole chunk" verdict, for single and composite keys, with and without a condition."""
    for entity in CONTRACT.source_entities():
        reader = records.RecordReader(CONTRACT, entity)
        column = records.quote_name(reader.source.primary_key[0])
        conditions = [("", {}), (f"MOD({column}, :n) = 1", {"n": 3}),
                      (f"{column} < :none", {"none": -1})]
        with shop_engine.connect() as conn:
            every = reader.read_keys(conn, None, 10_000)
            assert len(every) > 7, entity.name
            for where, params in conditions:
                for size in (1, 2, 7, len(every), len(every) + 1):
                    for after in (None, every[0], every[len(every) // 2], every[-1]):
                        keys = reader.read_keys(conn, after, size, where=where,
                                                where_params=params)
                        expected = (keys[-1], True) if len(keys) == size else \
                            (keys[-1] if keys else None, False)
                        assert reader.read_chunk_end(conn, after, size, where=where,
                                                     where_params=params) == expected, \
                            (entity.name, where, size, after)
            conn.rollback()


def _joined(conn: Connection, table: str, keys: tuple[str, ...], lookup: Any
            ) -> dict[tuple[Any, ...], Any]:
    """Each row's lookup value by its `keys`, as MySQL's own LEFT JOIN finds it."""
    on = " AND ".join(f"r.{records.quote_name(target)} = t.{records.quote_name(source)}"
                      for target, source in lookup.on)
    selected = ", ".join(f"t.{records.quote_name(k)}" for k in keys)
    rows = conn.execute(sa.text(
        f"SELECT {selected}, r.{records.quote_name(lookup.column)} "
        f"FROM {records.quote_name(table)} t LEFT JOIN {records.quote_name(lookup.table)} r "
        f"ON {on}")).all()
    return {tuple(row[:-1]): row[-1] for row in rows}


def test_lookups_find_what_a_join_finds(shop_engine: Engine) -> None:
    """Every lookup of a record and of its embedded rows holds the value MySQL's LEFT JOIN
    gives (grouped lookups, NULL join columns and rows without a match included)."""
    with shop_engine.connect() as conn:
        # A row whose lookup finds nothing (undone by the rollback below).
        conn.execute(sa.text("SET SESSION foreign_key_checks = 0"))
        conn.execute(sa.text("UPDATE shopping_carts SET product_id = 999999 LIMIT 1"))
        conn.execute(sa.text("SET SESSION foreign_key_checks = 1"))
        checked = 0
        for entity in CONTRACT.source_entities():
            reader = records.RecordReader(CONTRACT, entity)
            source = reader.source
            got = reader.read_range(conn, None, None)
            for lookup in source.lookups:
                want = _joined(conn, source.table, source.primary_key, lookup)
                for record in got:
                    assert record[lookup.name] == want[reader.root_of(record)], \
                        (entity.name, lookup.name, reader.root_of(record))
                    checked += record[lookup.name] is not None
            for embed in source.embeds:
                for lookup in embed.lookups:
                    want = _joined(conn, embed.table, embed.primary_key, lookup)
                    column = dict((attr, col) for attr, col in embed.columns)
                    for record in got:
                        for child in record[embed.name]:
                            key = tuple(child[next(a for a, c in column.items() if c == k)]
                                        for k in embed.primary_key)
                            assert child.get(lookup.name) == want[key], (embed.name, key)
                            checked += 1
        conn.rollback()
    assert checked > 100
