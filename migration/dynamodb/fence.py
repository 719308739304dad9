"""The write fence of an application table: DynamoDB-native writes that a catch-up can stop.

While an application is in `dynamodb_only`, MySQL is not written and DynamoDB alone holds
its changes. Going back needs MySQL to catch up (`migration.sync.catch_up`), and the last
changes must not slip past the catch-up's final drain. So each DynamoDB-native write of
the application is a TransactWriteItems carrying a ConditionCheck on the table's fence
item; the catch-up closes the fence, and from then no such write commits: DynamoDB
serializes the close against every transaction that checks the item, so a write either
commits before it (and is in the table's stream, which the catch-up drains) or is
cancelled (`FenceClosed`) and retried by the application on the path of the new phase.

The fence item lives in the toolkit's own table (`migration.dynamodb.toolkit_table`),
never in the application's, one per fenced table (`id` `fence#<physical table>`):

- no item, or `state` `open`: writes pass;
- `closed`: a catch-up is draining; writers wait (and re-read their phase);
- `released`: the catch-up has switched the application back; writers take the path of
  their phase as it now is. Writers that find their phase `dynamodb_only` again (moved
  forward since) reopen the fence first (`reopen`, conditioned on the release they saw):
  read in that order (fence, then phase), a phase read before the switch back can never
  reopen it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from migration.dynamodb.client import DynamoDB
from migration.dynamodb.toolkit_table import ToolkitTable
from migration.errors import ConditionFailed, MigrateError, Terminal, TransactionCancelled

OPEN, CLOSED, RELEASED = "open", "closed", "released"


@dataclass(frozen=True)
class FenceState:
    """The fence as read: its state, who set it (a catch-up's run id) and when (UTC)."""

    state: str = OPEN
    by: str = ""
    at: str = ""

    @property
    def is_open(self) -> bool:
        return self.state == OPEN


class FenceClosed(MigrateError, Terminal):
    """A fenced write was refused: a catch-up closed the fence (the write did nothing)."""

    def __init__(self, fence: WriteFence, table: str):
        self.fence = fence
        self.table = table
        super().__init__(f"the write fence of {table} is closed: a catch-up is switching "
                         "the application back from dynamodb_only")


class FenceTimeout(MigrateError, Terminal):
    """A write waited for a closed fence longer than it may."""

    def __init__(self, table: str, operation: str, seconds: float, state: FenceState):
        self.table = table
        self.state = state
        super().__init__(
            f"{operation}: the write fence of {table} stayed {state.state} for {seconds:g} s "
            f"(set by catch-up {state.by or '?'} at {state.at or '?'}); if no catch-up is "
            "running any more, run the application's catch-up again (it reopens the fence "
            "when it fails), or retry the request")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class WriteFence:
    """The fence of one application table (`table`: its physical name)."""

    def __init__(self, ddb: DynamoDB, table: str, *, toolkit: ToolkitTable | None = None):
        self.ddb = ddb
        self.table = table
        self.toolkit = toolkit or ToolkitTable(ddb)
        self.key = {"id": {"S": f"fence#{table}"}}

    # -- writers -------------------------------------------------------------------------
    def check(self) -> dict[str, Any]:
        """The ConditionCheck a fenced transaction carries: the fence is open."""
        self.toolkit.ensure()
        return {"ConditionCheck": {
            "TableName": self.toolkit.name, "Key": self.key,
            "ConditionExpression": "attribute_not_exists(#state) OR #state = :open",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {":open": {"S": OPEN}}}}

    def transact(self, actions: Sequence[Mapping[str, Any]]) -> None:
        """One TransactWriteItems of `actions` and the fence's check (last); `FenceClosed`
        when the fence refused it, the `TransactionCancelled` as it is otherwise."""
        fenced = [*actions, self.check()]
        try:
            self.ddb.call_json("TransactWriteItems", {"TransactItems": fenced})
        except TransactionCancelled as err:
            if any(r.index == len(actions) and r.code == "ConditionalCheckFailed"
                   for r in err.reasons):
                raise FenceClosed(self, self.table) from err
            raise

    def state(self) -> FenceState:
        """The fence as it is now (a consistent read)."""
        self.toolkit.ensure()
        item = self.ddb.call("GetItem", TableName=self.toolkit.name, Key=self.key,
                             ConsistentRead=True).get("Item")
        if item is None:
            return FenceState()
        return FenceState(item.get("state", {}).get("S", OPEN), item.get("by", {}).get("S", ""),
                          item.get("at", {}).get("S", ""))

    def reopen(self, seen: FenceState) -> None:
        """Open a fence a catch-up released, if it is still the release `seen` (a writer
        that found its phase `dynamodb_only` again after reading the fence)."""
        if seen.state != RELEASED:
            return
        # Failing: another writer reopened it, or a new catch-up closed it (read it again).
        with contextlib.suppress(ConditionFailed):
            self._set(OPEN, "writer", condition="#state = :seen AND #by = :by",
                      values={":seen": {"S": RELEASED}, ":by": {"S": seen.by}})

    # -- the catch-up ---------------------------------------------------------------------
    def close(self, by: str) -> None:
        """Stop every fenced write from now on (those committed before are in the stream)."""
        self._set(CLOSED, by)

    def release(self, by: str) -> None:
        """After the switch back: waiting writers take the path of their phase as it is."""
        self._set(RELEASED, by)

    def open(self, by: str) -> None:
        """Let fenced writes through again (a catch-up that did not switch back)."""
        self._set(OPEN, by)

    def _set(self, state: str, by: str, *, condition: str | None = None,
             values: Mapping[str, Any] | None = None) -> None:
        self.toolkit.ensure()
        params: dict[str, Any] = {
            "TableName": self.toolkit.name,
            "Item": {**self.key, "state": {"S": state}, "by": {"S": by}, "at": {"S": _now()},
                     "table": {"S": self.table}}}
        if condition is not None:
            params["ConditionExpression"] = condition
            params["ExpressionAttributeNames"] = {"#state": "state", "#by": "by"}
            params["ExpressionAttributeValues"] = dict(values or {})
        self.ddb.call("PutItem", **params)
