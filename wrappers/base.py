"""The DualWriteWrapper base: writes through the sync engine, reads by phase.

An application's wrapper for one entity subclasses it, names the entity's flag
(its contract entity type in lower case) and takes the application's `DualWrite`.
A wrapper method names the rows its MySQL write touches (`Touch`) and the
write itself (a call on the application's MySQL code, bound to the engine's
transaction); the sync engine does the rest (see `migration.sync.engine`).
Reads go to MySQL, to DynamoDB, or to both (shadow), as the entity's phase says.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import Connection

from migration.sync.dependencies import Key
from migration.sync.engine import Touch
from wrappers.flags import Phase

if TYPE_CHECKING:
    from wrappers.dual_write import DualWrite

log = logging.getLogger(__name__)
T = TypeVar("T")


class DualWriteWrapper:
    """Base of an application's entity wrappers; `flag` is the entity's flag name."""

    flag: str = ""

    def __init__(self, app: DualWrite):
        self.app = app

    def _mysql(self, read: Callable[[Connection], T]) -> T:
        return self.app.read(read)

    def _write(self, operation: str, touches: Sequence[Touch], write: Callable[[Connection], T],
               created: Callable[[T], Sequence[tuple[str, Key]]] | None = None) -> T:
        return self.app.run(operation, touches, write, created=created)

    def _read(self, operation: str, key: Sequence[Any], from_mysql: Callable[[], T],
              from_dynamodb: Callable[[], T],
              compare: Callable[[T, T], Mapping[str, Any]] | None = None) -> T:
        """Answer a read from the store the phase names; in shadow_read, compare both."""
        flags = self.app.flags
        flag = flags.flag(self.flag)
        if flag.phase is Phase.DYNAMODB_READ and flags.reads_dynamodb(self.flag, key):
            return from_dynamodb()
        answer = from_mysql()
        if flag.phase is Phase.SHADOW_READ:
            try:
                shadow = from_dynamodb()
                differences = (compare or _default_compare)(answer, shadow)
            except Exception as err:  # noqa: BLE001 - a shadow read never fails the caller
                differences = {"_error": f"{type(err).__name__}: {err}"}
            if differences:
                self.app.shadow_mismatches += 1
                log.warning("shadow read %s %s differs: %s", operation, list(key), differences)
                flags.record_mismatch(self.flag, operation, list(key), differences)
        return answer


def _default_compare(mysql: Any, dynamodb: Any) -> dict[str, Any]:
    return compare_records(mysql, dynamodb)


def _identity(record: Any) -> Any:
    if hasattr(record, "id"):
        return record.id
    return tuple(getattr(record, f.name) for f in dataclasses.fields(record)[:2])


def compare_records(mysql: Any, dynamodb: Any) -> dict[str, Any]:
    """The differences between two answers: per field for one record; per record
    (by id) for lists, order ignored (DynamoDB sorts keys as text, MySQL as numbers)."""
    if mysql is None or dynamodb is None:
        if mysql is None and dynamodb is None:
            return {}
        return {"_present": {"mysql": mysql is not None, "dynamodb": dynamodb is not None}}
    if isinstance(mysql, list) and isinstance(dynamodb, list):
        left = {_identity(r): r for r in mysql}
        right = {_identity(r): r for r in dynamodb}
        out: dict[str, Any] = {}
        for key in sorted(set(left) | set(right), key=str):
            diff = compare_records(left.get(key), right.get(key))
            if diff:
                out[str(key)] = diff
        return out
    if dataclasses.is_dataclass(mysql) and dataclasses.is_dataclass(dynamodb):
        out = {}
        for field in dataclasses.fields(mysql):
            a, b = getattr(mysql, field.name), getattr(dynamodb, field.name, None)
            if a != b:
                out[field.name] = {"mysql": a, "dynamodb": b}
        return out
    return {} if mysql == dynamodb else {"value": {"mysql": mysql, "dynamodb": dynamodb}}
