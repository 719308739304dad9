"""Checks of an entity's `source` in MySQL: its table and primary key, lookups, embeds,
aggregates and unique attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migration.contract.model import (
    AGGREGATE_FUNCTIONS,
    Aggregate,
    Embed,
    Lookup,
    Source,
)
from migration.contract.validation.checker import (
    _AGGREGATE_KEYS,
    _EMBED_KEYS,
    _IDENTIFIER,
    _LOOKUP_KEYS,
    _SOURCE_KEYS,
    _SQL_NAME,
    Checks,
    _key_path,
)


class SourceChecks(Checks):
    """Checks of an entity's `source` in MySQL: its table and primary key, lookups, embeds,"""

    def source(self, raw: Any, path: str, field_names: set[str]) -> Source | None:
        data = self.mapping(raw, path)
        if data is None:
            return None
        self.unknown_keys(data, _SOURCE_KEYS, path)
        table = self.string(data, "table", path)
        if table is not None and not _SQL_NAME.match(table):
            self.error(f"{path}.table", f"{table!r} is not a MySQL table name")
        if data.get("primary_key") is None:
            self.missing(data, "primary_key", path)
            primary_key: tuple[str, ...] = ()
        else:
            primary_key = self.names(data["primary_key"], f"{path}.primary_key")
            if not primary_key:
                self.error(f"{path}.primary_key", "must name at least one column")
        lookups = self.lookups(data.get("lookups"), f"{path}.lookups")
        embeds = self.embeds(data.get("embeds"), f"{path}.embeds")
        aggregates = self.aggregates(data.get("aggregates"), f"{path}.aggregates")
        unique: tuple[str, ...] = ()
        if data.get("unique") is not None:
            unique = self.names(data["unique"], f"{path}.unique")
            for i, name in enumerate(unique):
                if name not in field_names:
                    self.error(f"{path}.unique[{i}]", f"{name!r} is not a field of the entity")
        derived: dict[str, str] = {}
        for kind, items in (("lookups", lookups), ("embeds", embeds), ("aggregates", aggregates)):
            for item in items:
                if item.name in derived:
                    self.error(_key_path(f"{path}.{kind}", item.name),
                               f"name {item.name!r} is already used by {derived[item.name]}")
                derived[item.name] = kind
        if table is None or not primary_key:
            return None
        return Source(table=table, primary_key=primary_key, lookups=lookups, embeds=embeds,
                      aggregates=aggregates, unique=unique)

    def join_on(self, data: Mapping[str, Any], path: str) -> tuple[tuple[str, str], ...]:
        raw = data.get("on")
        if raw is None:
            self.missing(data, "on", path, " ({related column: source column})")
            return ()
        on = self.mapping(raw, f"{path}.on")
        if on is None:
            return ()
        if not on:
            self.error(f"{path}.on", "must map at least one column")
        pairs = []
        for target, src in on.items():
            if not isinstance(target, str) or not _SQL_NAME.match(target) or \
                    not isinstance(src, str) or not _SQL_NAME.match(src):
                self.error(_key_path(f"{path}.on", str(target)),
                           f"must map a column name to a column name, got {target!r}: {src!r}")
                continue
            pairs.append((target, src))
        return tuple(pairs)

    def named_items(self, raw: Any, path: str) -> list[tuple[str, str, dict[str, Any]]]:
        if raw is None:
            return []
        data = self.mapping(raw, path)
        if data is None:
            return []
        out = []
        for name, body in data.items():
            ipath = _key_path(path, str(name))
            if not isinstance(name, str) or not _IDENTIFIER.match(name):
                self.error(ipath, f"name {name!r} is not an identifier")
                continue
            item = self.mapping(body, ipath)
            if item is not None:
                out.append((name, ipath, item))
        return out

    def lookups(self, raw: Any, path: str) -> tuple[Lookup, ...]:
        out = []
        for name, ipath, data in self.named_items(raw, path):
            self.unknown_keys(data, _LOOKUP_KEYS, ipath)
            table = self.string(data, "table", ipath)
            column = self.string(data, "column", ipath)
            on = self.join_on(data, ipath)
            if table and column and on:
                out.append(Lookup(name=name, table=table, on=on, column=column))
        return tuple(out)

    def embeds(self, raw: Any, path: str) -> tuple[Embed, ...]:
        out = []
        for name, ipath, data in self.named_items(raw, path):
            self.unknown_keys(data, _EMBED_KEYS, ipath)
            table = self.string(data, "table", ipath)
            on = self.join_on(data, ipath)
            columns: list[tuple[str, str]] = []
            raw_cols = data.get("columns")
            if raw_cols is None:
                self.missing(data, "columns", ipath)
            elif isinstance(raw_cols, dict):
                for attr, col in raw_cols.items():
                    if not isinstance(col, str) or not _SQL_NAME.match(col):
                        self.error(_key_path(f"{ipath}.columns", str(attr)),
                                   f"must name a column, got {col!r}")
                    else:
                        columns.append((str(attr), col))
            else:
                columns = [(c, c) for c in self.names(raw_cols, f"{ipath}.columns")]
            primary_key = self.names(data.get("primary_key", ["id"]), f"{ipath}.primary_key")
            order_by = (self.names(data["order_by"], f"{ipath}.order_by")
                        if data.get("order_by") is not None else primary_key)
            lookups = self.lookups(data.get("lookups"), f"{ipath}.lookups")
            limit = self.positive_int(data, "limit", ipath)
            if table and on and columns:
                out.append(Embed(name=name, table=table, on=on, columns=tuple(columns),
                                 order_by=order_by, primary_key=primary_key, lookups=lookups,
                                 limit=limit))
        return tuple(out)

    def aggregates(self, raw: Any, path: str) -> tuple[Aggregate, ...]:
        out = []
        for name, ipath, data in self.named_items(raw, path):
            self.unknown_keys(data, _AGGREGATE_KEYS, ipath)
            table = self.string(data, "table", ipath)
            on = self.join_on(data, ipath)
            function = self.string(data, "function", ipath, required=False,
                                   choices=AGGREGATE_FUNCTIONS) or "count"
            column = self.string(data, "column", ipath, required=function != "count")
            if table and on:
                out.append(Aggregate(name=name, table=table, on=on, function=function,
                                     column=column))
        return tuple(out)

    # -- access patterns ---------------------------------------------------------




















