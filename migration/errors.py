"""The project's exceptions: one base class, subclasses that carry their evidence.

Every error says whether retrying can help: `Transient` errors (throttling, a
transaction conflict, an unreachable endpoint) may succeed when tried again,
`Terminal` ones (a bad contract, a failed condition) never will. One
`except Transient` decides whether to retry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class MigrateError(Exception):
    """Base class of every error this toolkit raises on purpose."""


class Transient:
    """Mixin: the operation may succeed if retried."""


class Terminal:
    """Mixin: retrying cannot help."""


@dataclass(frozen=True)
class ContractIssue:
    """One problem found in a contract: where it is and why it is wrong."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


class ContractError(MigrateError, Terminal):
    """A contract (or seed-002 schema) is invalid; carries every issue found."""

    def __init__(self, issues: Sequence[ContractIssue]):
        self.issues = list(issues)
        if len(self.issues) == 1:  # one line, as a command prints it
            super().__init__(f"1 problem in the contract: {self.issues[0]}")
            return
        lines = "\n".join(f"  - {issue}" for issue in self.issues)
        super().__init__(f"{len(self.issues)} problem(s) in the contract:\n{lines}")


class KeyTemplateError(MigrateError, Terminal):
    """A key template is malformed, or a value cannot be put in a key without ambiguity."""

    def __init__(self, template: str, reason: str, field: str | None = None):
        self.template = template
        self.reason = reason
        self.field = field
        where = f" (placeholder {{{field}}})" if field else ""
        super().__init__(f"key template {template!r}{where}: {reason}")


class ItemError(MigrateError, Terminal):
    """A source row cannot become a DynamoDB item (empty key, too large, ...).

    Carries the entity, the row's primary key and the reason, so a dead-letter
    report can say exactly which row was refused and why.
    """

    def __init__(self, entity: str, source_key: Mapping[str, Any], reason: str):
        self.entity = entity
        self.source_key = dict(source_key)
        self.reason = reason
        key = ", ".join(f"{k}={v!r}" for k, v in self.source_key.items())
        super().__init__(f"{entity} row ({key}) cannot become an item: {reason}")


class ConfigError(MigrateError, Terminal):
    """A setting is missing or invalid."""


class ServiceError(MigrateError, Terminal):
    """A local service (MySQL/MariaDB or DynamoDB Local) could not be found or started."""


class MySQLUnreachable(MigrateError, Transient):
    """No MySQL server answered at the URL's host and port (`url` is masked)."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach MySQL at {url} ({reason}): check the host and port of "
                         "MIGRATE_MYSQL_URL (or --mysql-url), or start a local server with "
                         "`migrate services up`")


class MySQLAccessDenied(MigrateError, Terminal):
    """The MySQL server refused the URL's user and password."""

    def __init__(self, url: str, user: str, reason: str):
        self.url = url
        self.user = user
        self.reason = reason
        super().__init__(f"MySQL at {url} refused user {user!r} ({reason}): check the user and "
                         "password in MIGRATE_MYSQL_URL (or --mysql-url) and MIGRATE_MYSQL_PASSWORD")


class UnknownDatabase(MigrateError, Terminal):
    """The MySQL server answers, but the URL's database does not exist."""

    def __init__(self, url: str, database: str):
        self.url = url
        self.database = database
        super().__init__(f"MySQL database {database!r} does not exist ({url}): create it with "
                         f"CREATE DATABASE `{database}` (and your application's schema; the "
                         "reference shop's: `migrate shop db upgrade --create`), or name "
                         "another database in MIGRATE_MYSQL_URL")


class SchemaChangeRefused(MigrateError, Terminal):
    """`schema apply` will not make a change: DynamoDB cannot do it in place, or it
    would delete something and `--allow-destructive` was not given."""

    def __init__(self, table: str, reasons: Sequence[str]):
        self.table = table
        self.reasons = list(reasons)
        super().__init__(f"table {table}: " + "; ".join(self.reasons))


class SchemaWaitTimeout(MigrateError, Transient):
    """A table or index did not reach the awaited state in time.

    Transient: DynamoDB is usually still working on it; running `schema apply`
    again later continues from where the table is.
    """

    def __init__(self, table: str, what: str, seconds: float, status: str):
        self.table = table
        self.what = what
        self.seconds = seconds
        self.status = status
        super().__init__(f"table {table}: gave up after {seconds:.0f}s waiting for {what} "
                         f"(last seen: {status})")


class DynamoDBError(MigrateError):
    """A DynamoDB call failed; the botocore error is kept as `__cause__`."""

    def __init__(self, operation: str, code: str, message: str):
        self.operation = operation
        self.code = code
        super().__init__(f"{operation} failed: {code}: {message}")


class DynamoDBUnavailable(DynamoDBError, Transient):
    """The endpoint could not be reached, or answered with a server error."""


class Throttled(DynamoDBError, Transient):
    """DynamoDB refused the request for capacity reasons."""


class ConditionFailed(DynamoDBError, Terminal):
    """A condition expression evaluated to false; `item` is the item as it stood, when
    the request asked for it (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""

    def __init__(self, operation: str, code: str, message: str,
                 item: Mapping[str, Any] | None = None):
        super().__init__(operation, code, message)
        self.item = item


class UnsupportedByEndpoint(DynamoDBError, Terminal):
    """The endpoint does not implement this operation (DynamoDB Local lacks some)."""


class TableNotFound(DynamoDBError, Terminal):
    """The table (or index) does not exist; `table` names it when the request did."""

    def __init__(self, operation: str, code: str, message: str, table: str | None = None):
        super().__init__(operation, code, message)
        self.table = table


class NoCredentials(DynamoDBError, Terminal):
    """No endpoint was configured (so AWS is meant) and boto3 found no AWS credentials."""


class ResourceInUse(DynamoDBError, Terminal):
    """The table or index is being created, updated or deleted, or already exists."""


class InvalidRequest(DynamoDBError, Terminal):
    """DynamoDB rejected the request as invalid (ValidationException)."""


class TransactionConflict(DynamoDBError, Transient):
    """Another transaction is working on one of the items; retry with backoff."""


@dataclass(frozen=True)
class CancellationReason:
    """Why one action of a cancelled transaction failed (`None` code: it did not)."""

    index: int
    code: str | None
    message: str = ""
    item: Mapping[str, Any] | None = None


class TransactionCancelled(DynamoDBError):
    """A TransactWriteItems/TransactGetItems was cancelled; says which action failed and why.

    `reasons` has one entry per action, in request order, as DynamoDB returns them.
    """

    def __init__(self, operation: str, message: str, reasons: Sequence[CancellationReason]):
        self.reasons = list(reasons)
        failed = [r for r in self.reasons if r.code not in (None, "None")]
        detail = ", ".join(f"action {r.index}: {r.code}" for r in failed) or message
        super().__init__(operation, "TransactionCanceledException", detail)

    @property
    def failed(self) -> list[CancellationReason]:
        return [r for r in self.reasons if r.code not in (None, "None")]

    @property
    def only_conflicts(self) -> bool:
        """True when every failing action failed because of a conflict or throttling,
        so the whole transaction may be retried."""
        codes = {r.code for r in self.failed}
        return bool(codes) and codes <= {"TransactionConflict", "ThrottlingError",
                                         "ProvisionedThroughputExceeded"}
