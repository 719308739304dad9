"""Checks of one entity: its key templates, index mappings, fields, and (through the
other sections) its source and access patterns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from migration.contract.keys import KeyTemplate
from migration.contract.model import (
    CONSTANT_FIELD_TYPES,
    FIELD_TYPES,
    Entity,
    Field,
    Index,
    IndexKeys,
)
from migration.contract.validation.checker import _ENTITY_KEYS, _FIELD_KEYS, _key_path, _kind
from migration.contract.validation.patterns import PatternChecks
from migration.contract.validation.sources import SourceChecks


class EntityChecks(SourceChecks, PatternChecks):
    """Checks of one entity: its key templates, index mappings, fields, and (through the"""

    def entity(self, name: str, raw: Any, path: str, table: str, table_pk: str,
               table_sk: str | None, gsis: tuple[Index, ...],
               lsis: tuple[Index, ...]) -> Entity | None:
        data = self.mapping(raw, path)
        if data is None:
            return None
        self.unknown_keys(data, _ENTITY_KEYS, path)
        entity_type = self.string(data, "entity_type", path, required=False) or name
        if data.get("fields") is None:
            self.missing(data, "fields", path)
        fields = self.fields(data.get("fields"), f"{path}.fields")
        field_names = {f.name for f in fields}
        source = None
        if data.get("source") is not None:
            source = self.source(data["source"], f"{path}.source", field_names)
        known = set(field_names)
        if source is not None:
            known |= set(source.primary_key) | {lk.name for lk in source.lookups}
            known |= {ag.name for ag in source.aggregates}
            for fld in fields:
                if fld.column:
                    known.add(fld.column)
        what = f"entity {name}"
        single = ("the table's own key is one attribute (arrays are for GSI keys, in "
                  "gsi_mappings)")
        pk = self.template(data, "pk_template", path, known, what, single)
        sk = None
        if table_sk is not None:
            if "sk_template" not in data:
                self.error(f"{path}.sk_template",
                           f"table {table} has sort key {table_sk!r}, so the entity needs an sk_template")
            else:
                sk = self.template(data, "sk_template", path, known, what, single)
        elif data.get("sk_template") is not None:
            self.error(f"{path}.sk_template",
                       f"table {table} has no sort key, so the entity cannot have an sk_template")
        for which, template in (("pk_params", pk), ("sk_params", sk)):
            if data.get(which) is not None and template is not None:
                declared = self.names(data[which], f"{path}.{which}", re.compile(r"^.+$"))
                if set(declared) != set(template.fields):
                    self.error(f"{path}.{which}", f"lists {list(declared)} but the template "
                               f"{template.source!r} uses {list(template.fields)}")
        index_keys = self.index_mappings(data, path, known, what, gsis, lsis)
        # A field may be the table's own key attribute (an MCP schema's `sort_key`): its
        # value is the key the template builds. An index attribute is written from its
        # template, so a field of its name must be that bare field, and an index keyed
        # on the table's key attribute reads the item's key as it is.
        table_keys = {table_pk, table_sk} - {None}
        for keys in index_keys:
            index = next(ix for ix in gsis + lsis if ix.name == keys.index)
            for attribute, index_template in zip(index.key_attributes, keys.templates, strict=True):
                attr = attribute.name
                if attr in table_keys and index_template.single_field != attr:
                    self.error(f"{path}.{'gsi' if index.kind == 'GSI' else 'lsi'}_mappings",
                               f"index {index.name}'s key attribute {attr!r} is the table's own key "
                               f"attribute: its template must be {{{attr}}}, not "
                               f"{index_template.source!r} (an item holds one {attr})")
                elif attr not in table_keys and attr in field_names and \
                        index_template.single_field != attr:
                    self.error(_key_path(f"{path}.fields", attr),
                               f"field {attr!r} has the name of a key attribute whose template "
                               f"{index_template.source!r} is not {{{attr}}}: the item cannot "
                               "hold both")
        version_field = self.string(data, "version_field", path, required=False)
        if version_field is not None:
            vf = next((f for f in fields if f.name == version_field), None)
            if vf is None or vf.type != "integer":
                self.error(f"{path}.version_field", "must name an integer field of the entity")
        if pk is None or (table_sk is not None and sk is None):
            return None
        entity = Entity(name=name, table=table, entity_type=entity_type, pk=pk, sk=sk,
                        index_keys=index_keys, fields=fields, source=source,
                        version_field=version_field)
        patterns = self.access_patterns(data.get("access_patterns"), f"{path}.access_patterns",
                                        entity, gsis + lsis, (table_pk, table_sk))
        return Entity(name=name, table=table, entity_type=entity_type, pk=pk, sk=sk,
                      index_keys=index_keys, fields=fields, access_patterns=patterns,
                      source=source, version_field=version_field)

    def index_mappings(self, data: Mapping[str, Any], path: str, known: set[str], what: str,
                       gsis: tuple[Index, ...], lsis: tuple[Index, ...]) -> tuple[IndexKeys, ...]:
        out: list[IndexKeys] = []
        for key, indexes, kind in (("gsi_mappings", gsis, "GSI"), ("lsi_mappings", lsis, "LSI")):
            if data.get(key) is None:
                continue
            items = self.sequence(data[key], f"{path}.{key}")
            if items is None:
                continue
            seen: set[str] = set()
            for i, raw in enumerate(items):
                mpath = f"{path}.{key}[{i}]"
                mapping = self.mapping(raw, mpath)
                if mapping is None:
                    continue
                name_key = "name" if "name" in mapping or "index_name" not in mapping else "index_name"
                name = self.string(mapping, name_key, mpath)
                if name is None:
                    continue
                if name in seen:
                    self.error(f"{mpath}.{name_key}", f"duplicate mapping for index {name!r}")
                    continue
                seen.add(name)
                index = next((ix for ix in indexes if ix.name == name), None)
                if index is None:
                    listed = ", ".join(ix.name for ix in indexes) or "none"
                    self.error(f"{mpath}.{name_key}", f"index {name!r} is not in the table's "
                               f"{'gsi_list' if kind == 'GSI' else 'lsi_list'} (defined: {listed})")
                    continue
                pk: tuple[KeyTemplate, ...] | None = ()
                if kind == "GSI":
                    pk = self.templates(mapping, "pk_template", mpath, known, what,
                                        index.partition_names, name)
                sk: tuple[KeyTemplate, ...] | None = ()
                if index.sort_attributes:
                    if mapping.get("sk_template") is None:
                        self.error(f"{mpath}.sk_template",
                                   f"index {name} has sort key {', '.join(index.sort_names)}, so "
                                   "the mapping needs an sk_template")
                        sk = None
                    elif kind == "LSI":
                        lsi_sk = self.template(mapping, "sk_template", mpath, known, what,
                                               "a local secondary index's sort key is one attribute")
                        sk = (lsi_sk,) if lsi_sk is not None else None
                    else:
                        sk = self.templates(mapping, "sk_template", mpath, known, what,
                                            index.sort_names, name)
                elif mapping.get("sk_template") is not None:
                    self.error(f"{mpath}.sk_template",
                               f"index {name} has no sort key, so the mapping cannot have an sk_template")
                if pk is None or sk is None:
                    continue
                out.append(IndexKeys(index=name, pk=pk, sk=sk))
        return tuple(out)

    def fields(self, raw: Any, path: str) -> tuple[Field, ...]:
        if raw is None:
            return ()  # reported by the entity, which can name a misspelling
        items = self.sequence(raw, path)
        if items is None:
            return ()
        out: list[Field] = []
        seen: set[str] = set()
        for i, raw_field in enumerate(items):
            fpath = f"{path}[{i}]"
            data = self.mapping(raw_field, fpath)
            if data is None:
                continue
            self.unknown_keys(data, _FIELD_KEYS, fpath)
            name = self.string(data, "name", fpath)
            ftype = self.string(data, "type", fpath, choices=FIELD_TYPES)
            if name is None or ftype is None:
                continue
            if name in seen:
                self.error(f"{fpath}.name", f"duplicate field name {name!r}")
                continue
            seen.add(name)
            required = data.get("required", False)
            if not isinstance(required, bool):
                self.error(f"{fpath}.required", f"must be true or false, got {_kind(required)}")
                required = False
            item_type = self.string(data, "item_type", fpath, required=False, choices=FIELD_TYPES)
            if ftype == "array" and item_type is None and "item_type" not in data:
                self.error(f"{fpath}.item_type", "an array field needs an item_type")
            column = self.string(data, "column", fpath, required=False)
            value = self.constant(data, fpath, ftype, column)
            out.append(Field(name=name, type=ftype, required=required, item_type=item_type,
                             column=column, value=value))
        return tuple(out)

    def constant(self, data: dict[str, Any], fpath: str, ftype: str,
                 column: str | None) -> str | int | float | bool | None:
        """A field's `value`: what every item holds (`status: registered`), no column."""
        if "value" not in data:
            return None
        value = data["value"]
        kinds = CONSTANT_FIELD_TYPES.get(ftype)
        if kinds is None:
            self.error(f"{fpath}.value", f"a {ftype} field cannot be a constant: a constant is "
                       f"a {', '.join(CONSTANT_FIELD_TYPES)}")
            return None
        if column is not None:
            self.error(f"{fpath}.value", "a field is read from a column or is a constant "
                       "value, not both: drop `column` or `value`")
            return None
        if value is None or not isinstance(value, kinds) or \
                (ftype != "boolean" and isinstance(value, bool)):
            self.error(f"{fpath}.value", f"a {ftype} field's constant value must be of type {ftype}, "
                       f"got {_kind(value)}")
            return None
        assert isinstance(value, str | int | float | bool)
        return value

    # -- sources ------------------------------------------------------------------




















