"""Segment plans: how N backfill processes (`--segment I/N`) split an entity's key space.

The cut of an entity into N segments (its *plan*) is decided once, by the first
process of the run, and kept beside the checkpoints in DynamoDB
(`CheckpointStore.create_plan`, a conditional put: the first process wins,
the others and every rerun read the plan it stored). Were each process to cut
the key space from the MIN and MAX it reads at its own start, processes
started at different times under live inserts would cut it differently and
some rows would fall in no segment.

An integer first primary-key column is cut at N - 1 points between the MIN and
MAX read when the plan is made; the first segment is open below and the last
open above, so rows inserted later (and ids below the old MIN) belong to a
segment too. Another column type is sliced by MOD(CRC32(column), N), which
does not move as the table grows. A table empty when the plan is made goes
whole to segment 0. `--restart` replaces the plan (see `Backfill`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration.source.records import quote_name


@dataclass(frozen=True)
class SegmentPlan:
    """The cut of one entity's key space into `count` segments, shared by every process.

    `mode`: "range" (`bounds` holds the count - 1 cut points of `column`; segment i
    is bounds[i-1] <= key < bounds[i], the first open below, the last open above),
    "crc32" (MOD(CRC32(column), count) = i) or "whole" (segment 0 takes every row).
    `generation` names this plan: checkpoints made under another one are void.
    """

    entity: str
    count: int
    mode: str
    column: str
    bounds: tuple[int, ...] = ()
    generation: str = ""
    created_at: str = ""

    def where(self, index: int) -> tuple[str, dict[str, Any]]:
        """The SQL condition (and parameters) of segment `index`'s rows."""
        name = quote_name(self.column)
        if self.mode == "whole":
            return ("", {}) if index == 0 else ("1 = 0", {})
        if self.mode == "crc32":
            return f"MOD(CRC32({name}), :seg_n) = :seg_i", {"seg_n": self.count, "seg_i": index}
        clauses, params = [], {}
        if index > 0:
            clauses.append(f"{name} >= :seg_lo")
            params["seg_lo"] = self.bounds[index - 1]
        if index < self.count - 1:
            clauses.append(f"{name} < :seg_hi")
            params["seg_hi"] = self.bounds[index]
        return " AND ".join(clauses), params

    def describe(self, index: int) -> str:
        if self.mode == "whole":
            return "every row" if index == 0 else "no row (the table was empty when planned)"
        if self.mode == "crc32":
            return f"CRC32({self.column}) mod {self.count} = {index}"
        low = "-inf" if index == 0 else str(self.bounds[index - 1])
        high = "+inf" if index == self.count - 1 else str(self.bounds[index])
        return f"{low} <= {self.column} < {high}"

    def to_state(self) -> dict[str, Any]:
        return {"mode": self.mode, "column": self.column, "bounds": list(self.bounds),
                "created_at": self.created_at}

    @classmethod
    def from_state(cls, entity: str, count: int, generation: str,
                   state: dict[str, Any]) -> SegmentPlan:
        return cls(entity, count, str(state["mode"]), str(state["column"]),
                   tuple(int(b) for b in state.get("bounds", ())), generation,
                   str(state.get("created_at", "")))


def make_plan(conn: Connection, entity: str, table: str, column: str, count: int) -> SegmentPlan:
    """A new plan cutting `table` by `column` into `count` segments, from its MIN and MAX now."""
    low, high = conn.execute(sa.text(
        f"SELECT MIN({quote_name(column)}), MAX({quote_name(column)}) "
        f"FROM {quote_name(table)}")).one()
    mode = "crc32"
    bounds: tuple[int, ...] = ()
    if isinstance(low, int) and isinstance(high, int):
        span = high - low + 1
        mode, bounds = "range", tuple(low + span * k // count for k in range(1, count))
    elif low is None:
        mode = "whole"
    return SegmentPlan(entity, count, mode, column, bounds, uuid.uuid4().hex,
                       dt.datetime.now(dt.UTC).isoformat())
