"""Backfill checkpoints, kept in DynamoDB so processes on several machines share them.

One item per entity and segment: the last primary key of the longest run of
chunks DynamoDB has fully taken, plus counters, the dead-letter files written so
far and the segment plan it was made under. A checkpoint is written only after
DynamoDB has every chunk up to it, so a rerun after SIGKILL redoes at most the
chunks that were in flight.

Beside them, one item per entity and segment count: the segment plan (see
`segments`), stored with a conditional put so the first process of a run
decides it for all; one item per entity naming the segment count in force (the
*cut*: runs with another count are refused until a `--restart`); and, while a
`--restart` is being applied, one item per segment naming the entities it
covers, so that a restart interrupted half-way is finished by the next run.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from migration.backfill.segments import SegmentPlan
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.toolkit_table import TABLE, ToolkitTable
from migration.errors import ConditionFailed, TableNotFound
from migration.sync.outbox import _decode, _encode

__all__ = ["TABLE", "Checkpoint", "CheckpointStore"]


@dataclass
class Checkpoint:
    entity: str
    segment: str  # "I/N"
    last_key: tuple[Any, ...] | None = None
    done: bool = False
    rows_read: int = 0
    items_written: int = 0
    dead_letters: int = 0
    updated_at: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    plan: str = ""  # generation of the segment plan it was made under ("" for 0/1)
    dead_letter_files: list[str] = field(default_factory=list)  # "host:path", oldest first

    @property
    def id(self) -> str:
        return f"{self.entity}#{self.segment}"


class CheckpointStore:
    """Reads and writes checkpoints in the `migrate_backfill_checkpoints` table."""

    def __init__(self, ddb: DynamoDB, wait_seconds: float = 60.0):
        self.ddb = ddb
        self._toolkit = ToolkitTable(ddb, wait_seconds)
        self.table = self._toolkit.name

    def ensure_table(self) -> None:
        self._toolkit.ensure()

    def load(self, entity: str, segment: str) -> Checkpoint | None:
        self.ensure_table()
        response = self.ddb.call("GetItem", TableName=self.table,
                                 Key={"id": {"S": f"{entity}#{segment}"}}, ConsistentRead=True)
        item = response.get("Item")
        if item is None:
            return None
        state = json.loads(item["state"]["S"])
        last = state.get("last_key")
        return Checkpoint(entity=entity, segment=segment,
                          last_key=tuple(_decode(last)) if last is not None else None,
                          done=bool(state.get("done")), rows_read=int(state.get("rows_read", 0)),
                          items_written=int(state.get("items_written", 0)),
                          dead_letters=int(state.get("dead_letters", 0)),
                          updated_at=str(state.get("updated_at", "")),
                          plan=str(state.get("plan", "")),
                          dead_letter_files=[str(f) for f in state.get("dead_letter_files", ())])

    def save(self, checkpoint: Checkpoint) -> None:
        self.ensure_table()
        checkpoint.updated_at = dt.datetime.now(dt.UTC).isoformat()
        state = {"last_key": _encode(list(checkpoint.last_key))
                 if checkpoint.last_key is not None else None,
                 "done": checkpoint.done, "rows_read": checkpoint.rows_read,
                 "items_written": checkpoint.items_written,
                 "dead_letters": checkpoint.dead_letters, "updated_at": checkpoint.updated_at,
                 "plan": checkpoint.plan, "dead_letter_files": checkpoint.dead_letter_files}
        # Once per chunk: through the fast path, like the chunk's own writes.
        self.ddb.call_json("PutItem", {"TableName": self.table, "Item": {
            "id": {"S": checkpoint.id}, "state": {"S": json.dumps(state)}}})

    def reset(self, entity: str, segment: str) -> None:
        self.ensure_table()
        self.ddb.call("DeleteItem", TableName=self.table, Key={"id": {"S": f"{entity}#{segment}"}})

    # -- restarts ------------------------------------------------------------------------
    def request_restart(self, segment: str, entities: list[str]) -> None:
        """Record that `entities` of `segment` start over, before any of them does: from
        here a run of that segment, with or without `--restart`, finishes the restart."""
        self.ensure_table()
        self.ddb.call("PutItem", TableName=self.table, Item={
            "id": {"S": f"restart#{segment}"}, "entities": {"S": json.dumps(sorted(entities))},
            "requested_at": {"S": dt.datetime.now(dt.UTC).isoformat()}})

    def pending_restart(self, segment: str) -> list[str]:
        """The entities of `segment` a restart covers that has not been applied yet."""
        self.ensure_table()
        item = self.ddb.call("GetItem", TableName=self.table, ConsistentRead=True,
                             Key={"id": {"S": f"restart#{segment}"}}).get("Item")
        return list(json.loads(item["entities"]["S"])) if item is not None else []

    def restart_applied(self, segment: str) -> None:
        self.ensure_table()
        self.ddb.call("DeleteItem", TableName=self.table, Key={"id": {"S": f"restart#{segment}"}})

    # -- the cut in force ----------------------------------------------------------------
    def cut(self, entity: str, *, create_table: bool = True) -> int | None:
        """The segment count `entity` is being backfilled in, or None (no run yet)."""
        if create_table:
            self.ensure_table()
        try:
            item = self.ddb.call("GetItem", TableName=self.table, ConsistentRead=True,
                                 Key={"id": {"S": f"{entity}#cut"}}).get("Item")
        except TableNotFound:
            if create_table:
                raise
            return None
        return int(item["count"]["N"]) if item is not None else None

    def set_cut(self, entity: str, count: int, *, replace: bool) -> int:
        """Make `count` the cut of `entity` (unless another process set one first, when not
        `replace`); returns the cut in force now."""
        self.ensure_table()
        condition: dict[str, Any] = {} if replace else {
            "ConditionExpression": "attribute_not_exists(id)"}
        try:
            self.ddb.call("PutItem", TableName=self.table, Item={
                "id": {"S": f"{entity}#cut"}, "count": {"N": str(count)},
                "set_at": {"S": dt.datetime.now(dt.UTC).isoformat()}}, **condition)
        except ConditionFailed:
            stored = self.cut(entity)
            return stored if stored is not None else self.set_cut(entity, count, replace=False)
        return count

    # -- segment plans -------------------------------------------------------------------
    @staticmethod
    def _plan_id(entity: str, count: int) -> str:
        return f"{entity}#plan/{count}"

    def load_plan(self, entity: str, count: int, *, create_table: bool = True
                  ) -> SegmentPlan | None:
        """The stored plan of `entity` in `count` segments, or None. Without
        `create_table` a missing table means no plan (a dry run creates nothing)."""
        if create_table:
            self.ensure_table()
        try:
            response = self.ddb.call("GetItem", TableName=self.table, ConsistentRead=True,
                                     Key={"id": {"S": self._plan_id(entity, count)}})
        except TableNotFound:
            if create_table:
                raise
            return None
        item = response.get("Item")
        if item is None:
            return None
        return SegmentPlan.from_state(entity, count, item["generation"]["S"],
                                      json.loads(item["state"]["S"]))

    def _put_plan(self, plan: SegmentPlan, condition: dict[str, Any]) -> SegmentPlan:
        self.ensure_table()
        try:
            self.ddb.call("PutItem", TableName=self.table, Item={
                "id": {"S": self._plan_id(plan.entity, plan.count)},
                "generation": {"S": plan.generation},
                "state": {"S": json.dumps(plan.to_state())}}, **condition)
        except ConditionFailed:
            # Another process stored its plan first: everyone follows that one.
            stored = self.load_plan(plan.entity, plan.count)
            if stored is None:  # replaced, then deleted meanwhile: try again
                return self.create_plan(plan)
            return stored
        return plan

    def create_plan(self, plan: SegmentPlan) -> SegmentPlan:
        """Store `plan` unless a plan of its entity and count exists; returns the plan
        that is stored now (this one, or the one another process stored first)."""
        return self._put_plan(plan, {"ConditionExpression": "attribute_not_exists(id)"})

    def replace_plan(self, old: SegmentPlan, new: SegmentPlan) -> SegmentPlan:
        """Store `new` in place of `old` (`--restart`), unless another process replaced
        `old` first; returns the plan that is stored now."""
        return self._put_plan(new, {
            "ConditionExpression": "#g = :g", "ExpressionAttributeNames": {"#g": "generation"},
            "ExpressionAttributeValues": {":g": {"S": old.generation}}})
