"""What the designer decides, before it is written out: for each entity its key
templates, GSIs, lookups, embeds, unique guards, access patterns and notes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from migration.contract.draft.naming import snake
from migration.source.tables import SourceTable


@dataclass
class IndexPlan:
    """A GSI an entity's reads need: keyed by `partition`, sorted by `sort` (columns)."""

    partition: str  # column
    sort: str | None  # column
    slot: int = 0  # single-table: GSI<slot>; per-table: position in the table's gsi_list
    name: str = ""
    pk_template: str = ""
    sk_template: str | None = None


@dataclass
class PatternPlan:
    """An access pattern, with the statements it serves (`uses`) and what MySQL does that
    it does not (`remarks`)."""

    operation: str
    parameters: list[dict[str, Any]]
    return_type: str
    name_hint: str
    index: IndexPlan | None = None
    range_condition: str | None = None
    filters: list[dict[str, Any]] = field(default_factory=list)
    limit: int | None = None
    remarks: list[str] = field(default_factory=list)
    uses: list[tuple[int, str]] = field(default_factory=list)  # (count, statement)

    def shape(self) -> tuple[Any, ...]:
        """Two statements with the same shape are served by one pattern."""
        return (self.operation, self.index.name if self.index else None,
                tuple(p["name"] for p in self.parameters), self.range_condition,
                tuple(sorted(str(f) for f in self.filters)), self.limit)


@dataclass
class EntityPlan:
    """One table's entity: its source key, fields (as written), key templates and what
    the statements added to it."""

    table: SourceTable
    name: str
    entity_type: str
    key: tuple[str, ...]
    fields: list[dict[str, Any]] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)  # column (lower case) → field type
    notes: list[str] = field(default_factory=list)
    pk: str = ""
    sk: str | None = None
    gsis: list[IndexPlan] = field(default_factory=list)
    lookups: dict[str, dict[str, Any]] = field(default_factory=dict)
    embeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    unique: list[str] = field(default_factory=list)
    patterns: list[PatternPlan] = field(default_factory=list)

    def column(self, name: str) -> str | None:
        """The table's spelling of a column named in a statement (any case)."""
        found = self.table.column(name)
        return found.name if found is not None else None

    def type_of(self, column: str) -> str:
        return self.types.get(column.lower(), "string")

    @property
    def plural(self) -> str:
        return snake(self.table.name)

    @property
    def snake(self) -> str:
        return snake(self.name)


class Unmapped(Exception):
    """A statement the draft cannot express; the message says why."""


def clip(text: str, width: int = 160) -> str:
    """A statement short enough to read in a description: a long select list elided."""
    match = re.match(r"^SELECT (.+?) FROM ", text)
    if match and len(match.group(1)) > 40:
        text = f"SELECT ... FROM {text[match.end():]}"
    return text if len(text) <= width else text[:width - 3] + "..."
