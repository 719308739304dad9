"""The schema history: one DynamoDB item per schema change `schema apply` made.

Owns the history table (physical name `ddb.table_name("migrate_schema_history")`),
the shape of its items and reading them back. Items are keyed by the contract
table name (`PK`) and the time of the change plus a short id (`SK`), so one
table's history is a single Query in the order the changes were made. Creating
the table and waiting for it is `migration.dynamodb.schema`'s job (it owns the
waiting); this module only says what the table looks like.
"""

from __future__ import annotations

import getpass
import json
import socket
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from migration import __version__
from migration.dynamodb.client import DynamoDB
from migration.errors import TableNotFound

HISTORY_TABLE = "migrate_schema_history"


@dataclass(frozen=True)
class HistoryRecord:
    """One applied schema change, as stored in the history table."""

    table: str
    applied_at: str  # ISO-8601 UTC, fixed width, so string order is time order
    change_id: str
    kind: str
    description: str
    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)
    destructive: bool = False
    physical_table: str = ""
    applied_by: str = ""
    host: str = ""
    toolkit_version: str = ""
    endpoint: str = ""

    @property
    def sort_key(self) -> str:
        return f"{self.applied_at}#{self.change_id}"


def history_table_name(ddb: DynamoDB) -> str:
    """The physical name of the history table (the table prefix applies to it too)."""
    return ddb.table_name(HISTORY_TABLE)


def history_table_params(ddb: DynamoDB) -> dict[str, Any]:
    """CreateTable parameters of the history table."""
    return {
        "TableName": history_table_name(ddb),
        "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"},
                      {"AttributeName": "SK", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "PK", "AttributeType": "S"},
                                 {"AttributeName": "SK", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # getuser() fails in containers whose uid has no passwd entry.
        return "unknown"


def new_record(*, table: str, physical_table: str, kind: str, description: str,
               operation: str, params: Mapping[str, Any], destructive: bool,
               endpoint: str) -> HistoryRecord:
    """A record for a change just made, stamped with now, this user, host and version."""
    return HistoryRecord(
        table=table, applied_at=_now(), change_id=uuid.uuid4().hex[:8], kind=kind,
        description=description, operation=operation, params=dict(params),
        destructive=destructive, physical_table=physical_table, applied_by=_user(),
        host=socket.gethostname(), toolkit_version=__version__, endpoint=endpoint,
    )


def to_item(record: HistoryRecord) -> dict[str, Any]:
    """The DynamoDB item (wire format) for a record."""
    return {
        "PK": {"S": record.table},
        "SK": {"S": record.sort_key},
        "applied_at": {"S": record.applied_at},
        "change_id": {"S": record.change_id},
        "kind": {"S": record.kind},
        "description": {"S": record.description},
        "operation": {"S": record.operation},
        "params": {"S": json.dumps(record.params, sort_keys=True, default=str)},
        "destructive": {"BOOL": record.destructive},
        "physical_table": {"S": record.physical_table or record.table},
        "applied_by": {"S": record.applied_by or "unknown"},
        "host": {"S": record.host or "unknown"},
        "toolkit_version": {"S": record.toolkit_version or "unknown"},
        "endpoint": {"S": record.endpoint or "unknown"},
    }


def from_item(item: Mapping[str, Any]) -> HistoryRecord:
    """The record an item of the history table holds."""

    def text(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    applied_at, _, change_id = text("SK").partition("#")
    return HistoryRecord(
        table=text("PK"), applied_at=applied_at, change_id=change_id, kind=text("kind"),
        description=text("description"), operation=text("operation"),
        params=json.loads(text("params") or "{}"),
        destructive=bool(item.get("destructive", {}).get("BOOL", False)),
        physical_table=text("physical_table"), applied_by=text("applied_by"),
        host=text("host"), toolkit_version=text("toolkit_version"), endpoint=text("endpoint"),
    )


def write(ddb: DynamoDB, record: HistoryRecord) -> None:
    """Store one record; the history table must exist."""
    ddb.call("PutItem", TableName=history_table_name(ddb), Item=to_item(record),
             # A record is never overwritten: the short id makes a clash a bug, not a retry.
             ConditionExpression="attribute_not_exists(PK)")


def _pages(ddb: DynamoDB, operation: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    while True:
        page = ddb.call(operation, **params)
        yield from page.get("Items", [])
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        params = {**params, "ExclusiveStartKey": last}


def history(ddb: DynamoDB, table: str | None = None) -> list[HistoryRecord]:
    """Every recorded schema change, oldest first; only `table`'s when given.

    `table` is the contract (logical) table name. Returns an empty list when no
    change was ever applied (the history table does not exist yet).
    """
    name = history_table_name(ddb)
    if table is None:
        operation, params = "Scan", {"TableName": name, "ConsistentRead": True}
    else:
        operation = "Query"
        params = {"TableName": name, "KeyConditionExpression": "PK = :t",
                  "ExpressionAttributeValues": {":t": {"S": table}}, "ConsistentRead": True}
    try:
        records = [from_item(item) for item in _pages(ddb, operation, params)]
    except TableNotFound:
        return []
    return sorted(records, key=lambda r: (r.applied_at, r.table, r.change_id))
