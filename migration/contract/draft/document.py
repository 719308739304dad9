"""The drafted contract as a document: the designer's plan written in the contract
format, and as YAML a person can read and edit (short mappings on one line, `on` a
plain word as the contract loader reads it)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from migration.contract.draft.design import Designer
from migration.contract.draft.naming import identifier, table_name, unique_name
from migration.contract.draft.plan import EntityPlan, clip
from migration.contract.model import Contract
from migration.source.statements import Workload
from migration.source.tables import SourceSchema


@dataclass
class Draft:
    """A drafted contract document, what a person still has to decide, and the
    validated Contract built from it."""

    document: dict[str, Any]
    contract: Contract
    notes: list[str]
    workload: Workload
    schema: SourceSchema
    layout: str
    counts: dict[str, int] = field(default_factory=dict)

    def to_yaml(self) -> str:
        header = [
            f"# Drafted by `migrate contract draft` from the MySQL database {self.schema.database}",
            f"# ({self.schema.server or 'MySQL'}) and {self.workload.total} statement(s) read from "
            f"{self.workload.source}.",
            f"# Layout: {self.layout}. A draft to edit, not a finished design: every `_notes`",
            "# entry is a decision left to a person; access pattern descriptions give each",
            "# statement and how often it ran.",
        ]
        return "\n".join(header) + "\n" + yaml.dump(self.document, Dumper=_Dumper,
                                                     sort_keys=False, allow_unicode=True,
                                                     width=110)

    def summary(self) -> list[str]:
        """Lines for standard error: what was drafted, what was left out, every note."""
        c = self.counts
        lines = [f"drafted {c.get('entities', 0)} entit{'y' if c.get('entities') == 1 else 'ies'} "
                 f"in {c.get('tables', 0)} DynamoDB table(s) ({self.layout}) from the MySQL "
                 f"database {self.schema.database}, and {self.workload.total} statement(s) from "
                 f"{self.workload.source}",
                 f"  {c.get('patterns', 0)} access pattern(s), {c.get('gsis', 0)} GSI(s), "
                 f"{c.get('lookups', 0)} lookup(s), {c.get('embeds', 0)} embed(s), "
                 f"{c.get('unique', 0)} unique guard(s); {c.get('considered', 0)} execution(s) "
                 f"on the drafted tables, {c.get('unmapped', 0)} statement(s) not mapped"]
        ignored = sorted(self.workload.ignored.items(), key=lambda kv: (-kv[1], kv[0]))
        if ignored:
            lines.append("  ignored: " + "; ".join(f"{n} {reason}" for reason, n in ignored))
        if self.notes:
            lines.append(f"{len(self.notes)} note(s) to decide (also in the draft as _notes):")
            lines += [f"  - {note}" for note in self.notes]
        return lines


def entity_document(designer: Designer, entity: EntityPlan, ids: Iterable[int]) -> dict[str, Any]:
    """One entity in the contract format, `_notes` first after its type."""
    out: dict[str, Any] = {"entity_type": entity.entity_type}
    if entity.notes:
        out["_notes"] = list(dict.fromkeys(entity.notes))
    source: dict[str, Any] = {"table": entity.table.name, "primary_key": _Flow(entity.key)}
    if entity.lookups:
        source["lookups"] = {n: {k: _flow(v) for k, v in lk.items()}
                             for n, lk in entity.lookups.items()}
    if entity.embeds:
        source["embeds"] = {n: {k: _flow(v) for k, v in e.items()}
                            for n, e in entity.embeds.items()}
    if entity.unique:
        source["unique"] = _Flow(entity.unique)
    out["source"] = source
    out["pk_template"] = entity.pk
    if entity.sk is not None:
        out["sk_template"] = entity.sk
    if entity.gsis:
        mappings = []
        for gsi in entity.gsis:
            mapping: dict[str, Any] = {"name": gsi.name, "pk_template": gsi.pk_template}
            if gsi.sk_template is not None:
                mapping["sk_template"] = gsi.sk_template
            mappings.append(_FlowMap(mapping))
        out["gsi_mappings"] = mappings
    out["fields"] = [_FlowMap(f) for f in entity.fields]
    patterns = []
    numbers = iter(ids)
    names: set[str] = set()
    total = designer.considered or 1
    for pattern in entity.patterns:
        count = sum(n for n, _ in pattern.uses)
        statements = "; ".join(f"{clip(text)} ({n})" for n, text in
                               sorted(pattern.uses, key=lambda u: -u[0])[:3])
        description = (f"{count} call(s), {count / total:.1%} of those on the drafted tables: "
                       f"{statements}")
        if pattern.remarks:
            description += ". Note: " + "; ".join(pattern.remarks)
        spec: dict[str, Any] = {
            "pattern_id": next(numbers),
            "name": unique_name(identifier(pattern.name_hint), names),
            "description": description, "operation": pattern.operation,
        }
        if pattern.index is not None:
            spec["index_name"] = pattern.index.name
        spec["parameters"] = [_FlowMap(p) for p in pattern.parameters]
        if pattern.range_condition:
            spec["range_condition"] = pattern.range_condition
        if pattern.filters:
            spec["filter_expression"] = {"conditions": [_FlowMap(f) for f in pattern.filters]}
        if pattern.limit:
            spec["limit"] = pattern.limit
        spec["return_type"] = pattern.return_type
        patterns.append(spec)
    if patterns:
        out["access_patterns"] = patterns
    return out

def build_document(designer: Designer) -> tuple[dict[str, Any], dict[str, int]]:
    """The whole contract document, and what it holds counted for the summary."""
    counter = iter(range(1, 1_000_000))
    entities = list(designer.entities.values())
    doc: dict[str, Any] = {}
    if designer.notes:
        doc["_notes"] = list(dict.fromkeys(designer.notes))
    doc["entity_type_attribute"] = "_type"
    doc["version_attribute"] = "_version"
    tables: list[dict[str, Any]] = []
    if designer.single:
        name = designer.options.table_name or table_name(designer.schema.database)
        slots = max((len(e.gsis) for e in entities), default=0)
        table: dict[str, Any] = {"table_config": {"table_name": name, "partition_key": "PK",
                                                  "sort_key": "SK",
                                                  "billing_mode": "PAY_PER_REQUEST"}}
        if slots:
            table["gsi_list"] = [_FlowMap({"name": f"GSI{k}", "partition_key": f"GSI{k}PK",
                                           "sort_key": f"GSI{k}SK", "projection": "ALL"})
                                 for k in range(1, slots + 1)]
        table["entities"] = {e.name: entity_document(designer, e, counter) for e in entities}
        tables.append(table)
    else:
        used: set[str] = set()
        for entity in entities:
            config: dict[str, Any] = {"table_name": unique_name(table_name(entity.table.name),
                                                                 used),
                                      "partition_key": "PK"}
            if entity.sk is not None:
                config["sort_key"] = "SK"
            config["billing_mode"] = "PAY_PER_REQUEST"
            table = {"table_config": config}
            if entity.gsis:
                gsis = []
                for gsi in entity.gsis:
                    spec: dict[str, Any] = {"name": gsi.name, "partition_key": gsi.partition}
                    if gsi.sort:
                        spec["sort_key"] = gsi.sort
                    spec["projection"] = "ALL"
                    gsis.append(_FlowMap(spec))
                table["gsi_list"] = gsis
            table["entities"] = {entity.name: entity_document(designer, entity, counter)}
            tables.append(table)
    doc["tables"] = tables
    counts = {"entities": len(entities), "tables": len(tables),
              "patterns": sum(len(e.patterns) for e in entities),
              "gsis": sum(len(t.get("gsi_list", [])) for t in tables),
              "lookups": sum(len(e.lookups) for e in entities),
              "embeds": sum(len(e.embeds) for e in entities),
              "unique": sum(len(e.unique) for e in entities), "unmapped": designer.unmapped,
              "considered": designer.considered}
    return doc, counts


# -- YAML -------------------------------------------------------------------------------------

class _FlowMap(dict[str, Any]):
    """A mapping written on one line: `{name: id, type: integer}`."""


class _Flow(list[Any]):
    """A list written on one line: `[id]`."""


def _flow(value: Any) -> Any:
    if isinstance(value, dict):
        return _FlowMap(value)
    if isinstance(value, list | tuple):
        return _Flow(value)
    return value


def plain(value: Any) -> Any:
    """The document with plain dicts and lists (what the loader reads)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    """YAML as the contract loader reads it (only true/false are booleans, so `on` is a
    plain word), with short mappings and lists on one line."""


_Dumper.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
}
_Dumper.add_implicit_resolver("tag:yaml.org,2002:bool",
                              re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Dumper.add_representer(_FlowMap, lambda d, data: d.represent_mapping(
    "tag:yaml.org,2002:map", data.items(), flow_style=True))
_Dumper.add_representer(_Flow, lambda d, data: d.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=True))
_Dumper.add_representer(tuple, lambda d, data: d.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=True))
