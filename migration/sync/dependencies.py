"""Which items a MySQL row change affects, read off the contract.

Because lookups, embeds and aggregates are declared, the toolkit knows which
items depend on which rows: a change to `users.email` moves the User item and
every Order and CartItem of that user; a change to `products.price` rewrites
every cart line holding the product; renaming a category moves its children.
`DependencyGraph.affected_roots` turns row changes into the root rows (source
primary keys) of every entity whose items must be recomputed, with one query
per dependency, under shared locks so the set cannot change before the
caller's DynamoDB write lands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from migration.contract.model import Contract, Entity
from migration.source.catalog import Catalog
from migration.source.records import LOCKS, in_clause, quote_name, raw_query

Key = tuple[Any, ...]


@dataclass(frozen=True)
class RowChange:
    """One source row before and after a change (None: it did not / does not exist)."""

    table: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None

    def touches(self, columns: Iterable[str] | None) -> bool:
        """True when the change is an insert or delete, or alters one of `columns`
        (None: any column)."""
        if self.before is None or self.after is None:
            return True
        if columns is None:
            return dict(self.before) != dict(self.after)
        return any(self.before.get(c) != self.after.get(c) for c in columns)

    def values(self, columns: Sequence[str]) -> list[Key]:
        """The distinct, non-NULL values of `columns` before and after the change."""
        out: list[Key] = []
        for row in (self.before, self.after):
            if row is None:
                continue
            key = tuple(row.get(c) for c in columns)
            if None not in key and key not in out:
                out.append(key)
        return out


@dataclass(frozen=True)
class _Rule:
    """`entity`'s items read `table`: a change there affects the roots this rule finds."""

    entity: Entity
    table: str
    kind: str  # own | lookup | embed | embed_lookup | aggregate
    relevant: tuple[str, ...] | None  # columns whose change matters (None: any)
    related_columns: tuple[str, ...]  # columns of the changed row that identify roots
    root_columns: tuple[str, ...]  # columns of the root table (or of the embed table) they match
    via_table: str | None = None  # embed_lookup: the embedded table joining to the root
    via_on: tuple[tuple[str, str], ...] = ()  # embed_lookup: (embed column, root column)


class DependencyGraph:
    """The contract's dependency rules, indexed by MySQL table."""

    def __init__(self, contract: Contract):
        self.contract = contract
        rules: dict[str, list[_Rule]] = defaultdict(list)
        for entity in contract.source_entities():
            source = entity.source
            assert source is not None
            rules[source.table].append(_Rule(entity, source.table, "own", None,
                                             source.primary_key, source.primary_key))
            for lookup in source.lookups:
                tgt = tuple(t for t, _ in lookup.on)
                src = tuple(s for _, s in lookup.on)
                rules[lookup.table].append(_Rule(entity, lookup.table, "lookup",
                                                 tgt + (lookup.column,), tgt, src))
            for embed in source.embeds:
                tgt = tuple(t for t, _ in embed.on)
                src = tuple(s for _, s in embed.on)
                cols = tgt + tuple(c for _, c in embed.columns) + embed.order_by + tuple(
                    s for lk in embed.lookups for _, s in lk.on)
                rules[embed.table].append(_Rule(entity, embed.table, "embed", cols, tgt, src))
                for lookup in embed.lookups:
                    ltgt = tuple(t for t, _ in lookup.on)
                    lsrc = tuple(s for _, s in lookup.on)
                    rules[lookup.table].append(_Rule(
                        entity, lookup.table, "embed_lookup", ltgt + (lookup.column,), ltgt,
                        lsrc, via_table=embed.table, via_on=embed.on))
            for aggregate in source.aggregates:
                tgt = tuple(t for t, _ in aggregate.on)
                src = tuple(s for _, s in aggregate.on)
                relevant = None if aggregate.function == "count" else \
                    tgt + ((aggregate.column,) if aggregate.column else ())
                rules[aggregate.table].append(_Rule(entity, aggregate.table, "aggregate",
                                                    relevant if aggregate.function != "count"
                                                    else tgt, tgt, src))
        self._rules = dict(rules)

    def tables(self) -> set[str]:
        """Every MySQL table some item reads."""
        return set(self._rules)

    def entities_reading(self, table: str) -> set[str]:
        return {rule.entity.name for rule in self._rules.get(table, [])}

    def affected_roots(self, conn: Connection, changes: Sequence[RowChange], *,
                       entities: set[str] | None = None,
                       lock: str | None = "update") -> dict[str, set[Key]]:
        """Root keys, per entity, of every item the changes may alter.

        `entities` limits the answer (entities in `mysql_only` need nothing). The
        root rows found are locked (exclusively by default): whoever recomputes an
        item holds its root, so two writers of one item take turns.
        """
        roots: dict[str, set[Key]] = defaultdict(set)
        pending: dict[_Rule, list[Key]] = defaultdict(list)
        for change in changes:
            for rule in self._rules.get(change.table, []):
                if entities is not None and rule.entity.name not in entities:
                    continue
                if not change.touches(rule.relevant):
                    continue
                values = change.values(rule.related_columns)
                if rule.kind == "own":
                    roots[rule.entity.name].update(values)
                else:
                    pending[rule].extend(v for v in values if v not in pending[rule])
        for rule, values in pending.items():
            if values:
                roots[rule.entity.name].update(self._query(conn, rule, values, lock))
        return dict(roots)

    def _query(self, conn: Connection, rule: _Rule, values: list[Key],
               lock: str | None) -> set[Key]:
        source = rule.entity.source
        assert source is not None
        pk = source.primary_key
        params: dict[str, Any] = {}
        found: set[Key] = set()
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            if rule.kind == "embed_lookup":
                assert rule.via_table is not None
                join = " AND ".join(f"m.{quote_name(e)} = r.{quote_name(r)}"
                                    for e, r in rule.via_on)
                where = in_clause(rule.root_columns, chunk, params, "d", alias="m")
                select = ", ".join(f"r.{quote_name(c)}" for c in pk)
                sql = (f"SELECT {select} FROM {quote_name(source.table)} r "
                       f"JOIN {quote_name(rule.via_table)} m ON {join} WHERE {where}{LOCKS[lock]}")
            else:
                where = in_clause(rule.root_columns, chunk, params, "d")
                sql = (f"SELECT {', '.join(map(quote_name, pk))} FROM {quote_name(source.table)} "
                       f"WHERE {where}{LOCKS[lock]}")
            found.update(tuple(row.values()) for row in raw_query(conn, sql, params))
            params.clear()
        return found


