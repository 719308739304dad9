"""Checks of a contract's access patterns: parameters, operations, key conditions,
filter expressions, and the cross-table patterns (transactions across entities).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from migration.contract.key_conditions import KeyConditionError, key_condition_shape
from migration.contract.keys import KeyTemplate
from migration.contract.model import (
    CROSS_TABLE_OPERATIONS,
    CROSS_TABLE_RETURN_TYPES,
    FILTER_FUNCTIONS,
    FILTER_OPERATORS,
    LOGICAL_OPERATORS,
    OPERATIONS,
    PARAMETER_TYPES,
    RANGE_CONDITIONS,
    RETURN_TYPES,
    AccessPattern,
    CrossTablePattern,
    Entity,
    FilterCondition,
    FilterExpression,
    Index,
    Involvement,
    Parameter,
    Table,
)
from migration.contract.validation.checker import (
    _CONDITION_FUNCTION,
    _IDENTIFIER,
    _PATTERN_KEYS,
    Checks,
    _kind,
    _types_compatible,
    _value_fits,
)


class PatternChecks(Checks):
    """Checks of a contract's access patterns: parameters, operations, key conditions,"""

    def entity_parameter(self, entity_type: str, path: str, table: str | None) -> None:
        """An entity parameter names an entity the pattern can see: of its own table or
        of a table before it (any, for a cross-table pattern, whose `table` is None).
        That is AWS's MCP validator's rule, which reads the tables in order and knows
        only the entities it has met; an earlier table's entity lends its values to a
        PutItem (the ecommerce example's review takes its user's)."""
        visible = self.declared_entities if table is None else self.visible_entities
        if entity_type in visible:
            return
        later = self.declared_entities.get(entity_type)
        if later is None:
            self.error(path, f"entity_type {entity_type!r} is not an entity of the contract")
        else:
            self.error(path, f"entity_type {entity_type!r} is an entity of table {later}, which "
                       f"comes after this pattern's table {table}: an access pattern's entity "
                       "parameters must be entities of its own table or of a table before it "
                       "(as AWS's MCP validator reads a schema); move the table up")

    def parameters(self, raw: Any, path: str, table: str | None = None) -> tuple[Parameter, ...]:
        if raw is None:
            return ()
        items = self.sequence(raw, path)
        if items is None:
            return ()
        out: list[Parameter] = []
        seen: set[str] = set()
        for i, raw_param in enumerate(items):
            ppath = f"{path}[{i}]"
            data = self.mapping(raw_param, ppath)
            if data is None:
                continue
            name = self.string(data, "name", ppath)
            ptype = self.string(data, "type", ppath, choices=PARAMETER_TYPES)
            if name is not None and not _IDENTIFIER.match(name):
                self.error(f"{ppath}.name", f"parameter name {name!r} is not an identifier")
                name = None
            if name is not None:
                if name in seen:
                    self.error(f"{ppath}.name", f"duplicate parameter name {name!r}")
                    continue
                seen.add(name)
            entity_type = None
            if ptype == "entity":
                entity_type = self.string(data, "entity_type", ppath)
                if entity_type is not None:
                    self.entity_parameter(entity_type, f"{ppath}.entity_type", table)
            has_default = "default" in data
            default = data.get("default")
            if has_default and ptype is not None and not _value_fits(default, ptype):
                self.error(f"{ppath}.default", f"default {default!r} is not a {ptype}")
            if name is None or ptype is None:
                continue
            out.append(Parameter(name=name, type=ptype, entity_type=entity_type, default=default,
                                 has_default=has_default, item_type=data.get("item_type")))
        return tuple(out)

    def pattern_id(self, data: Mapping[str, Any], path: str) -> int | None:
        value = data.get("pattern_id")
        if value is None:
            self.missing(data, "pattern_id", path)
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(f"{path}.pattern_id", f"must be an integer, got {_kind(value)}")
            return None
        if value in self.pattern_ids:
            self.error(f"{path}.pattern_id", f"duplicate pattern_id {value} (also at "
                       f"{self.pattern_ids[value]}); pattern ids are unique across the contract")
            return None
        self.pattern_ids[value] = path
        return value

    def access_patterns(self, raw: Any, path: str, entity: Entity, indexes: tuple[Index, ...],
                        table_key: tuple[str, str | None]) -> tuple[AccessPattern, ...]:
        if raw is None:
            return ()
        items = self.sequence(raw, path)
        if items is None:
            return ()
        out: list[AccessPattern] = []
        names: set[str] = set()
        for i, raw_pattern in enumerate(items):
            ppath = f"{path}[{i}]"
            data = self.mapping(raw_pattern, ppath)
            if data is None:
                continue
            pattern = self.access_pattern(data, ppath, entity, indexes, table_key)
            if pattern is None:
                continue
            if pattern.name in names:
                self.error(f"{ppath}.name", f"duplicate access pattern name {pattern.name!r}")
                continue
            names.add(pattern.name)
            out.append(pattern)
        return tuple(out)

    def access_pattern(self, data: Mapping[str, Any], path: str, entity: Entity,
                       indexes: tuple[Index, ...],
                       table_key: tuple[str, str | None]) -> AccessPattern | None:
        self.unknown_keys(data, _PATTERN_KEYS, path)
        table_pk, table_sk = table_key
        errors_before = len(self.issues)
        pattern_id = self.pattern_id(data, path)
        name = self.string(data, "name", path)
        if name is not None and not _IDENTIFIER.match(name):
            self.error(f"{path}.name", f"pattern name {name!r} is not an identifier")
        description = data.get("description") or ""
        operation = self.string(data, "operation", path, choices=OPERATIONS)
        return_type = self.string(data, "return_type", path, choices=RETURN_TYPES)
        params = self.parameters(data.get("parameters"), f"{path}.parameters", entity.table)
        scalar = {p.name for p in params if p.type != "entity"}
        has_entity_param = any(p.type == "entity" for p in params)

        index_name = self.string(data, "index_name", path, required=False)
        index = None
        index_ok = True
        keys_pk: tuple[KeyTemplate, ...] = (entity.pk,)
        keys_sk: tuple[KeyTemplate, ...] = (entity.sk,) if entity.sk is not None else ()
        target_sk: tuple[str, ...] = (table_sk,) if table_sk else ()
        if index_name is not None:
            index = next((ix for ix in indexes if ix.name == index_name), None)
            if index is None:
                listed = ", ".join(ix.name for ix in indexes) or "none"
                self.error(f"{path}.index_name",
                           f"index {index_name!r} is not defined on the table (defined: {listed})")
                index_ok = False
            elif (mapping := entity.index_key(index_name)) is None:
                self.error(f"{path}.index_name",
                           f"entity {entity.name} has no gsi_mappings entry for index {index_name!r}")
                index = None
                index_ok = False
            else:
                keys_pk = mapping.pk or (entity.pk,)
                keys_sk = mapping.sk
                target_sk = index.sort_names
            if operation is not None and operation not in ("Query", "Scan"):
                self.error(f"{path}.index_name", f"index_name only applies to Query and Scan, "
                           f"not {operation}")

        consistent = self.boolean(data, "consistent_read", path) or False
        if consistent and index is not None and index.kind == "GSI":
            self.error(f"{path}.consistent_read",
                       "DynamoDB does not support strongly consistent reads on a global secondary index")

        range_condition = self.string(data, "range_condition", path, required=False,
                                      choices=RANGE_CONDITIONS)
        filter_expr = None
        filter_params: set[str] = set()
        if data.get("filter_expression") is not None:
            key_fields = {n for template in keys_pk + keys_sk for n in template.fields}
            filter_expr = self.filter_expression(data["filter_expression"],
                                                 f"{path}.filter_expression", entity, operation,
                                                 key_fields, {p.name for p in params})
            if filter_expr is not None:
                for cond in filter_expr.conditions:
                    filter_params |= {p for p in (cond.param, cond.param2, *cond.params) if p}

        if range_condition is not None:
            if operation is not None and operation != "Query":
                self.error(f"{path}.range_condition",
                           f"range_condition only applies to Query, not {operation}")
            elif not target_sk:
                self.error(f"{path}.range_condition",
                           "range_condition needs a sort key, and the queried table/index has none")

        if operation == "Query" and index_ok:
            missing = [f for template in keys_pk for f in template.fields if f not in scalar]
            for fname in missing:
                self.error(f"{path}.parameters",
                           f"Query needs a parameter for partition key placeholder {{{fname}}}")
            if not missing and (range_condition is None or target_sk):
                try:
                    shape = key_condition_shape(keys_pk, keys_sk, target_sk,
                                                [p.name for p in params if p.type != "entity"],
                                                filter_params, range_condition)
                except KeyConditionError as err:
                    self.error(f"{path}.parameters", err.reason)
                else:
                    self.warn_unused(f"{path}.parameters", shape.unused)
        if operation == "Scan":
            self.warn_unused(f"{path}.parameters", [p.name for p in params if p.type != "entity"
                                                    and p.name not in filter_params])
        if operation in ("GetItem", "DeleteItem", "UpdateItem") and not has_entity_param:
            self.item_key_parameters(path, operation, entity, table_pk, table_sk, scalar)

        projection: tuple[str, ...] = ()
        if data.get("projection") is not None:
            projection = self.names(data["projection"], f"{path}.projection", re.compile(r"^.+$"))
            field_names = {f.name for f in entity.fields}
            for j, attr in enumerate(projection):
                if attr not in field_names:
                    self.error(f"{path}.projection[{j}]", f"{attr!r} is not a field of {entity.name}")
        limit = self.positive_int(data, "limit", path)
        if len(self.issues) > errors_before or None in (pattern_id, name, operation, return_type):
            return None
        assert pattern_id is not None and name and operation and return_type
        return AccessPattern(pattern_id=pattern_id, name=name, description=str(description),
                             operation=operation, parameters=params, return_type=return_type,
                             index_name=index_name, range_condition=range_condition,
                             filter_expression=filter_expr, consistent_read=consistent,
                             projection=projection, limit=limit)

    def item_key_parameters(self, path: str, operation: str, entity: Entity, table_pk: str,
                            table_sk: str | None, scalar: set[str]) -> None:
        """A single-item operation needs each key's placeholders as parameters, or the key
        attribute itself (`sort_key` of an MCP schema whose entity declares it as a field):
        that value is the key as given, and the template's parts cannot be rebuilt."""
        for attribute, template, which in ((table_pk, entity.pk, "partition"),
                                           (table_sk, entity.sk, "sort")):
            if attribute is None or template is None:
                continue
            missing = [n for n in template.fields if n not in scalar]
            if not missing:
                continue
            if attribute in scalar:
                parts = ", ".join(f"{{{n}}}" for n in missing)
                self.warn(f"{path}.parameters", f"{operation} takes {attribute!r}, the table's "
                          f"{which} key, as given: the part(s) {parts} of {template.source!r} "
                          "cannot be rebuilt from the parameters (the runtime uses the value as "
                          "the key, and on a table of several entities acts only on an item of "
                          f"{entity.name})")
                continue
            for fname in missing:
                self.error(f"{path}.parameters",
                           f"{operation} needs a parameter for key placeholder {{{fname}}}"
                           f" (or for the key attribute {attribute!r} itself)")

    def filter_expression(self, raw: Any, path: str, entity: Entity, operation: str | None,
                          key_fields: set[str], param_names: set[str]) -> FilterExpression | None:
        data = self.mapping(raw, path)
        if data is None:
            return None
        if operation is not None and operation not in ("Query", "Scan"):
            self.error(path, f"filter expressions apply only to Query and Scan, not {operation}")
            return None
        raw_conditions = data.get("conditions")
        if not isinstance(raw_conditions, list) or not raw_conditions:
            self.error(f"{path}.conditions", "must be a non-empty list of conditions")
            return None
        logical = data.get("logical_operator", "AND")
        if logical not in LOGICAL_OPERATORS:
            self.error(f"{path}.logical_operator",
                       f"invalid logical operator {logical!r}; valid: {', '.join(LOGICAL_OPERATORS)}")
        fields = {f.name for f in entity.fields}
        conditions = []
        ok = True
        for i, raw_cond in enumerate(raw_conditions):
            cpath = f"{path}.conditions[{i}]"
            cond = self.mapping(raw_cond, cpath)
            if cond is None:
                ok = False
                continue
            parsed = self.filter_condition(cond, cpath, fields, key_fields, operation, param_names)
            if parsed is None:
                ok = False
            else:
                conditions.append(parsed)
        if not ok or logical not in LOGICAL_OPERATORS:
            return None
        return FilterExpression(conditions=tuple(conditions), logical_operator=logical)

    def filter_condition(self, cond: Mapping[str, Any], path: str, fields: set[str],
                         key_fields: set[str], operation: str | None,
                         param_names: set[str]) -> FilterCondition | None:
        before = len(self.issues)
        fname = cond.get("field")
        if not isinstance(fname, str) or not fname:
            self.error(f"{path}.field", "a condition needs a field")
            return None
        if fname not in fields:
            self.error(f"{path}.field", f"field {fname!r} is not a field of the entity")
            return None
        if operation == "Query" and fname in key_fields:
            self.error(f"{path}.field", f"cannot filter on key attribute {fname!r} in a Query: "
                       "key attributes belong in the key condition")
            return None
        operator = cond.get("operator")
        function = cond.get("function")
        if operator is not None and function is not None and function != "size":
            self.error(path, "use either 'operator' or 'function', not both (except with size)")
            return None
        if operator is None and function is None:
            self.error(path, "a condition needs an 'operator' or a 'function'")
            return None
        if function is not None and function not in FILTER_FUNCTIONS:
            self.error(f"{path}.function", f"unsupported function {function!r}; valid: "
                       f"{', '.join(FILTER_FUNCTIONS)}")
            return None
        if function == "size" and operator is None:
            self.error(path, "size needs an operator to compare with")
            return None
        if operator is not None and operator not in FILTER_OPERATORS:
            self.error(f"{path}.operator", f"unsupported operator {operator!r}; valid: "
                       f"{', '.join(FILTER_OPERATORS)}")
            return None
        if function == "size" and operator == "in":
            self.error(f"{path}.operator", "size cannot be combined with 'in'")
            return None
        param, param2, params = cond.get("param"), cond.get("param2"), cond.get("params")
        if operator == "between":
            if not param:
                self.error(path, "'between' needs 'param' (the lower bound)")
            if not param2:
                self.error(path, "'between' needs 'param2' (the upper bound)")
        elif operator == "in":
            if not isinstance(params, list) or not params:
                self.error(path, "'in' needs a non-empty 'params' list")
        elif operator is not None:
            if not param:
                self.error(path, f"operator {operator!r} needs 'param'")
        elif function in ("contains", "begins_with") and not param:
            self.error(path, f"function {function!r} needs 'param'")
        refs = [p for p in (param, param2) if p] + (list(params) if isinstance(params, list) else [])
        for ref in refs:
            if not isinstance(ref, str) or ref not in param_names:
                self.error(path, f"{ref!r} is not a parameter of this access pattern")
        if len(self.issues) > before:
            return None
        return FilterCondition(field=fname, operator=operator, function=function,
                               param=param or None, param2=param2 or None,
                               params=tuple(params) if isinstance(params, list) else ())

    # -- cross-table patterns -------------------------------------------------

    def cross_table_patterns(self, raw: Any, tables: list[Table]) -> list[CrossTablePattern]:
        path = "$.cross_table_access_patterns"
        items = self.sequence(raw, path)
        if items is None:
            return []
        by_table = {t.name: t for t in tables}
        out = []
        names: set[str] = set()
        for i, raw_pattern in enumerate(items):
            ppath = f"{path}[{i}]"
            data = self.mapping(raw_pattern, ppath)
            if data is None:
                continue
            before = len(self.issues)
            pattern_id = self.pattern_id(data, ppath)
            name = self.string(data, "name", ppath)
            if name is not None:
                if not _IDENTIFIER.match(name):
                    self.error(f"{ppath}.name", f"pattern name {name!r} is not an identifier")
                elif name in names:
                    self.error(f"{ppath}.name", f"duplicate cross-table pattern name {name!r}")
                names.add(name)
            operation = self.string(data, "operation", ppath,
                                    choices=tuple(CROSS_TABLE_OPERATIONS))
            return_type = self.string(data, "return_type", ppath, choices=CROSS_TABLE_RETURN_TYPES)
            params = self.parameters(data.get("parameters"), f"{ppath}.parameters")
            if data.get("entities_involved") is None:
                self.missing(data, "entities_involved", ppath)
            involved = self.involvements(data.get("entities_involved"),
                                         f"{ppath}.entities_involved", operation, by_table)
            for j, param in enumerate(params):
                if param.type == "entity":
                    continue
                for inv in involved:
                    entity = by_table[inv.table].entities[inv.entity]
                    fld = entity.field(param.name)
                    if fld is not None and not _types_compatible(param.type, fld.type):
                        self.error(f"{ppath}.parameters[{j}].type",
                                   f"parameter {param.name!r} is a {param.type} but field "
                                   f"{inv.entity}.{fld.name} is a {fld.type}")
            if len(self.issues) > before:
                continue
            assert pattern_id is not None and name and operation and return_type
            out.append(CrossTablePattern(pattern_id=pattern_id, name=name,
                                         description=str(data.get("description") or ""),
                                         operation=operation, entities_involved=tuple(involved),
                                         parameters=params, return_type=return_type))
        return out

    def involvements(self, raw: Any, path: str, operation: str | None,
                     tables: Mapping[str, Table]) -> list[Involvement]:
        if raw is None:
            return []  # reported by the pattern, which can name a misspelling
        items = self.sequence(raw, path)
        if items is None:
            return []
        if not items:
            self.error(path, "must list at least one entity")
        out = []
        for i, raw_inv in enumerate(items):
            ipath = f"{path}[{i}]"
            data = self.mapping(raw_inv, ipath)
            if data is None:
                continue
            table_name = self.string(data, "table", ipath)
            entity_name = self.string(data, "entity", ipath)
            action = self.string(data, "action", ipath)
            condition = self.string(data, "condition", ipath, required=False)
            table = tables.get(table_name) if table_name else None
            if table_name is not None and table is None:
                self.error(f"{ipath}.table", f"table {table_name!r} is not in the contract")
            entity = None
            if table is not None and entity_name is not None:
                entity = table.entities.get(entity_name)
                if entity is None:
                    self.error(f"{ipath}.entity",
                               f"entity {entity_name!r} is not in table {table_name!r}")
            if action is not None and operation in CROSS_TABLE_OPERATIONS:
                valid = CROSS_TABLE_OPERATIONS[operation]
                if action not in valid:
                    self.error(f"{ipath}.action", f"action {action!r} is not valid in a "
                               f"{operation}; valid: {', '.join(valid)}")
            if condition is not None:
                if "\n" in condition:
                    self.error(f"{ipath}.condition", "a condition must be a single line")
                elif action == "Get":
                    self.error(f"{ipath}.condition", "a Get takes no condition")
                elif entity is not None and table is not None:
                    match = _CONDITION_FUNCTION.match(condition)
                    if match:
                        attr = match.group(2)
                        known = set(table.attribute_types()) | {f.name for f in entity.fields}
                        if attr not in known:
                            self.error(f"{ipath}.condition", f"{attr!r} is neither a key "
                                       f"attribute of {table.name} nor a field of {entity.name}")
            if table is not None and entity is not None and action is not None:
                out.append(Involvement(table=table.name, entity=entity.name, action=action,
                                       condition=condition))
        return out




















