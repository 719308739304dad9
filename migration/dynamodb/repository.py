"""Entity repositories: every access pattern of a contract (or of a plain schema in AWS's
DynamoDB MCP format), run by name against DynamoDB.

The public names of the access-pattern runtime, which lives in
`migration.dynamodb.runtime` split along its seams (parameters, plans, the
repository, pagination, errors). Items are built only by `ItemMapper.to_item` and
read only through `ItemMapper.values`, so a repository writes exactly what
backfill and dual-write write. Every request goes through `DynamoDB.call`.
"""

from migration.dynamodb.runtime.errors import (
    InvalidCursor,
    ItemAlreadyExists,
    ParameterError,
    PatternNotRunnable,
    RuntimeInputError,
    StoredItemInvalid,
    UnknownEntity,
    UnknownPattern,
    VersionConflict,
)
from migration.dynamodb.runtime.pagination import Page, decode_cursor, encode_cursor
from migration.dynamodb.runtime.parameters import (
    Options,
    bind_parameters,
    coerce_entity,
    coerce_parameter,
)
from migration.dynamodb.runtime.plans import PutSpec, UpdateSpec
from migration.dynamodb.runtime.repository import Repositories, Repository

__all__ = [
    "InvalidCursor", "ItemAlreadyExists", "Options", "Page", "ParameterError",
    "PatternNotRunnable", "PutSpec", "Repositories", "Repository", "RuntimeInputError",
    "StoredItemInvalid", "UnknownEntity", "UnknownPattern", "UpdateSpec", "VersionConflict",
    "bind_parameters", "coerce_entity", "coerce_parameter", "decode_cursor", "encode_cursor",
]
