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
