"""Checks of the contract's root and its tables: table configuration and options,
global and local secondary indexes, key attribute types, and each table's entities.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from migration.contract.keys import KeyTemplate
from migration.contract.model import (
    BILLING_MODES,
    ENCRYPTION_TYPES,
    KEY_TYPES,
    PROJECTIONS,
    STREAM_VIEW_TYPES,
    Contract,
    CoupledGroup,
    CrossTablePattern,
    Entity,
    Index,
    KeyAttribute,
    Table,
    TableOptions,
)
from migration.contract.validation.checker import (
    _COUPLED_KEYS,
    _IDENTIFIER,
    _INDEX_KEYS,
    _ROOT_KEYS,
    _TABLE_CONFIG_KEYS,
    _TABLE_KEYS,
    _TABLE_NAME,
    MAX_GSIS,
    MAX_LSIS,
    _entity_pk,
    _entity_sk,
    _key_attributes,
    _key_path,
    _native_key_type,
    _template_key_type,
)
from migration.contract.validation.entities import EntityChecks
from migration.errors import ContractError


class ContractChecks(EntityChecks):
    """Checks of the contract's root and its tables: table configuration and options,"""

    def contract(self, data: Any, path: Path | None) -> Contract:
        root = self.mapping(data, "$")
        if root is None:
            raise ContractError(self.issues)
        for raw_table in root.get("tables") or []:
            if isinstance(raw_table, dict) and isinstance(raw_table.get("entities"), dict):
                config = raw_table.get("table_config")
                name = config.get("table_name") if isinstance(config, dict) else None
                for entity_name in raw_table["entities"]:
                    self.declared_entities.setdefault(str(entity_name), str(name))
        self.unknown_keys(root, _ROOT_KEYS, "$")
        tables: list[Table] = []
        raw_tables = root.get("tables")
        if raw_tables is None:
            self.missing(root, "tables", "$")
        elif (items := self.sequence(raw_tables, "$.tables")) is not None:
            if not items:
                self.error("$.tables", "must list at least one table")
            seen_tables: dict[str, str] = {}
            for i, raw in enumerate(items):
                table = self.table(raw, f"$.tables[{i}]")
                if table is None:
                    continue
                if table.name in seen_tables:
                    self.error(f"$.tables[{i}].table_config.table_name",
                               f"duplicate table name {table.name!r} (also at {seen_tables[table.name]})")
                seen_tables[table.name] = f"$.tables[{i}]"
                tables.append(table)
        cross: list[CrossTablePattern] = []
        if root.get("cross_table_access_patterns") is not None:
            cross = self.cross_table_patterns(root["cross_table_access_patterns"], tables)
        type_attr = self.string(root, "entity_type_attribute", "$", required=False) or "_type"
        version_attr = self.string(root, "version_attribute", "$", required=False) or "_version"
        for table in tables:
            for attr in (type_attr, version_attr):
                if attr in table.attribute_types():
                    self.error("$.entity_type_attribute" if attr == type_attr
                               else "$.version_attribute",
                               f"{attr!r} is a key attribute of table {table.name}")
        coupled = self.coupled_entities(root.get("coupled_entities"), tables)
        if self.issues:
            raise ContractError(self.issues)
        return Contract(path=path, tables=tuple(tables), cross_table_patterns=tuple(cross),
                        entity_type_attribute=type_attr, version_attribute=version_attr,
                        warnings=tuple(self.warnings), coupled=tuple(coupled))

    def coupled_entities(self, raw: Any, tables: list[Table]) -> list[CoupledGroup]:
        """`coupled_entities`: groups of entities with a MySQL source that move to and
        from `dynamodb_only` together; an entity belongs to one group at most."""
        if raw is None:
            return []
        items = self.sequence(raw, "$.coupled_entities")
        if items is None:
            return []
        sourced = {name for table in tables for name, entity in table.entities.items()
                   if entity.source is not None}
        # An entity declared but refused for its own faults is reported there, not again.
        refused = set(self.declared_entities) - {n for t in tables for n in t.entities}
        seen: dict[str, str] = {}
        groups: list[CoupledGroup] = []
        for i, item in enumerate(items):
            path = f"$.coupled_entities[{i}]"
            data = self.mapping(item, path)
            if data is None:
                continue
            self.unknown_keys(data, _COUPLED_KEYS, path)
            if "entities" not in data:
                self.missing(data, "entities", path)
                continue
            names = self.sequence(data["entities"], f"{path}.entities")
            if not names:
                if names is not None:
                    self.error(f"{path}.entities", "must list at least two entities")
                continue
            for j, name in enumerate(names):
                where = f"{path}.entities[{j}]"
                if name in refused:
                    continue
                if name not in sourced:
                    self.error(where, f"{name!r} is not an entity with a MySQL source "
                               f"(those: {', '.join(sorted(sourced)) or 'none'})")
                elif name in seen:
                    self.error(where, f"{name!r} is in another group already ({seen[name]}): "
                               "merge the groups")
                else:
                    seen[name] = path
            if len(names) < 2:
                self.error(f"{path}.entities", "must list at least two entities")
            groups.append(CoupledGroup(tuple(str(n) for n in names),
                                       self.string(data, "catch_up", path, required=False)))
        return groups

    # -- tables ----------------------------------------------------------------

    def table(self, raw: Any, path: str) -> Table | None:
        data = self.mapping(raw, path)
        if data is None:
            return None
        self.unknown_keys(data, _TABLE_KEYS, path)
        cfg_path = f"{path}.table_config"
        if "table_config" not in data:
            self.missing(data, "table_config", path)
            return None
        cfg = self.mapping(data["table_config"], cfg_path)
        if cfg is None:
            return None
        self.unknown_keys(cfg, _TABLE_CONFIG_KEYS, cfg_path)
        name = self.string(cfg, "table_name", cfg_path)
        if name is not None and not _TABLE_NAME.match(name):
            self.error(f"{cfg_path}.table_name",
                       f"{name!r} is not a valid DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")
        for key in ("partition_key", "sort_key"):
            if isinstance(cfg.get(key), list):
                self.error(f"{cfg_path}.{key}", "a table's own key is one attribute: DynamoDB "
                           "allows multi-attribute keys only on global secondary indexes "
                           "(gsi_list)")
        pk = self.string(cfg, "partition_key", cfg_path) \
            if not isinstance(cfg.get("partition_key"), list) else None
        sk = self.string(cfg, "sort_key", cfg_path, required=False) \
            if not isinstance(cfg.get("sort_key"), list) else None
        if pk is not None and sk is not None and pk == sk:
            self.error(f"{cfg_path}.sort_key", "sort key and partition key must differ")
        pk_type = self.string(cfg, "partition_key_type", cfg_path, required=False, choices=KEY_TYPES)
        sk_type = self.string(cfg, "sort_key_type", cfg_path, required=False, choices=KEY_TYPES)
        options = self.table_options(cfg, cfg_path)
        gsis, native = self.indexes(data.get("gsi_list"), f"{path}.gsi_list", "GSI")
        lsis, _ = self.indexes(data.get("lsi_list"), f"{path}.lsi_list", "LSI")
        for lsi in lsis:
            if any(g.name == lsi.name for g in gsis):
                self.error(f"{path}.lsi_list", f"index name {lsi.name!r} is used by a GSI too")
        if lsis and sk is None:
            self.error(f"{path}.lsi_list", "a local secondary index needs a table with a sort key")
        if pk is None or name is None:
            return None
        entities: dict[str, Entity] = {}
        ents_path = f"{path}.entities"
        raw_entities = data.get("entities")
        if raw_entities is None:
            self.missing(data, "entities", path)
        elif (ents := self.mapping(raw_entities, ents_path)) is not None:
            if not ents:
                self.error(ents_path, "must define at least one entity")
            for ent_name in ents:
                self.visible_entities.setdefault(str(ent_name), name)
            for ent_name, raw_entity in ents.items():
                ent_path = _key_path(ents_path, str(ent_name))
                if not isinstance(ent_name, str) or not _IDENTIFIER.match(ent_name):
                    self.error(ent_path, f"entity name {ent_name!r} is not an identifier")
                    continue
                if ent_name in self.entity_names:
                    self.error(ent_path, f"duplicate entity name {ent_name!r}: already defined at "
                               f"{self.entity_names[ent_name]}; entity names must be unique "
                               "across all tables")
                    continue
                self.entity_names[ent_name] = ent_path
                entity = self.entity(ent_name, raw_entity, ent_path, name, pk, sk, gsis, lsis)
                if entity is not None:
                    entities[ent_name] = entity
        pk_type = pk_type or self.infer_key_type(pk, ents_path, entities, _entity_pk)
        if sk is not None:
            sk_type = sk_type or self.infer_key_type(sk, ents_path, entities, _entity_sk)
        gsis = tuple(self.typed_index(ix, ents_path, entities, ix.name in native) for ix in gsis)
        lsis = tuple(self.typed_index(ix, ents_path, entities, False) for ix in lsis)
        self.check_unmapped_key_fields(ents_path, entities, gsis)
        return Table(name=name, partition_key=pk, sort_key=sk, partition_key_type=pk_type,
                     sort_key_type=sk_type or "S", gsis=gsis, lsis=lsis, options=options,
                     entities=entities)

    def infer_key_type(self, attribute: str, path: str, entities: Mapping[str, Entity],
                       template_of: Callable[[Entity], KeyTemplate | None], *,
                       native: bool = False) -> str:
        """A key attribute keeps a field's type (integer/decimal: N, binary: B) only when
        it *is* that field: same name, bare ``{field}`` template. Composite or
        overloaded keys (``PK``, ``GSI1PK``) are strings. With `native` (an index key
        written as an array) a bare ``{field}`` template keeps the field's type
        whatever the attribute is called."""
        kinds = set()
        for entity in entities.values():
            template = template_of(entity)
            if template is None:
                continue
            kinds.add(_template_key_type(entity, attribute, template, native))
        if len(kinds) > 1:
            self.error(path, f"entities disagree on the type of key attribute {attribute!r}: "
                       f"they store {' and '.join(sorted(kinds))}; declare it explicitly")
            return "S"
        return kinds.pop() if kinds else "S"

    def typed_index(self, index: Index, path: str, entities: Mapping[str, Entity],
                    native: bool) -> Index:
        def typed(attributes: tuple[KeyAttribute, ...], sort: bool) -> tuple[KeyAttribute, ...]:
            out = []
            for position, attribute in enumerate(attributes):
                def template_of(e: Entity, position: int = position) -> KeyTemplate | None:
                    keys = e.index_key(index.name)
                    templates = (keys.sk if sort else keys.pk) if keys else ()
                    return templates[position] if position < len(templates) else None

                kind = attribute.type or self.infer_key_type(attribute.name, path, entities,
                                                             template_of, native=native)
                out.append(KeyAttribute(attribute.name, kind))
            return tuple(out)

        return replace(index, partition_attributes=typed(index.partition_attributes, False),
                       sort_attributes=typed(index.sort_attributes, True))

    def check_unmapped_key_fields(self, path: str, entities: Mapping[str, Entity],
                                  gsis: tuple[Index, ...]) -> None:
        """DynamoDB indexes every item holding a GSI's key attributes, mapped or not, and
        refuses one whose attribute has another type than the index's."""
        for entity in entities.values():
            for index in gsis:
                if entity.index_key(index.name) is not None:
                    continue
                for attribute in index.key_attributes:
                    fld = entity.field(attribute.name)
                    if fld is not None and _native_key_type(fld.type) != attribute.type:
                        self.error(_key_path(f"{_key_path(path, entity.name)}.fields", fld.name),
                                   f"field {fld.name!r} ({fld.type}) has the name of key attribute "
                                   f"{attribute.name!r} ({attribute.type}) of GSI {index.name}: "
                                   f"DynamoDB would refuse {entity.name}'s items; rename the "
                                   "field or map the entity to the index")

    def table_options(self, cfg: Mapping[str, Any], path: str) -> TableOptions:
        billing = self.string(cfg, "billing_mode", path, required=False, choices=BILLING_MODES)
        rcu = self.positive_int(cfg, "read_capacity", path)
        wcu = self.positive_int(cfg, "write_capacity", path)
        if billing == "PROVISIONED" and (rcu is None or wcu is None):
            self.error(path, "billing_mode PROVISIONED needs read_capacity and write_capacity")
        if billing != "PROVISIONED" and (rcu is not None or wcu is not None):
            self.error(path, "read_capacity/write_capacity need billing_mode PROVISIONED")
        stream: str | None = None
        if cfg.get("stream") not in (None, False):
            stream = self.string(cfg, "stream", path, required=False, choices=STREAM_VIEW_TYPES)
        encryption = self.string(cfg, "encryption", path, required=False, choices=ENCRYPTION_TYPES)
        kms = self.string(cfg, "kms_key_id", path, required=False)
        if kms and encryption != "KMS":
            self.error(f"{path}.kms_key_id", "kms_key_id needs encryption: KMS")
        tags: tuple[tuple[str, str], ...] = ()
        if cfg.get("tags") is not None and (raw := self.mapping(cfg["tags"], f"{path}.tags")):
            pairs = []
            for k, v in raw.items():
                if not isinstance(v, str | int | float) or isinstance(v, bool):
                    self.error(_key_path(f"{path}.tags", str(k)), "a tag value must be a string")
                    continue
                pairs.append((str(k), str(v)))
            tags = tuple(sorted(pairs))
        return TableOptions(
            billing_mode=billing or "PAY_PER_REQUEST", read_capacity=rcu, write_capacity=wcu,
            stream=stream, encryption=encryption, kms_key_id=kms,
            point_in_time_recovery=self.boolean(cfg, "point_in_time_recovery", path),
            ttl_attribute=self.string(cfg, "ttl_attribute", path, required=False),
            deletion_protection=self.boolean(cfg, "deletion_protection", path),
            tags=tags,
        )

    def indexes(self, raw: Any, path: str, kind: str) -> tuple[tuple[Index, ...], set[str]]:
        """The indexes of a gsi_list or lsi_list, and the names of those whose keys are
        written as arrays (their attributes keep their fields' types)."""
        native: set[str] = set()
        if raw is None:
            return (), native
        items = self.sequence(raw, path)
        if items is None:
            return (), native
        limit = MAX_GSIS if kind == "GSI" else MAX_LSIS
        if len(items) > limit:
            self.error(path, f"DynamoDB allows at most {limit} {kind}s per table, got {len(items)}")
        out: list[Index] = []
        seen: dict[str, int] = {}
        for i, raw_index in enumerate(items):
            ipath = f"{path}[{i}]"
            data = self.mapping(raw_index, ipath)
            if data is None:
                continue
            self.unknown_keys(data, _INDEX_KEYS, ipath)
            key = "name" if "name" in data or "index_name" not in data else "index_name"
            name = self.string(data, key, ipath)
            if name is None:
                continue
            if not _TABLE_NAME.match(name):
                self.error(f"{ipath}.{key}", f"{name!r} is not a valid index name "
                           "(3-255 of A-Z a-z 0-9 _ . -)")
            if name in seen:
                self.error(f"{ipath}.{key}", f"duplicate index name {name!r} "
                           f"(also at {path}[{seen[name]}])")
                continue
            seen[name] = i
            pk: tuple[str, ...] = ()
            sk: tuple[str, ...] = ()
            if kind == "GSI":
                found = self.key_names(data, "partition_key", ipath, required=True)
                if found is None:
                    continue
                pk, pk_array = found
                sk_array = False
                if data.get("sort_key") is not None:
                    found = self.key_names(data, "sort_key", ipath, required=False)
                    if found is None:
                        continue
                    sk, sk_array = found
                if pk_array or sk_array:
                    native.add(name)
                both = [n for n in sk if n in pk]
                if both:
                    self.error(f"{ipath}.sort_key", f"attribute {both[0]!r} is in both the "
                               "partition key and the sort key")
                    continue
            else:
                if "partition_key" in data:
                    self.warn(f"{ipath}.partition_key",
                              "an LSI always uses the table's partition key; this is ignored")
                if isinstance(data.get("sort_key"), list):
                    self.error(f"{ipath}.sort_key", "a local secondary index's sort key is one "
                               "attribute: DynamoDB allows multi-attribute keys only on global "
                               "secondary indexes")
                    continue
                lsi_sk = self.string(data, "sort_key", ipath, required=True)
                sk = (lsi_sk,) if lsi_sk is not None else ()
            pk_types = self.key_types(data, "partition_key_type", ipath, len(pk)) \
                if kind == "GSI" else None
            sk_types = self.key_types(data, "sort_key_type", ipath, len(sk)) if sk else None
            projection = self.string(data, "projection", ipath, required=False,
                                     choices=PROJECTIONS) or "ALL"
            included: tuple[str, ...] = ()
            if data.get("included_attributes") is not None:
                included = self.names(data["included_attributes"], f"{ipath}.included_attributes",
                                      re.compile(r"^.+$"))
            if projection == "INCLUDE" and not included:
                self.error(ipath, "projection INCLUDE needs a non-empty included_attributes list")
            if projection != "INCLUDE" and included:
                self.error(f"{ipath}.included_attributes",
                           f"included_attributes only applies to projection INCLUDE, not {projection}")
            if kind == "LSI" and not sk:
                continue
            # An empty key type means "not declared": it is inferred from the entities.
            index = Index(name=name, kind=kind,
                          partition_attributes=_key_attributes(pk, pk_types),
                          sort_attributes=_key_attributes(sk, sk_types),
                          projection=projection, included_attributes=included,
                          read_capacity=self.positive_int(data, "read_capacity", ipath),
                          write_capacity=self.positive_int(data, "write_capacity", ipath))
            out.append(index)
        return tuple(out), native

    # -- entities ----------------------------------------------------------------




















