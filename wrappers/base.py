"""The DualWriteWrapper base: writes through the sync engine, reads by phase.

An application's wrapper for one entity subclasses it, names the entity's flag
(its contract entity type in lower case) and takes the application's `DualWrite`.
A wrapper method names the rows its MySQL write touches (`Touch`) and the
write itself (a call on the application's MySQL code, bound to the engine's
transaction); the sync engine does the rest (see `migration.sync.engine`).
Reads go to MySQL, to DynamoDB, or to both (shadow), as the entity's phase says; a
shadow read's difference counts when it outlasts re-reads of both stores (a write in
flight makes them differ for a moment).

In `dynamodb_only` MySQL is no longer written: a write goes to the `dynamodb`
path the wrapper method gives (the application's DynamoDB-native write), and so
does a write that started on the MySQL path while the entity moved there (the
engine's fence finds it and rolls MySQL back: `PhaseMoved`). A DynamoDB-native write
refused by the table's write fence (a catch-up going back: `FenceClosed`) waits and
takes the path of the phase it then finds; it never fails for it, unless the fence stays
closed longer than `fence_wait_seconds` (`FenceTimeout`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import Connection

from migration.backoff import pause
from migration.dynamodb.fence import FenceClosed, FenceTimeout
from migration.sync.dependencies import Key
from migration.sync.engine import PhaseMoved, Touch
from wrappers.flags import FlagError, Phase

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

    @property
    def entity(self) -> str:
        """The contract entity this wrapper writes (its flag names it)."""
        return self.app.flags.entities[self.flag]

    def _write(self, operation: str, touches: Sequence[Touch], write: Callable[[Connection], T],
               created: Callable[[T], Sequence[tuple[str, Key]]] | None = None, *,
               dynamodb: Callable[[], T] | None = None) -> T:
        """One write: MySQL first and DynamoDB as the phases say, or, in `dynamodb_only`,
        the `dynamodb` path alone. A `dynamodb` path refused by a closed write fence (a
        catch-up switching back: `migration.dynamodb.fence`) did nothing: the write waits,
        re-reading the phase, and takes the path of the phase it then finds."""
        flags = self.app.flags
        waited = _FenceWait(self, operation)
        while True:
            if flags.flag(self.flag).phase is Phase.DYNAMODB_ONLY:
                try:
                    return self._dynamodb_only(operation, dynamodb)
                except FenceClosed as closed:
                    waited.after(closed)
                    continue
            try:
                return self.app.run(operation, touches, write, created=created,
                                    entity=self.entity)
            except PhaseMoved:
                flags.invalidate()  # to dynamodb_only meanwhile: its path, as read afresh

    def _dynamodb_only(self, operation: str, dynamodb: Callable[[], T] | None) -> T:
        if dynamodb is None:
            raise FlagError(f"{operation}: {self.flag} is dynamodb_only and this write has no "
                            "DynamoDB path: give the wrapper one, or catch MySQL up and go back")
        return dynamodb()

    def _read(self, operation: str, key: Sequence[Any], from_mysql: Callable[[], T],
              from_dynamodb: Callable[[], T],
              compare: Callable[[T, T], Mapping[str, Any]] | None = None, *,
              of: str | None = None) -> T:
        """Answer a read from the store the phase names; in shadow_read, compare both.
        `of` names the flag of the entity read when it is not the wrapper's own (a wrapper
        that also reads a child entity): the read follows that flag's phase, and its
        comparisons count for that entity's gates."""
        flags = self.app.flags
        name = of or self.flag
        flag = flags.flag(name)
        if flag.phase in (Phase.DYNAMODB_READ, Phase.DYNAMODB_ONLY) and \
                flags.reads_dynamodb(name, key):
            return from_dynamodb()
        answer = from_mysql()
        if flag.phase is Phase.SHADOW_READ:
            differences = _shadow(answer, from_mysql, from_dynamodb, compare or _default_compare)
            self.app.ledger.compared(flags.entities[name], operation, list(key),
                                     bool(differences))
            if differences:
                self.app.shadow_mismatches += 1
                log.warning("shadow read %s %s differs: %s", operation, list(key), differences)
                flags.record_mismatch(name, operation, list(key), differences)
        return answer


class _FenceWait:
    """One write's wait at a closed fence, bounded by `settings.fence_wait_seconds`."""

    def __init__(self, wrapper: DualWriteWrapper, operation: str):
        self.wrapper = wrapper
        self.operation = operation
        self.attempt = 0
        self.deadline = 0.0

    def after(self, closed: FenceClosed) -> None:
        """Return when the write may be tried again (on the path its phase now says)."""
        flags = self.wrapper.app.flags
        limit = self.wrapper.app.settings.fence_wait_seconds
        if self.attempt == 0:
            self.deadline = time.monotonic() + limit
        self.attempt += 1
        while True:
            state = closed.fence.state()  # the fence first, then the phase (see fence.py)
            flags.invalidate()
            if flags.flag(self.wrapper.flag).phase is not Phase.DYNAMODB_ONLY:
                return  # switched back: the MySQL path
            if state.is_open:
                return
            if state.state == "released" and self.wrapper.app.ready_for_dynamodb_only():
                # In dynamodb_only again since the switch back, and prepared for it: a
                # process that slept through the catch-up (its memory says ready) passes
                # the fence only once the application is ready again.
                closed.fence.reopen(state)
                return
            if time.monotonic() >= self.deadline:
                raise FenceTimeout(closed.table, self.operation, limit, state)
            pause(self.attempt, base=0.01, cap=0.2)
            self.attempt += 1


# Pauses before reading both stores again when a shadow read differs. A dual-write puts
# DynamoDB's items before MySQL commits, so a read between the two (or a write landing
# between the two reads) differs for a moment without anything being wrong; a real
# difference outlasts every re-read. As reconcile re-checks its candidates.
SHADOW_RECHECK_PAUSES = (0.01, 0.05, 0.2)


def _shadow(answer: T, from_mysql: Callable[[], T], from_dynamodb: Callable[[], T],
            compare: Callable[[T, T], Mapping[str, Any]]) -> Mapping[str, Any]:
    """The differences between MySQL's `answer` and DynamoDB's, when they last through
    every re-read of both stores (`SHADOW_RECHECK_PAUSES`); the last re-read's."""
    differences: Mapping[str, Any] = {}
    for wait in (None, *SHADOW_RECHECK_PAUSES):
        try:
            if wait is not None:
                time.sleep(wait)
                answer = from_mysql()
            differences = compare(answer, from_dynamodb())
        except Exception as err:  # noqa: BLE001 - a shadow read never fails the caller
            differences = {"_error": f"{type(err).__name__}: {err}"}
        if not differences:
            return differences
    return differences


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