def unprotected(contract: Contract, catalog: Catalog,
                entities: Iterable[str] | None = None) -> list[str]:
    """The lookups, embeds and aggregates of the (named) source entities that no
    foreign key backs, one sentence each.

    Dual-write relies on foreign keys for rows found through these: inserting a child
    row (or pointing one at another parent) takes a shared lock on its parent, which a
    writer changing the parent holds exclusively, so no child slips in between the
    writer's query for the children and its commit. Without the key a cart line added
    while its user's email changes can keep the old email in DynamoDB until reconcile
    repairs it.
    """
    wanted = None if entities is None else set(entities)
    found: list[str] = []

    def backed(child: str, parent: str, pairs: Iterable[tuple[str, str]]) -> bool:
        """A foreign key of `child` referencing `parent` on exactly these
        (child column, parent column) pairs."""
        expected = set(pairs)
        return any(fk.child == child and set(zip(fk.child_columns, fk.parent_columns,
                                                  strict=True)) == expected
                   for fk in catalog.foreign_keys if fk.parent == parent)

    def note(entity: str, kind: str, name: str, child: str, parent: str,
             pairs: Sequence[tuple[str, str]]) -> None:
        if child not in catalog.primary_keys or parent not in catalog.primary_keys:
            return  # not this database's tables (yet): nothing can dual-write them
        if backed(child, parent, pairs):
            return
        columns = ", ".join(c for c, _ in pairs)
        targets = ", ".join(p for _, p in pairs)
        found.append(f"{entity}'s {kind} {name!r}: no foreign key {child}({columns}) -> "
                     f"{parent}({targets}); a {child} row written while its {parent} row "
                     f"changes can leave a stale item until reconcile repairs it")

    for entity in contract.source_entities():
        if wanted is not None and entity.name not in wanted:
            continue
        source = entity.source
        assert source is not None
        for lookup in source.lookups:
            note(entity.name, "lookup", lookup.name, source.table, lookup.table,
                 [(s, t) for t, s in lookup.on])
        for embed in source.embeds:
            note(entity.name, "embed", embed.name, embed.table, source.table,
                 [(t, s) for t, s in embed.on])
            for lookup in embed.lookups:
                note(entity.name, f"embed {embed.name!r} lookup", lookup.name, embed.table,
                     lookup.table, [(s, t) for t, s in lookup.on])
        for aggregate in source.aggregates:
            note(entity.name, "aggregate", aggregate.name, aggregate.table, source.table,
                 [(t, s) for t, s in aggregate.on])
    return found
