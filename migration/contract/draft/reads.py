"""How a SELECT becomes an access pattern: which key serves it (the table's own, or a
GSI keyed by the column compared with `=` and sorted by the range or ORDER BY column),
its parameters, range condition and filters, and its name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from migration.contract.draft.plan import EntityPlan, IndexPlan, PatternPlan, Unmapped
from migration.source.statements import ColumnRef, Predicate, Statement, TableRef
from migration.source.tables import SourceSchema, SourceTable

# Field types a key attribute can hold (as S, N or B).
KEYABLE = ("string", "integer", "decimal", "datetime", "uuid", "binary")
_RANGE_WORDS = {"<": "before", "<=": "until", ">": "after", ">=": "since",
                "between": "between", "begins_with": "prefix"}
_PARAMETER_TYPES = {"object": "object", "array": "array"}


@dataclass
class Read:
    """What one SELECT asks of an entity."""

    equal: list[str]
    ranges: list[tuple[str, str, Predicate]]  # (column, operator, predicate)
    others: list[tuple[str, str, Predicate]]
    order: list[tuple[str, bool]]
    limit: int | None


class ReadDesign:
    """The designer's reads; `schema`, `single` (the layout) come from the designer."""

    schema: SourceSchema
    single: bool

    def resolve(self, statement: Statement, column: ColumnRef
                ) -> tuple[TableRef, SourceTable, str] | None:
        """The table reference, table and column a column reference names (None when it
        cannot be told: an unknown qualifier, or a bare name several tables share)."""
        refs = statement.tables
        if column.qualifier is not None:
            candidates = [r for r in refs if r.answers_to(column.qualifier)]
        else:
            candidates = list(refs)
        owners = []
        for ref in candidates:
            table = self.schema.table(ref.name)
            if table is not None and (found := table.column(column.name)) is not None:
                owners.append((ref, table, found.name))
        return owners[0] if len(owners) == 1 else None

    def read_of(self, entity: EntityPlan, statement: Statement, where: list[Predicate]) -> Read:
        equal: list[str] = []
        ranges: list[tuple[str, str, Predicate]] = []
        others: list[tuple[str, str, Predicate]] = []
        for predicate in where:
            if predicate.other is not None:
                raise Unmapped("a comparison of two columns")
            found = self.resolve(statement, predicate.column)
            if found is None:
                raise Unmapped(f"column {predicate.column.name!r} cannot be told apart")
            ref, table, column = found
            if ref is not statement.table:
                raise Unmapped(f"a condition on the joined table {table.name}")
            operator = predicate.operator
            if operator == "=":
                if column not in equal:
                    equal.append(column)
            elif operator in ("<", "<=", ">", ">=", "between"):
                ranges.append((column, operator, predicate))
            elif operator == "like" and _is_prefix(predicate.pattern):
                ranges.append((column, "begins_with", predicate))
            else:
                others.append((column, operator, predicate))
        order = []
        for order_column, descending in statement.order_by:
            found = self.resolve(statement, order_column)
            if found is None or found[0] is not statement.table:
                raise Unmapped("ORDER BY a column of another table")
            order.append((found[2], descending))
        return Read(equal, ranges, others, order, statement.limit)

    def read_pattern(self, entity: EntityPlan, read: Read) -> PatternPlan:
        key = [c.lower() for c in entity.key]
        equal = {c.lower() for c in read.equal}
        if set(key) <= equal:
            params = [self.parameter(entity, c) for c in entity.key]
            extra = [c for c in read.equal if c.lower() not in key] + \
                [c for c, _, _ in read.ranges + read.others]
            checks = [f"MySQL also checks {', '.join(dict.fromkeys(extra))} (check the item "
                      "read)"] if extra else []
            return PatternPlan("GetItem", params, "single_entity", f"get_{entity.snake}",
                               remarks=checks)
        in_key = [(c, p) for c, op, p in read.others if op == "in" and c.lower() in key]
        if len(entity.key) == 1 and in_key and not read.equal and not read.ranges and \
                len(read.others) == 1:
            column = entity.key[0]
            return PatternPlan("BatchGetItem",
                               [{"name": f"{column}s", "type": "array",
                                 "item_type": self.parameter(entity, column)["type"]}],
                               "entity_list", f"get_{entity.plural}_batch")
        sort_candidates = [c for c, op, _ in read.ranges] + \
            [c for c, _ in read.order if c.lower() not in equal]
        partition = self.partition_for(entity, read)
        if partition is None:
            return self.scan(entity, read)
        sort = sort_candidates[0] if sort_candidates else None
        if sort is not None and entity.type_of(sort) not in KEYABLE:
            sort = None
        index = self.target(entity, partition, sort)
        key_columns = self.key_columns(entity, index)
        params = [self.parameter(entity, c) for c in self.partition_columns(entity, index)]
        range_condition = None
        filters: list[dict[str, Any]] = []
        remarks: list[str] = []
        given = self.given_sort_columns(entity, index, read.equal)
        for column in read.equal:
            if column.lower() in {p["name"].lower() for p in params}:
                continue
            params.append(self.parameter(entity, column))
            if column.lower() in key_columns:
                if column.lower() not in given:
                    raise Unmapped(f"compares key column {column} but not the key columns "
                                   "before it")
            else:
                filters.append({"field": column, "operator": "=", "param": column})
        for column, operator, predicate in read.ranges:
            if range_condition is None and sort is not None and column.lower() == sort.lower():
                range_condition = operator
                params += self.range_parameters(entity, column, operator)
                if operator == "begins_with" and predicate.pattern is None:
                    remarks.append(f"LIKE on {column} read as a prefix (the digest hides the "
                                   "pattern)")
            else:
                filters += self.range_filter(entity, column, operator, predicate, params)
        for column, operator, predicate in read.others:
            filters.append(self.other_filter(entity, column, operator, predicate, params))
        order = [c for c, _ in read.order]
        if order and (sort is None or order[0].lower() != sort.lower()):
            remarks.append(f"MySQL orders by {', '.join(order)}; the items come in sort-key order")
        if any(descending for _, descending in read.order[:1]):
            remarks.append("MySQL reads in descending order: read the index backwards "
                           "(ScanIndexForward false)")
        single = self.is_unique_partition(entity, index, partition) or read.limit == 1
        hint = self.query_name(entity, single, [p["name"] for p in params], range_condition,
                               filters)
        return PatternPlan("Query", params, "single_entity" if single else "entity_list", hint,
                           index=index, range_condition=range_condition, filters=filters,
                           limit=read.limit if read.limit and read.limit > 1 else None,
                           remarks=remarks)

    def scan(self, entity: EntityPlan, read: Read) -> PatternPlan:
        params: list[dict[str, Any]] = []
        filters: list[dict[str, Any]] = []
        for column in read.equal:
            params.append(self.parameter(entity, column))
            filters.append({"field": column, "operator": "=", "param": column})
        for column, operator, predicate in read.ranges:
            filters += self.range_filter(entity, column, operator, predicate, params)
        for column, operator, predicate in read.others:
            filters.append(self.other_filter(entity, column, operator, predicate, params))
        remarks = ["a Scan reads the whole table"]
        if filters:
            remarks.append("no condition can be a key: consider a GSI, or a key default "
                           "(`{column|ROOT}`) for IS NULL")
        name = f"scan_{entity.plural}" + (
            "_where_" + "_and_".join(dict.fromkeys(f["field"] for f in filters)) if filters else "")
        return PatternPlan("Scan", params, "entity_list", name,
                           filters=filters, limit=read.limit if read.limit and read.limit > 1 else None,
                           remarks=remarks)

    def partition_for(self, entity: EntityPlan, read: Read) -> str | None:
        """The column compared with `=` that becomes the partition key: the table's own
        first key column, else a unique column, an indexed one, a foreign key, any."""
        candidates = [c for c in read.equal if entity.type_of(c) in KEYABLE]
        if not candidates:
            return None
        first = entity.key[0].lower()
        for column in candidates:
            if column.lower() == first:
                return column

        def rank(column: str) -> tuple[int, int]:
            lower = column.lower()
            unique = any(len(ix.columns) == 1 and ix.columns[0].lower() == lower
                         for ix in entity.table.unique_indexes)
            indexed = any(ix.columns[0].lower() == lower for ix in entity.table.indexes)
            foreign = entity.table.foreign_key((column,)) is not None
            return (0 if unique else 1 if indexed else 2 if foreign else 3,
                    candidates.index(column))

        return min(candidates, key=rank)

    def target(self, entity: EntityPlan, partition: str, sort: str | None) -> IndexPlan | None:
        """The base table when its key serves (partition, sort), else a GSI of the entity."""
        base_sort = entity.key[1] if len(entity.key) > 1 else None
        if partition.lower() == entity.key[0].lower() and (
                sort is None or (base_sort is not None and sort.lower() == base_sort.lower())):
            return None
        for gsi in entity.gsis:
            if gsi.partition.lower() == partition.lower() and (
                    sort is None or (gsi.sort or "").lower() == sort.lower()):
                return gsi
        gsi = IndexPlan(partition=partition, sort=sort)
        entity.gsis.append(gsi)
        return gsi

    def partition_columns(self, entity: EntityPlan, index: IndexPlan | None) -> list[str]:
        return [entity.key[0]] if index is None else [index.partition]

    def key_columns(self, entity: EntityPlan, index: IndexPlan | None) -> set[str]:
        """Columns that take part in the key condition of the queried table or index."""
        if index is None:
            return {c.lower() for c in entity.key}
        return {index.partition.lower()} | {c.lower() for c in self.sort_columns(entity, index)}

    def sort_columns(self, entity: EntityPlan, index: IndexPlan | None) -> list[str]:
        """The columns of the queried table's or index's sort key, in template order."""
        if index is None:
            return list(entity.key[1:])
        if index.sort is not None:
            return [index.sort]
        return self.gsi_sort_key(entity, index) if self.single else []

    def given_sort_columns(self, entity: EntityPlan, index: IndexPlan | None,
                           equal: Sequence[str]) -> set[str]:
        """Sort-key columns a Query can compare: the leading run of those given with `=`."""
        wanted = {c.lower() for c in equal}
        given: set[str] = set()
        for column in self.sort_columns(entity, index):
            if column.lower() not in wanted:
                break
            given.add(column.lower())
        return given

    def gsi_sort_key(self, entity: EntityPlan, gsi: IndexPlan) -> list[str]:
        """Single-table, a GSI without a sort column: the entity's key columns besides the
        partition one keep its items apart and in key order."""
        rest = [c for c in entity.key if c.lower() != gsi.partition.lower()]
        return rest or list(entity.key)

    def is_unique_partition(self, entity: EntityPlan, index: IndexPlan | None, partition: str) -> bool:
        if index is None:
            return len(entity.key) == 1
        return entity.table.is_unique((partition,))

    def parameter(self, entity: EntityPlan, column: str) -> dict[str, Any]:
        kind = entity.type_of(column)
        return {"name": column, "type": _PARAMETER_TYPES.get(kind, kind)}

    def range_parameters(self, entity: EntityPlan, column: str, operator: str) -> list[dict[str, Any]]:
        kind = self.parameter(entity, column)["type"]
        if operator == "between":
            return [{"name": f"{column}_from", "type": kind}, {"name": f"{column}_to", "type": kind}]
        if operator == "begins_with":
            return [{"name": f"{column}_prefix", "type": "string"}]
        return [{"name": column, "type": kind}]

    def range_filter(self, entity: EntityPlan, column: str, operator: str, predicate: Predicate,
                     params: list[dict[str, Any]]) -> list[dict[str, Any]]:
        new = self.range_parameters(entity, column, operator)
        names = {p["name"] for p in params}
        new = [p for p in new if p["name"] not in names]
        params += new
        if operator == "between":
            return [{"field": column, "operator": "between", "param": f"{column}_from",
                     "param2": f"{column}_to"}]
        if operator == "begins_with":
            return [{"field": column, "function": "begins_with", "param": f"{column}_prefix"}]
        return [{"field": column, "operator": operator, "param": column}]

    def other_filter(self, entity: EntityPlan, column: str, operator: str, predicate: Predicate,
                     params: list[dict[str, Any]]) -> dict[str, Any]:
        if operator == "is_null":
            return {"field": column, "function": "attribute_not_exists"}
        if operator == "is_not_null":
            return {"field": column, "function": "attribute_exists"}
        if operator == "<>":
            params.append(self.parameter(entity, column))
            return {"field": column, "operator": "<>", "param": column}
        if operator == "like" and predicate.pattern is not None and \
                re.fullmatch(r"%[^%_]+%", predicate.pattern):
            params.append({"name": f"{column}_part", "type": "string"})
            return {"field": column, "function": "contains", "param": f"{column}_part"}
        if operator == "in" and predicate.values > 0:
            names = [f"{column}_{i + 1}" for i in range(predicate.values)]
            params += [{"name": n, "type": self.parameter(entity, column)["type"]} for n in names]
            return {"field": column, "operator": "in", "params": names}
        described = {"in": "an IN list of unknown length", "not_in": "NOT IN",
                     "like": "a LIKE pattern that is not a prefix", "regexp": "REGEXP"}
        raise Unmapped(f"{described.get(operator, operator)} on {column}")

    def query_name(self, entity: EntityPlan, single: bool, params: list[str],
                   range_condition: str | None, filters: list[dict[str, Any]]) -> str:
        filtered = {f["field"] for f in filters}
        keys = [p for p in params if p not in filtered and not p.endswith(("_from", "_to",
                                                                            "_prefix"))]
        if range_condition is not None and keys and keys[-1] not in filtered and \
                range_condition not in ("between", "begins_with"):
            keys = keys[:-1]
        name = f"{'get_' + entity.snake if single else 'list_' + entity.plural}_by_" + \
            "_and_".join(keys)
        if range_condition is not None:
            name += "_" + _RANGE_WORDS.get(range_condition, "range")
        if filtered:
            name += "_where_" + "_and_".join(dict.fromkeys(f["field"] for f in filters))
        return name


def _is_prefix(pattern: str | None) -> bool:
    """A LIKE pattern that is a plain prefix (`abc%`); None (a digest's `?`) counts as one."""
    if pattern is None:
        return True
    return bool(re.fullmatch(r"[^%_]+%", pattern))
