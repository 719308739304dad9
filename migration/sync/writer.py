"""Version-guarded DynamoDB writes: an older state never overwrites a newer one.

Every item the toolkit writes carries a version (the outbox id of the change,
see `migration.sync.outbox`). Puts and deletes are conditional on the stored
version being lower, so replaying a change is harmless and a stale writer
loses. One action goes out as PutItem/DeleteItem; several as
TransactWriteItems, chunked by 100 actions and 4 MB. An action refused because
DynamoDB already holds a newer version is *superseded*, not an error: it is
dropped and the rest of its chunk is sent again. Unique guard items also check
their owner; a guard held by another row is a `UniqueConflict`.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from migration.dynamodb.client import DynamoDB
from migration.errors import (
    ConditionFailed,
    MigrateError,
    Terminal,
    TransactionCancelled,
)
from migration.mapping.item import OWNER_ATTRIBUTE, item_size
from migration.mapping.values import Item

MAX_TRANSACTION_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024 - 64 * 1024  # leave room for the envelope


class UniqueConflict(MigrateError, Terminal):
    """A unique guard item is held by another row: two rows claim one unique value."""

    def __init__(self, table: str, key: Mapping[str, Any], owner: str, claimed_by: str):
        self.table = table
        self.key = dict(key)
        self.owner = owner
        self.claimed_by = claimed_by
        super().__init__(f"unique value {key} in {table} is held by {owner}, "
                         f"not {claimed_by}")


@dataclass(frozen=True)
class Put:
    """Write `item` (physical table name) unless a newer version is stored."""

    table: str
    item: Item
    key: Item
    owner: str | None = None  # set for unique guard items


@dataclass(frozen=True)
class Delete:
    """Delete the item at `key` unless a newer version is stored."""

    table: str
    key: Item
    owner: str | None = None


Action = Put | Delete


@dataclass
class WriteResult:
    written: int = 0
    superseded: list[Action] = field(default_factory=list)
    requests: int = 0


class VersionedWriter:
    """Sends version-guarded actions through the DynamoDB choke point."""

    def __init__(self, ddb: DynamoDB, version_attribute: str = "_version",
                 conflict_attempts: int = 10):
        self.ddb = ddb
        self.version_attribute = version_attribute
        self.conflict_attempts = conflict_attempts

    # -- request building ------------------------------------------------------------
    def _request(self, action: Action, version: int) -> tuple[str, dict[str, Any]]:
        names = {"#v": self.version_attribute}
        values: dict[str, Any] = {":v": {"N": str(version)}}
        newer = "(attribute_not_exists(#v) OR #v < :v)"
        if isinstance(action, Put):
            item = dict(action.item)
            item[self.version_attribute] = {"N": str(version)}
            condition = newer
            if action.owner is not None:
                names["#o"] = OWNER_ATTRIBUTE
                names["#k"] = next(iter(action.key))
                values[":o"] = {"S": action.owner}
                condition = f"(attribute_not_exists(#k) OR #o = :o) AND {newer}"
            return "Put", {"TableName": action.table, "Item": item,
                           "ConditionExpression": condition,
                           "ExpressionAttributeNames": names,
                           "ExpressionAttributeValues": values}
        condition = newer
        if action.owner is not None:
            names["#o"] = OWNER_ATTRIBUTE
            names["#k"] = next(iter(action.key))
            values[":o"] = {"S": action.owner}
            condition = f"attribute_not_exists(#k) OR (#o = :o AND {newer})"
        return "Delete", {"TableName": action.table, "Key": action.key,
                          "ConditionExpression": condition,
                          "ExpressionAttributeNames": names,
                          "ExpressionAttributeValues": values}

    def _superseded_or_conflict(self, action: Action, stored: Mapping[str, Any] | None) -> None:
        """Decide why a condition failed: a newer version (fine) or another owner (not)."""
        if action.owner is not None and stored is not None:
            owner = stored.get(OWNER_ATTRIBUTE, {}).get("S")
            if owner is not None and owner != action.owner:
                raise UniqueConflict(action.table, action.key, owner, action.owner)

    # -- sending ---------------------------------------------------------------------
    def write(self, actions: Sequence[Action], version: int) -> WriteResult:
        """Apply the actions with `version`; raises UniqueConflict or a DynamoDBError."""
        result = WriteResult()
        if not actions:
            return result
        if len(actions) == 1:
            self._single(actions[0], version, result)
            return result
        for chunk in _chunks(actions):
            self._transaction(chunk, version, result)
        return result

    def _single(self, action: Action, version: int, result: WriteResult) -> None:
        kind, params = self._request(action, version)
        result.requests += 1
        try:
            self.ddb.call(f"{kind}Item", ReturnValuesOnConditionCheckFailure="ALL_OLD", **params)
        except ConditionFailed as err:
            self._superseded_or_conflict(action, err.item)
            result.superseded.append(action)
            return
        result.written += 1

    def _transaction(self, chunk: list[Action], version: int, result: WriteResult) -> None:
        pending = list(chunk)
        attempt = 0
        while pending:
            if len(pending) == 1:
                self._single(pending[0], version, result)
                return
            items = []
            for action in pending:
                kind, params = self._request(action, version)
                params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
                items.append({kind: params})
            result.requests += 1
            try:
                # Unique per request: the choke point's own retries resend the same params,
                # so a request that did land is not applied twice; a token must never be
                # reused for other params (another database may have the same versions).
                token = f"{uuid.uuid4().hex[:24]}-{version % 10**11}"
                self.ddb.call("TransactWriteItems", TransactItems=items, ClientRequestToken=token)
            except TransactionCancelled as err:
                attempt += 1
                failed = {r.index: r for r in err.failed}
                conditions = {i: r for i, r in failed.items() if r.code == "ConditionalCheckFailed"}
                if conditions:
                    for i, reason in conditions.items():
                        self._superseded_or_conflict(pending[i], reason.item)
                        result.superseded.append(pending[i])
                    pending = [a for i, a in enumerate(pending) if i not in conditions]
                    continue
                if err.only_conflicts and attempt < self.conflict_attempts:
                    time.sleep(random.uniform(0, min(2.0, 0.02 * 2 ** attempt)))
                    continue
                raise
            result.written += len(pending)
            return


def _chunks(actions: Sequence[Action]) -> list[list[Action]]:
    chunks: list[list[Action]] = []
    current: list[Action] = []
    size = 0
    for action in actions:
        weight = item_size(action.item) if isinstance(action, Put) else item_size(action.key)
        if current and (len(current) == MAX_TRANSACTION_ACTIONS
                        or size + weight > MAX_TRANSACTION_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(action)
        size += weight
    if current:
        chunks.append(current)
    return chunks
