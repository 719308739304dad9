"""The toolkit's own DynamoDB table, beside the application's.

It holds what must outlive any one process and be shared by processes on
several machines: the backfill's checkpoints and segment plans (see
`migration.backfill.checkpoints`) and the highest version written per source
database (see `migration.sync.versions`). One item per purpose, keyed by `id`.
It is created on first use (on demand, pay per request); `migrate schema apply`
creates it too, for deployments whose application role may not create tables.
"""

from __future__ import annotations

import contextlib

from migration.dynamodb.client import DynamoDB
from migration.errors import ResourceInUse, TableNotFound

TABLE = "migrate_backfill_checkpoints"


class ToolkitTable:
    """The table's physical name, and its creation when it is missing."""

    def __init__(self, ddb: DynamoDB, wait_seconds: float = 60.0):
        self.ddb = ddb
        self.name = ddb.table_name(TABLE)
        self.wait_seconds = wait_seconds
        self._ready = False

    def ensure(self) -> None:
        """Create the table unless it exists (another process may create it meanwhile)."""
        if self._ready:
            return
        try:
            self.ddb.call("DescribeTable", TableName=self.name)
        except TableNotFound:
            with contextlib.suppress(ResourceInUse):
                self.ddb.call("CreateTable", TableName=self.name,
                              KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
            waiter = self.ddb.client.get_waiter("table_exists")
            waiter.wait(TableName=self.name,
                        WaiterConfig={"Delay": 1, "MaxAttempts": int(self.wait_seconds)})
        self._ready = True
