"""What joins and key lists say about denormalizing: a join from a child row to its
parent along a foreign key proposes `lookups` (the parent's selected columns copied
into the child's items); a join from a parent to its children, or the children of a
list of parents (`WHERE fk IN (...)`), proposes an `embed` (the children as a list in
the parent's item). Joins no foreign key backs are not proposed."""

from __future__ import annotations

from collections.abc import Sequence

from migration.contract.draft.naming import (
    entity_words,
    field_type,
    identifier,
    plain,
    snake,
    unique_name,
)
from migration.contract.draft.plan import EntityPlan, Unmapped, clip
from migration.contract.draft.reads import ReadDesign
from migration.source.catalog import ForeignKey
from migration.source.statements import Join, Predicate, Statement, StatementCount, TableRef
from migration.source.tables import SourceTable


class JoinDesign(ReadDesign):
    """The designer's lookups and embeds; `entities` comes from the designer."""

    entities: dict[str, EntityPlan]

    def join(self, entity: EntityPlan, statement: Statement, join: Join, where: list[Predicate],
             entry: StatementCount) -> None:
        main, other_ref = statement.table, join.table
        joined = self.schema.table(other_ref.name)
        assert joined is not None and main is not None
        pairs: list[tuple[str, str]] = []  # (column of the main table, column of the joined one)
        for predicate in list(join.on) + [p for p in where if p.other is not None]:
            if predicate.other is None:
                raise Unmapped(f"a condition in the ON clause of the join with {joined.name}")
            left = self.resolve(statement, predicate.column)
            right = self.resolve(statement, predicate.other)
            if left is None or right is None:
                raise Unmapped("a join column that cannot be told apart")
            if left[0] is main and right[0] is other_ref:
                pairs.append((left[2], right[2]))
            elif left[0] is other_ref and right[0] is main:
                pairs.append((right[2], left[2]))
            else:
                continue
            if predicate in where:
                where.remove(predicate)
        if not pairs:
            raise Unmapped(f"a join with {joined.name} that is not on columns of "
                           f"{entity.table.name}")
        own = tuple(p[0] for p in pairs)
        other = tuple(p[1] for p in pairs)
        to_parent = entity.table.foreign_key(own)
        if to_parent is not None and to_parent.parent.lower() == joined.name.lower() and \
                _same_columns(to_parent.parent_columns, _ordered(other, own, to_parent)):
            self.lookups_from(entity, statement, other_ref, joined, to_parent, entry)
            return
        to_child = joined.foreign_key(other)
        if to_child is not None and to_child.parent.lower() == entity.table.name.lower() and \
                _same_columns(to_child.parent_columns, _ordered(own, other, to_child)):
            self.embed(entity, joined, to_child, self.selected(statement, other_ref, joined),
                       entry)
            return
        raise Unmapped(f"a join of {entity.table.name} and {joined.name} that no foreign key "
                       "backs")

    def selected(self, statement: Statement, ref: TableRef, table: SourceTable) -> list[str] | None:
        """The columns of `table` (named `ref` in the statement) a SELECT returns (None: all
        of them, through `*`)."""
        for star in statement.stars:
            if star is None or ref.answers_to(star):
                return None
        out = []
        for column in statement.columns:
            found = self.resolve(statement, column)
            if found is not None and found[0] is ref:
                out.append(found[2])
        return list(dict.fromkeys(out))

    def lookups_from(self, entity: EntityPlan, statement: Statement, ref: TableRef,
                     parent: SourceTable, fk: ForeignKey, entry: StatementCount) -> None:
        columns = self.selected(statement, ref, parent)
        if not plain(parent.name, *fk.child_columns, *fk.parent_columns):
            raise Unmapped(f"lookups in {parent.name}: its table or key columns have names the "
                           "contract cannot hold")
        keys = {c.lower() for c in fk.parent_columns}
        if columns is None:
            entity.notes.append(f"a join reads every column of {parent.name} with "
                                f"{entity.table.name} ({entry.count} time(s)): add lookups for "
                                "the columns worth copying into its items")
            return
        # Named after the foreign key (`seller_id` → seller_name), else the parent table.
        single = fk.child_columns[0] if len(fk.child_columns) == 1 else ""
        prefix = snake(single[:-3]) if single.lower().endswith("_id") and len(single) > 3 \
            else snake("_".join(entity_words(parent.name)))
        for column in columns:
            if column.lower() in keys:
                continue
            existing = next((n for n, lk in entity.lookups.items()
                             if lk["table"] == parent.name and lk["column"] == column), None)
            if existing is not None:
                continue
            names = {f["name"].lower() for f in entity.fields} | {n.lower() for n in entity.lookups}
            name = unique_name(identifier(f"{prefix}_{column}"), set(names))
            parent_column = parent.column(column)
            required = parent_column is not None and not parent_column.nullable and all(
                (c := entity.table.column(n)) is not None and not c.nullable
                for n in fk.child_columns)
            kind = field_type(parent_column)[0] if parent_column is not None else "string"
            entity.lookups[name] = {"table": parent.name,
                                    "on": dict(zip(fk.parent_columns, fk.child_columns,
                                                   strict=True)),
                                    "column": column,
                                    "_why": f"joined {entry.count} time(s): "
                                            f"{clip(statement.text, 120)}"}
            entity.fields.append({"name": name, "type": kind, "required": required})
            entity.types[name.lower()] = kind

    def embed(self, parent: EntityPlan, child: SourceTable, fk: ForeignKey,
              columns: list[str] | None, entry: StatementCount) -> None:
        child_entity = self.entities.get(child.name.lower())
        key = child_entity.key if child_entity is not None else child.primary_key
        if not key:
            raise Unmapped(f"children in {child.name}, which has no primary key, cannot be "
                           "embedded")
        if not plain(child.name, *key, *fk.child_columns, *fk.parent_columns):
            raise Unmapped(f"{child.name} cannot be embedded: its table or key columns have "
                           "names the contract cannot hold")
        join_columns = {c.lower() for c in fk.child_columns}
        wanted = [c.name for c in child.columns] if columns is None else columns
        wanted = [c for c in wanted if c.lower() not in join_columns and plain(c)]
        name = next((n for n, e in parent.embeds.items() if e["table"] == child.name), None)
        if name is not None:
            merged = list(dict.fromkeys(parent.embeds[name]["columns"] + wanted))
            parent.embeds[name]["columns"] = merged
            return
        names = {f["name"].lower() for f in parent.fields}
        name = unique_name(identifier(snake(child.name)), set(names))
        parent.embeds[name] = {"table": child.name,
                               "on": dict(zip(fk.child_columns, fk.parent_columns, strict=True)),
                               "primary_key": list(key), "order_by": list(key),
                               "columns": wanted,
                               "_why": f"read with their {parent.table.name} row "
                                       f"{entry.count} time(s): {clip(entry.statement.text, 120)}"}
        parent.fields.append({"name": name, "type": "array", "item_type": "object",
                              "required": True})
        parent.types[name.lower()] = "array"
        if child_entity is not None:
            parent.notes.append(f"{child.name} rows are embedded in {parent.name} (as {name}) "
                                f"and drafted as {child_entity.name} too: keep both only if "
                                f"something reads {child.name} on their own")

    def embed_from_in_list(self, child: EntityPlan, statement: Statement, column: str,
                           entry: StatementCount) -> bool:
        """`SELECT ... FROM child WHERE fk IN (...)`: the children of a list of parents,
        read after the parents themselves; embedding them serves it."""
        fk = child.table.foreign_key((column,))
        if fk is None:
            return False
        parent = self.entities.get(fk.parent.lower())
        if parent is None or parent is child:
            return False
        assert statement.table is not None
        self.embed(parent, child.table, fk, self.selected(statement, statement.table, child.table),
                   entry)
        return True


def _same_columns(a: Sequence[str], b: Sequence[str]) -> bool:
    return [c.lower() for c in a] == [c.lower() for c in b]


def _ordered(columns: Sequence[str], by: Sequence[str], fk: ForeignKey) -> tuple[str, ...]:
    """`columns` reordered to follow the foreign key's own column order (pairs were
    collected in the statement's order)."""
    pairs = dict(zip([c.lower() for c in by], columns, strict=True))
    order = fk.child_columns if {c.lower() for c in fk.child_columns} == set(pairs) \
        else fk.parent_columns
    return tuple(pairs.get(c.lower(), "") for c in order)
