"""Read source records: rows of an entity's table plus their lookups, embeds and aggregates.

A record is a dict of the row's columns plus one key per derived value, ready
for `ItemMapper.to_item`. Derived values are fetched for a whole chunk of rows
at once, one query per related table (never one query per row): lookups that
read the same related table on the same columns share a query. Given the catalog
(the backfill gives it), a lookup that can only ever match one row by integer
columns is read inside its rows' own SELECT instead (see `_joinable`): one query
and one parsed row fewer per related row, the same records.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pymysql
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration.contract.model import Aggregate, Contract, Embed, Entity, Lookup, Source
from migration.source.catalog import Catalog

Record = dict[str, Any]

# Locking reads: dual-write, repair and the backfill read under row locks so that
# nothing they map can change before their DynamoDB write lands. `LOCK IN SHARE
# MODE` is understood by MySQL 8 and MariaDB alike (MariaDB has no `FOR SHARE`).
LOCKS = {None: "", "share": " LOCK IN SHARE MODE", "update": " FOR UPDATE"}


def quote_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class _LookupGroup:
    """Lookups reading one related table through the same join columns."""

    table: str
    on: tuple[tuple[str, str], ...]  # (related column, source column)
    columns: tuple[tuple[str, str], ...]  # (record name, related column)


def _group_lookups(lookups: Sequence[Lookup]) -> tuple[_LookupGroup, ...]:
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[str, str]]] = {}
    for lookup in lookups:
        groups.setdefault((lookup.table, lookup.on), []).append((lookup.name, lookup.column))
    return tuple(_LookupGroup(table, on, tuple(cols)) for (table, on), cols in groups.items())


def _joinable(group: _LookupGroup, table: str, catalog: Catalog | None) -> bool:
    """True when the lookup can be read inside the SELECT of `table`'s rows, as a scalar
    subquery per column, with the same values as its own query gives: at most one related
    row can match (a unique key), and the join columns are integers on both sides (its
    own query's rows are matched to the records by Python's equality, which for integers
    is MySQL's: no collation, no conversion). A NULL join value matches nothing either way."""
    if catalog is None:
        return False
    targets = tuple(target for target, _ in group.on)
    return (catalog.is_unique(group.table, targets) and catalog.are_integers(group.table, targets)
            and catalog.are_integers(table, tuple(source for _, source in group.on)))


def _subqueries(table: str, groups: Sequence[_LookupGroup], lock: str | None) -> str:
    """`, (SELECT j.col FROM related j WHERE j.key = table.key LOCK) AS name` for each
    column of `groups`: the lookups of the rows of `table`, read in their SELECT. A locking
    read does not lock the rows of its subqueries: each subquery takes `lock` itself."""
    return "".join(
        f", (SELECT j.{quote_name(column)} FROM {quote_name(group.table)} j WHERE "
        + " AND ".join(f"j.{quote_name(target)} = {quote_name(table)}.{quote_name(source)}"
                       for target, source in group.on)
        + f"{LOCKS[lock]}) AS {quote_name(name)}"
        for group in groups for name, column in group.columns)


def in_clause(columns: Sequence[str], keys: Sequence[tuple[Any, ...]],
               params: dict[str, Any], prefix: str, alias: str | None = None) -> str:
    """`(a, b) IN ((:p0_0, :p0_1), ...)` with bound parameters, or `a IN (...)`;
    `alias` qualifies the columns (`m.a`). Keys made of plain integers are written as
    literals (a chunk's IN list has hundreds: binding, escaping and substituting each
    cost more than the query's rows), which means the same to the server."""
    qualified = [(f"{alias}." if alias else "") + quote_name(c) for c in columns]
    target = qualified[0] if len(qualified) == 1 else "(" + ", ".join(qualified) + ")"
    if all(type(value) is int for key in keys for value in key):
        if len(columns) == 1:
            return f"{target} IN ({', '.join(str(key[0]) for key in keys)})"
        return f"{target} IN ({', '.join('(' + ', '.join(map(str, key)) + ')' for key in keys)})"
    parts = []
    for i, key in enumerate(keys):
        names = []
        for j, value in enumerate(key):
            name = f"{prefix}{i}_{j}"
            params[name] = value
            names.append(f":{name}")
        parts.append(names[0] if len(names) == 1 else "(" + ", ".join(names) + ")")
    return f"{target} IN ({', '.join(parts)})"


class RecordReader:
    """Reads the records of one entity, by primary key or as a keyset-paginated stream."""

    def __init__(self, contract: Contract, entity: Entity, catalog: Catalog | None = None):
        """`catalog`: lookups it shows joinable are read inside their rows' SELECT."""
        if entity.source is None:
            raise ValueError(f"entity {entity.name} has no MySQL source")
        self.entity = entity
        self.source: Source = entity.source
        derived = set(self.source.derived_names)
        needed: dict[str, None] = dict.fromkeys(self.source.primary_key)
        for field in entity.fields:
            if field.source_name not in derived and not field.is_constant:
                needed[field.source_name] = None
        for template in [entity.pk, entity.sk] + [t for k in entity.index_keys
                                                  for t in k.templates]:
            if template is not None:
                # A placeholder names a field (or a column, lookup or aggregate); the
                # row holds a field under its column.
                for name in map(entity.record_name, template.fields):
                    if name not in derived:
                        needed[name] = None
        for lookup in self.source.lookups:
            needed.update(dict.fromkeys(src for _, src in lookup.on))
        for embed in self.source.embeds:
            needed.update(dict.fromkeys(src for _, src in embed.on))
        for aggregate in self.source.aggregates:
            needed.update(dict.fromkeys(src for _, src in aggregate.on))
        self.columns: tuple[str, ...] = tuple(needed)
        table = self.source.table
        groups = _group_lookups(self.source.lookups)
        self._joined = tuple(g for g in groups if _joinable(g, table, catalog))
        self._lookup_groups = tuple(g for g in groups if g not in self._joined)
        # The SELECT of the rows, by the lock their lookups are read with.
        self._selects = {lock: "SELECT " + ", ".join(map(quote_name, self.columns))
                         + _subqueries(table, self._joined, lock) + f" FROM {quote_name(table)}"
                         for lock in LOCKS}
        self._embed_groups: dict[str, tuple[tuple[_LookupGroup, ...], tuple[_LookupGroup, ...]]]
        self._embed_groups = {}
        for embed in self.source.embeds:
            groups = _group_lookups(embed.lookups)
            joined = tuple(g for g in groups if _joinable(g, embed.table, catalog))
            self._embed_groups[embed.name] = (joined, tuple(g for g in groups if g not in joined))

    # -- whole records ---------------------------------------------------------
    def fetch(self, conn: Connection, keys: Sequence[tuple[Any, ...]], *,
              lock: str | None = None) -> list[Record]:
        """Records for these primary keys (missing rows are simply absent), in key order.

        `lock` ("share" or "update") makes every read a locking read: the rows
        themselves get that lock, related rows (lookups, embeds, aggregates) a
        shared one. Writers of one item then take turns: inserting a child row
        of an embed only conflicts with the exclusive lock on its root.
        """
        if not keys:
            return []
        params: dict[str, Any] = {}
        related = "share" if lock else None
        sql = (f"{self._selects[related]} WHERE "
               f"{in_clause(self.source.primary_key, keys, params, 'k')}"
               f" ORDER BY {', '.join(map(quote_name, self.source.primary_key))}{LOCKS[lock]}")
        rows = raw_query(conn, sql, params)
        self._attach(conn, rows, related, joined=True)
        return rows

    def from_rows(self, conn: Connection, rows: Sequence[Mapping[str, Any]], *,
                  lock: str | None = None) -> list[Record]:
        """Records for rows the caller already read whole (`SELECT *` of the entity's
        table, under the lock it wants), in the given order: the record's columns taken
        from them, then every lookup, embed and aggregate read as `fetch` reads them
        (`lock`: shared locks on the related rows). The same records `fetch` gives for
        their keys, one query fewer."""
        records = [{column: row[column] for column in self.columns} for row in rows]
        self.attach(conn, records, lock="share" if lock else None)
        return records

    def stream(self, conn: Connection, *, chunk_size: int = 1000,
               after: tuple[Any, ...] | None = None,
               until: tuple[Any, ...] | None = None,
               lock: str | None = None) -> Iterator[list[Record]]:
        """Chunks of records in primary-key order (keyset pagination, never OFFSET).

        `after` excludes keys up to and including it; `until` stops after that key.
        """
        pk = self.source.primary_key
        order = ", ".join(map(quote_name, pk))
        last = after
        while True:
            params: dict[str, Any] = {"limit": chunk_size}
            clauses = []
            if last is not None:
                clauses.append(keyset_after(pk, last, params, "a"))
            if until is not None:
                clauses.append("NOT " + keyset_after(pk, until, params, "u"))
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            sql = f"{self._selects[lock]}{where} ORDER BY {order} LIMIT :limit{LOCKS[lock]}"
            rows = raw_query(conn, sql, params)
            if not rows:
                return
            self._attach(conn, rows, lock, joined=True)
            yield rows
            if len(rows) < chunk_size:
                return
            last = tuple(rows[-1][c] for c in pk)

    def read_range(self, conn: Connection, after: tuple[Any, ...] | None,
                   until: tuple[Any, ...] | None, *, lock: str | None = None,
                   where: str = "", where_params: dict[str, Any] | None = None) -> list[Record]:
        """Records with `after` < key <= `until` (either bound may be None), in key order.

        The bulk path of backfill: the rows come through the DBAPI cursor directly
        (no per-row SQLAlchemy objects). `where` adds a condition (a segment).
        """
        pk = self.source.primary_key
        params: dict[str, Any] = dict(where_params or {})
        clauses = []
        if after is not None:
            clauses.append(keyset_after(pk, after, params, "a"))
        if until is not None:
            clauses.append("NOT " + keyset_after(pk, until, params, "u"))
        if where:
            clauses.append(where)
        related = "share" if lock else None
        sql = self._selects[related] + (f" WHERE {' AND '.join(clauses)}" if clauses else "") + \
            f" ORDER BY {', '.join(map(quote_name, pk))}{LOCKS[lock]}"
        rows = raw_query(conn, sql, params)
        self._attach(conn, rows, related, joined=True)
        return rows

    def read_keys(self, conn: Connection, after: tuple[Any, ...] | None, limit: int, *,
                  where: str = "", where_params: dict[str, Any] | None = None
                  ) -> list[tuple[Any, ...]]:
        """The next `limit` primary keys after `after` (an index-only keyset scan)."""
        pk = self.source.primary_key
        params: dict[str, Any] = dict(where_params or {})
        clauses = [keyset_after(pk, after, params, "a")] if after is not None else []
        if where:
            clauses.append(where)
        params["limit"] = limit
        sql = (f"SELECT {', '.join(map(quote_name, pk))} FROM {quote_name(self.source.table)}"
               + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
               + f" ORDER BY {', '.join(map(quote_name, pk))} LIMIT :limit")
        return [tuple(row) for row in raw_rows(conn, sql, params)[1]]

    def read_chunk_end(self, conn: Connection, after: tuple[Any, ...] | None, size: int, *,
                       where: str = "", where_params: dict[str, Any] | None = None
                       ) -> tuple[tuple[Any, ...] | None, bool]:
        """(the last key of the next chunk of `size` keys after `after`, whether the chunk
        is whole): `read_keys(...)[-1]` and `len(keys) == size`, without reading the keys
        before it. (None, False) when no key is left. A chunk planner needs only its
        ends: one key from the index instead of `size`."""
        if size < 1:
            raise ValueError(f"a chunk of {size} keys")
        pk = self.source.primary_key
        params: dict[str, Any] = dict(where_params or {})
        clauses = [keyset_after(pk, after, params, "a")] if after is not None else []
        if where:
            clauses.append(where)
        base = (f"SELECT {', '.join(map(quote_name, pk))} FROM {quote_name(self.source.table)}"
                + (f" WHERE {' AND '.join(clauses)}" if clauses else ""))
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            order = ", ".join(quote_name(c) for c in pk)
            cursor.execute(_pyformat(f"{base} ORDER BY {order} LIMIT 1 OFFSET {size - 1:d}"),
                           params)
            row = cursor.fetchone()
            if row is not None:
                return tuple(row), True
            # Fewer than `size` keys left: the chunk ends at the last one.
            order = ", ".join(f"{quote_name(c)} DESC" for c in pk)
            cursor.execute(_pyformat(f"{base} ORDER BY {order} LIMIT 1"), params)
            row = cursor.fetchone()
            return (tuple(row), False) if row is not None else (None, False)
        finally:
            cursor.close()

    def root_of(self, record: Record) -> tuple[Any, ...]:
        return tuple(record[c] for c in self.source.primary_key)

    # -- derived values ------------------------------------------------------------
    def attach(self, conn: Connection, rows: list[Record], *, lock: str | None = None) -> None:
        """Add every lookup, embed and aggregate to `rows`, one query per related table."""
        self._attach(conn, rows, lock, joined=False)

    def _attach(self, conn: Connection, rows: list[Record], lock: str | None, *,
                joined: bool) -> None:
        """`attach`; `joined`: the rows were read by `_selects[lock]`, their joinable
        lookups with them."""
        if not rows:
            return
        for group in self._lookup_groups if joined else self._lookup_groups + self._joined:
            _attach_lookup(conn, group, rows, lock)
        for embed in self.source.embeds:
            _attach_embed(conn, embed, rows, lock, *self._embed_groups[embed.name])
        for aggregate in self.source.aggregates:
            _attach_aggregate(conn, aggregate, rows, lock)


_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


def _pyformat(sql: str) -> str:
    """`:name` parameters (SQLAlchemy text) as `%(name)s` (PyMySQL); identifiers here are
    plain names, so the only `%` and `:` are ours."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def _datetime_value(text: str | bytes) -> datetime | str:
    """PyMySQL's DATETIME/TIMESTAMP decoding, faster for MySQL's own spellings
    (`YYYY-MM-DD hh:mm:ss` and its 6-digit fraction) through C's fromisoformat;
    anything else, zero dates included, is PyMySQL's own `convert_datetime`."""
    if type(text) is str and (len(text) == 19 or (len(text) == 26 and text[19] == ".")) \
            and text[4] == text[7] == "-" and text[10] == " " and text[13] == text[16] == ":":
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return pymysql.converters.convert_datetime(text)


_DATETIME_TYPES = (pymysql.constants.FIELD_TYPE.DATETIME, pymysql.constants.FIELD_TYPE.TIMESTAMP)


def _fast_decoders(decoders: dict[int, Any]) -> dict[int, Any]:
    """The connection's decoders with the faster DATETIME one, where it used PyMySQL's."""
    fast = dict(decoders)
    for field_type in _DATETIME_TYPES:
        if fast.get(field_type) is pymysql.converters.convert_datetime:
            fast[field_type] = _datetime_value
    return fast


def run_text(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    """Execute generated SQL without SQLAlchemy's compiled cache: IN lists make each
    text different, and the cache would keep hundreds of them (about 1 MB each)."""
    return conn.execute(sa.text(sql), params, execution_options={"compiled_cache": None})


class _RowsFromBytes(pymysql.connections.MySQLResult):
    """PyMySQL's result, each row parsed straight from its packet's bytes: the same
    values (same decoders, same NULLs, same handling of a short row), without one
    method call per column to read its length and its bytes, and, for a row packet
    already in the connection's buffer, without a packet object."""

    def _read_rowdata_packet(self) -> None:
        """PyMySQL's loop over the row packets, to the EOF packet. A packet whose header and
        first byte are in the read buffer (`peek`, which reads nothing away) and that is a
        plain row (its sequence number the expected one, shorter than the 16 MB that
        splits a packet, its first byte no EOF or error marker) is read whole with
        PyMySQL's `_read_bytes` and parsed in place; any other packet, or a buffer holding
        less, is left to PyMySQL's `_read_packet` and its checks, errors and EOF handling."""
        connection: Any = getattr(self, "connection")  # noqa: B009 - untyped in PyMySQL
        peek = connection._rfile.peek
        read_bytes = connection._read_bytes
        parse = self._row
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        while True:
            try:
                head = peek(5)
            except OSError:
                head = b""  # PyMySQL's own read below meets the error and handles it
            if len(head) >= 5 and head[3] == connection._next_seq_id and head[4] < 0xFE:
                length = head[0] | head[1] << 8 | head[2] << 16
                if length < pymysql.connections.MAX_PACKET_LEN:
                    data = read_bytes(4 + length)
                    connection._next_seq_id = (head[3] + 1) % 256
                    append(parse(data, 4))
                    continue
            packet = connection._read_packet()
            if self._check_packet_is_eof(packet):
                self.connection = None  # as PyMySQL: no cycle left through the connection
                break
            append(parse(packet._data, packet._position))
        self.affected_rows = len(rows)
        self.rows = tuple(rows)

    def _read_row_from_packet(self, packet: Any) -> tuple[Any, ...]:
        return self._row(packet._data, packet._position)

    def _row(self, data: bytes, position: int) -> tuple[Any, ...]:
        """The row whose columns start at `position` of `data`."""
        end = len(data)
        row: list[Any] = []
        append = row.append
        for encoding, converter in self.converters:
            if position >= end:
                break  # no more columns in this row (PyMySQL does the same)
            first = data[position]
            if first < 251:
                length = first
                position += 1
            elif first == 251:  # NULL
                position += 1
                append(None)
                continue
            else:
                width = 2 if first == 252 else 3 if first == 253 else 8
                length = int.from_bytes(data[position + 1:position + 1 + width], "little")
                position += 1 + width
            value: Any = data[position:position + length]
            if len(value) != length:
                raise AssertionError(f"row data ends {length - len(value)} bytes short")
            position += length
            if encoding is not None:
                value = value.decode(encoding)
            if converter is not None:
                value = converter(value)
            append(value)
        return tuple(row)


def _select(driver: Any, cursor: Any, sql: str, params: dict[str, Any]) -> tuple[Any, Any]:
    """(description, rows) of a SELECT: `Connection.query` with `_RowsFromBytes` as its
    result (PyMySQL builds its own result class inside; this is its three steps)."""
    query = cursor.mogrify(sql, params)
    driver._execute_command(pymysql.constants.COMMAND.COM_QUERY,
                            query.encode(driver.encoding) if isinstance(query, str) else query)
    driver._result = None
    result = _RowsFromBytes(driver)
    result.read()
    driver._result = result
    if result.server_status is not None:
        driver.server_status = result.server_status
    return result.description, result.rows or ()


def raw_query(conn: Connection, sql: str, params: dict[str, Any]) -> list[Record]:
    """Run a SELECT on the connection's DBAPI cursor; rows as dicts.

    Every read of records goes this way: a text query has no column types, so
    SQLAlchemy would hand back the driver's values unchanged, after parsing the
    statement's parameters and building a row object per row (most of the time of an
    IN list of a thousand keys). tests/integration/source/test_record_paths.py holds
    it to SQLAlchemy's answer."""
    names, rows = raw_rows(conn, sql, params)
    return [dict(zip(names, row, strict=True)) for row in rows]


def raw_rows(conn: Connection, sql: str, params: dict[str, Any]
             ) -> tuple[list[str], Sequence[tuple[Any, ...]]]:
    """`raw_query`'s rows as they come, tuples, with their column names: for rows read
    only to take a few values from (a lookup's related rows), not worth a dict each."""
    driver = conn.connection.driver_connection
    cursor = driver.cursor()  # type: ignore[union-attr]
    decoders = getattr(driver, "decoders", None)
    try:
        if isinstance(decoders, dict) and isinstance(driver, pymysql.connections.Connection):
            # PyMySQL picks each column's decoder when the result's description
            # arrives: swap the decoders for just that long (the connection goes back
            # to the pool as it came).
            driver.decoders = _fast_decoders(decoders)
            try:
                description, rows = _select(driver, cursor, _pyformat(sql), params)
            finally:
                driver.decoders = decoders
        else:
            cursor.execute(_pyformat(sql), params)
            description, rows = cursor.description, cursor.fetchall()
        return [d[0] for d in description], rows
    finally:
        cursor.close()


def keyset_after(pk: Sequence[str], key: Sequence[Any], params: dict[str, Any],
                  prefix: str) -> str:
    """`pk > key` for a composite key, spelled so that MySQL and MariaDB use the index."""
    ors = []
    for i in range(len(pk)):
        ands = []
        for j in range(i):
            params[f"{prefix}{j}"] = key[j]
            ands.append(f"{quote_name(pk[j])} = :{prefix}{j}")
        params[f"{prefix}{i}"] = key[i]
        ands.append(f"{quote_name(pk[i])} > :{prefix}{i}")
        ors.append("(" + " AND ".join(ands) + ")")
    return "(" + " OR ".join(ors) + ")"


def _row_keys(rows: Sequence[Record], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """Each row's values of `columns` (None where it has none), in the rows' order."""
    if len(columns) == 1:
        column = columns[0]
        return [(row.get(column),) for row in rows]
    return [tuple(row.get(c) for c in columns) for row in rows]


def _distinct_keys(row_keys: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The keys to look up: each once, in first-seen order, none holding a NULL."""
    return [key for key in dict.fromkeys(row_keys) if None not in key]


def _attach_lookup(conn: Connection, group: _LookupGroup, rows: list[Record],
                   lock: str | None = None) -> None:
    source_cols = [src for _, src in group.on]
    target_cols = [tgt for tgt, _ in group.on]
    row_keys = _row_keys(rows, source_cols)
    keys = _distinct_keys(row_keys)
    found: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    values: list[tuple[str, int]] = []  # (record name, its position in a related row)
    if keys:
        params: dict[str, Any] = {}
        select = ", ".join(quote_name(c) for c in dict.fromkeys(
            target_cols + [col for _, col in group.columns]))
        sql = (f"SELECT {select} FROM {quote_name(group.table)} "
               f"WHERE {in_clause(target_cols, keys, params, 'l')}{LOCKS[lock]}")
        names, related_rows = raw_rows(conn, sql, params)
        position = {name: i for i, name in enumerate(names)}
        values = [(name, position[column]) for name, column in group.columns]
        if len(target_cols) == 1:
            at = position[target_cols[0]]
            found = {(related[at],): related for related in related_rows}
        else:
            ats = [position[c] for c in target_cols]
            found = {tuple(related[i] for i in ats): related for related in related_rows}
    for row, key in zip(rows, row_keys, strict=True):
        related_row = found.get(key)
        if related_row is None:
            for name, _ in group.columns:
                row[name] = None
        else:
            for name, at in values:
                row[name] = related_row[at]


def _attach_embed(conn: Connection, embed: Embed, rows: list[Record], lock: str | None,
                  joined: Sequence[_LookupGroup], separate: Sequence[_LookupGroup]) -> None:
    """The embed's children of `rows`, their lookups read in their SELECT (`joined`) or
    by their own queries (`separate`)."""
    source_cols = [src for _, src in embed.on]
    target_cols = [tgt for tgt, _ in embed.on]
    row_keys = _row_keys(rows, source_cols)
    keys = _distinct_keys(row_keys)
    children: dict[tuple[Any, ...], list[Record]] = defaultdict(list)
    if keys:
        params: dict[str, Any] = {}
        wanted = dict.fromkeys(target_cols + [c for _, c in embed.columns] + list(embed.order_by)
                               + [src for lk in embed.lookups for _, src in lk.on])
        order = ", ".join(map(quote_name, target_cols + list(embed.order_by)))
        sql = (f"SELECT {', '.join(map(quote_name, wanted))}"
               f"{_subqueries(embed.table, joined, lock)} FROM {quote_name(embed.table)} "
               f"WHERE {in_clause(target_cols, keys, params, 'e')} ORDER BY {order}"
               f"{LOCKS[lock]}")
        fetched = raw_query(conn, sql, params)
        for group in separate:
            _attach_lookup(conn, group, fetched, lock)
        for child, child_key in zip(fetched, _row_keys(fetched, target_cols), strict=True):
            children[child_key].append(child)
    names = [(attr, col) for attr, col in embed.columns] + [(lk.name, lk.name)
                                                           for lk in embed.lookups]
    for row, key in zip(rows, row_keys, strict=True):
        related = children.get(key, [])
        if embed.limit is not None:
            related = related[: embed.limit]
        row[embed.name] = [
            {attr: child[col] for attr, col in names if child.get(col) is not None}
            for child in related
        ]


def _attach_aggregate(conn: Connection, aggregate: Aggregate, rows: list[Record],
                      lock: str | None = None) -> None:
    source_cols = [src for _, src in aggregate.on]
    target_cols = [tgt for tgt, _ in aggregate.on]
    row_keys = _row_keys(rows, source_cols)
    keys = _distinct_keys(row_keys)
    results: dict[tuple[Any, ...], Any] = {}
    if keys:
        params: dict[str, Any] = {}
        function = aggregate.function.upper()
        expr = "COUNT(*)" if aggregate.function == "count" else \
            f"{function}({quote_name(aggregate.column or '')})"
        group_by = ", ".join(map(quote_name, target_cols))
        sql = (f"SELECT {group_by}, {expr} AS value FROM {quote_name(aggregate.table)} "
               f"WHERE {in_clause(target_cols, keys, params, 'g')} GROUP BY {group_by}"
               f"{LOCKS[lock]}")
        for related in raw_query(conn, sql, params):
            results[tuple(related[c] for c in target_cols)] = related["value"]
    empty = 0 if aggregate.function == "count" else None
    for row, key in zip(rows, row_keys, strict=True):
        row[aggregate.name] = results.get(key, empty)


def readers(contract: Contract) -> dict[str, RecordReader]:
    """A reader per entity that has a MySQL source."""
    return {e.name: RecordReader(contract, e) for e in contract.source_entities()}
