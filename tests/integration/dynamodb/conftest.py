"""Fixtures for the DynamoDB runtime tests: one table prefix per test module, so a
module creates its tables and sample items once and its tests only read (or write
to keys of their own)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from migration.dynamodb.client import DynamoDB
from migration.settings import Settings


@pytest.fixture(scope="module")
def module_ddb(_dynamodb_session: Settings) -> Iterator[DynamoDB]:
    """A DynamoDB Local client with a table prefix of the module's own; its tables are
    deleted when the module is done."""
    settings = _dynamodb_session.model_copy(update={"table_prefix": f"m{uuid.uuid4().hex[:10]}_"})
    ddb = DynamoDB(settings)
    yield ddb
    for name in ddb.call("ListTables").get("TableNames", []):
        if name.startswith(settings.table_prefix):
            with contextlib.suppress(Exception):
                ddb.call("DeleteTable", TableName=name)
