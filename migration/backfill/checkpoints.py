"""Backfill checkpoints, kept in DynamoDB so processes on several machines share them.

One item per entity and segment: the last primary key of the longest run of
chunks DynamoDB has fully taken, plus counters. A checkpoint is written only
after DynamoDB has every chunk up to it, so a rerun after SIGKILL redoes at most
the chunks that were in flight.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from migration.dynamodb.client import DynamoDB
from migration.errors import ResourceInUse, TableNotFound
from migration.sync.outbox import _decode, _encode

TABLE = "migrate_backfill_checkpoints"


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

    @property
    def id(self) -> str:
        return f"{self.entity}#{self.segment}"


class CheckpointStore:
    """Reads and writes checkpoints in the `migrate_backfill_checkpoints` table."""

    def __init__(self, ddb: DynamoDB, wait_seconds: float = 60.0):
        self.ddb = ddb
        self.table = ddb.table_name(TABLE)
        self.wait_seconds = wait_seconds
        self._ready = False

    def ensure_table(self) -> None:
        if self._ready:
            return
        try:
            self.ddb.call("DescribeTable", TableName=self.table)
        except TableNotFound:
            # Another process may create it meanwhile: that is fine.
            with contextlib.suppress(ResourceInUse):
                self.ddb.call("CreateTable", TableName=self.table,
                              KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
            waiter = self.ddb.client.get_waiter("table_exists")
            waiter.wait(TableName=self.table,
                        WaiterConfig={"Delay": 1, "MaxAttempts": int(self.wait_seconds)})
        self._ready = True

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
                          updated_at=str(state.get("updated_at", "")))

    def save(self, checkpoint: Checkpoint) -> None:
        self.ensure_table()
        checkpoint.updated_at = dt.datetime.now(dt.UTC).isoformat()
        state = {"last_key": _encode(list(checkpoint.last_key))
                 if checkpoint.last_key is not None else None,
                 "done": checkpoint.done, "rows_read": checkpoint.rows_read,
                 "items_written": checkpoint.items_written,
                 "dead_letters": checkpoint.dead_letters, "updated_at": checkpoint.updated_at}
        # Once per chunk: through the fast path, like the chunk's own writes.
        self.ddb.call_json("PutItem", {"TableName": self.table, "Item": {
            "id": {"S": checkpoint.id}, "state": {"S": json.dumps(state)}}})

    def reset(self, entity: str, segment: str) -> None:
        self.ensure_table()
        self.ddb.call("DeleteItem", TableName=self.table, Key={"id": {"S": f"{entity}#{segment}"}})
