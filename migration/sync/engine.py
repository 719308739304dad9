"""The sync engine: one MySQL change and the DynamoDB items it affects, kept in step.

`SyncEngine.run` wraps an application write:

1. In a READ COMMITTED transaction, lock the rows the write touches (FOR UPDATE),
   follow MySQL's own ON DELETE CASCADE / SET NULL to the rows it will change
   on its own, find every root row whose items depend on them (the contract's
   dependency graph) and read those records under shared locks: the
   before-image.
2. Run the write, re-read the touched rows, and compute the after-image the same way.
   READ COMMITTED takes no gap locks, so a row the locking read found absent (or
   outside a `where`) can be inserted by another writer before the write runs, and
   the write then changes a row the before-image never saw. A second connection
   checks for such rows after the write (its view is the last commit, without our
   own changes); any found means the operation is rolled back and retried.
3. The difference is the set of DynamoDB puts and deletes. Record it in the
   outbox (its own committed transaction; its id is the version), write
   DynamoDB with version-guarded conditions, commit MySQL, clear the outbox row.

Row locks make writers of one item take turns in MySQL's commit order, and
versions only grow in that order, so DynamoDB sees the same order. A child row
found through a lookup or embed cannot slip in unseen because inserting it takes a
shared lock on its parent (the foreign key check), which the writer holds. If DynamoDB
fails, the entity's policy decides: `rollback` (MySQL rolls back, the caller
gets `DualWriteFailed`) or `outbox` (MySQL commits; `repair` catches up). Either
way the failure is logged with its entities, operation and roots, and counted
in the ledger (`migration.ops.ledger`) beside every success, for `migrate status`.
`repair` re-syncs whatever an outbox row names, from MySQL, idempotently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from migration.backoff import pause
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.errors import DynamoDBError, ItemError, MigrateError, Terminal, Transient
from migration.mapping.item import ItemMapper
from migration.mapping.values import Item
from migration.ops.ledger import Ledger
from migration.source.catalog import Catalog, read_catalog
from migration.source.mysql import is_retryable
from migration.source.records import LOCKS, RecordReader, in_clause, quote_name, raw_query
from migration.sync.dependencies import DependencyGraph, Key, RowChange, unprotected
from migration.sync.outbox import Outbox, OutboxEntry
from migration.sync.phases import Phase
from migration.sync.versions import VersionFloor
from migration.sync.writer import (
    Action,
    AtMost,
    Delete,
    KeyCollision,
    Put,
    VersionedWriter,
    VersionRegression,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class Policy(StrEnum):
    """What a dual-write does when DynamoDB fails."""

    ROLLBACK = "rollback"
    OUTBOX = "outbox"


class DualWriteFailed(MigrateError, Terminal):
    """DynamoDB (or the mapping) failed under the `rollback` policy: MySQL rolled back."""

    def __init__(self, operation: str, cause: BaseException, repaired: bool):
        self.operation = operation
        self.repaired = repaired
        super().__init__(f"{operation}: DynamoDB write failed, MySQL rolled back "
                         f"({type(cause).__name__}: {cause})")


class PhaseMoved(MigrateError, Transient):
    """The entity being written moved to `dynamodb_only` since the caller read its phase:
    the MySQL transaction was rolled back, and the write must go to DynamoDB alone."""

    def __init__(self, entity: str):
        self.entity = entity
        super().__init__(f"{entity} is dynamodb_only now: its writes go to DynamoDB alone")


class RowRaced(MigrateError, Transient):
    """A row the write changed was committed by another writer after the locking read
    looked for it: the before-image missed it, so the operation is retried."""


class CommitFailed(MigrateError, Transient):
    """MySQL failed to commit after DynamoDB took the write; repair re-synced (or will)."""


@dataclass(frozen=True)
class Touch:
    """Rows an operation is about to write.

    Updates and deletes name the row by `key` (or every row matching `where`);
    `values` are the new column values of an update, or the whole row of an
    insert (without its auto-increment id). A touch with a key and values of a
    row that may not exist yet is an upsert. A touch that changes nothing
    (no values) just locks the row: a parent whose children the operation
    changes wholesale, so no new child can slip in meanwhile.
    """

    table: str
    key: Key | None = None
    values: Mapping[str, Any] | None = None
    delete: bool = False
    where: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class _Unseen:
    """Rows of `table` matching `where` that the locking read saw (`seen`, primary keys):
    after the write, no other committed row may match."""

    table: str
    where: Mapping[str, Any]
    seen: frozenset[Key]


@dataclass(frozen=True)
class _Slot:
    table: str  # physical table
    key: Item
    item: Item
    owner: str | None


ItemKey = tuple[str, tuple[tuple[str, str], ...]]


def _key_id(table: str, key: Mapping[str, Mapping[str, Any]]) -> ItemKey:
    return table, tuple(sorted((k, next(iter(v.values()))) for k, v in key.items()))


@dataclass
class SyncStats:
    operations: int = 0
    retries: int = 0
    items_written: int = 0
    items_deleted: int = 0
    superseded: int = 0
    dynamodb_failures: int = 0
    version_regressions: int = 0
    repairs: int = 0
    late_roots: int = 0  # operations whose write reached roots its touches did not name


class SyncEngine:
    """Runs application writes so DynamoDB follows MySQL (see the module docstring)."""

    def __init__(self, contract: Contract, engine: Engine, ddb: DynamoDB, *,
                 enabled: Callable[[], set[str]] | None = None,
                 fence: Callable[[Connection], Mapping[str, Phase]] | None = None,
                 policy: Callable[[str], Policy] | None = None,
                 outbox: Outbox | None = None, mysql_attempts: int = 20,
                 ledger: Ledger | None = None):
        self.contract = contract
        self.engine = engine
        self.ddb = ddb
        self.graph = DependencyGraph(contract)
        self.readers = {e.name: RecordReader(contract, e) for e in contract.source_entities()}
        self.mappers = {e.name: ItemMapper(contract, e) for e in contract.source_entities()}
        # The entities whose items DynamoDB follows: without flags, `enabled` (all by
        # default); with them, `fence`, each entity's phase read on the write's own
        # transaction (share-locked until it ends: see `wrappers.flags`).
        self.enabled = enabled or (lambda: set(self.readers))
        self.fence = fence
        self.policy = policy or (lambda entity: Policy.ROLLBACK)
        self.outbox = outbox or Outbox(engine)
        self.floor = VersionFloor(ddb, self.outbox)
        self.writer = VersionedWriter(ddb, contract.version_attribute,
                                      type_attribute=contract.entity_type_attribute)
        self.mysql_attempts = mysql_attempts
        self.ledger = ledger
        self.stats = SyncStats()
        self._catalog: Catalog | None = None
        # migration.source.mysql engines are READ COMMITTED already: no per-checkout SET.
        self._read_committed = engine.get_execution_options().get("isolation_level") == \
            "READ COMMITTED" or getattr(engine.dialect, "_on_connect_isolation_level",
                                        None) == "READ COMMITTED"

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            with self.engine.connect() as conn:
                self._catalog = read_catalog(conn)
            for warning in unprotected(self.contract, self._catalog):
                log.warning("dual-write: %s", warning)
        return self._catalog

    def connect(self) -> Connection:
        """A connection in READ COMMITTED: every locking read sees the latest commit."""
        if self._read_committed:
            return self.engine.connect()
        return self.engine.connect().execution_options(isolation_level="READ COMMITTED")

    # -- the dual-write transaction ----------------------------------------------------
    def run(self, operation: str, touches: Sequence[Touch], write: Callable[[Connection], T],
            *, created: Callable[[T], Sequence[tuple[str, Key]]] | None = None,
            entity: str | None = None) -> T:
        """Run `write` in a MySQL transaction and bring DynamoDB along (module docstring).

        `created` names the rows an insert made (their auto-increment keys), from the
        write's result. `entity` is the contract entity the write is for: if its phase
        is `dynamodb_only` (read under the fence), nothing is written and `PhaseMoved`
        is raised. Deadlocks and lock wait timeouts retry the whole operation.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                result = self._run_once(operation, touches, write, created, entity)
                self.stats.operations += 1
                return result
            except Exception as err:
                if not (isinstance(err, RowRaced) or is_retryable(err)) or \
                        attempt >= self.mysql_attempts:
                    raise
                self.stats.retries += 1
                pause(attempt, base=0.005, cap=0.5)

    def _run_once(self, operation: str, touches: Sequence[Touch],
                  write: Callable[[Connection], T],
                  created: Callable[[T], Sequence[tuple[str, Key]]] | None,
                  entity: str | None) -> T:
        everything = set(self.readers)
        version: int | None = None
        failure: BaseException | None = None
        started = time.perf_counter()
        roots: dict[str, set[Key]] = {}
        counted = False
        with self.connect() as conn:
            transaction = conn.begin()
            try:
                if self.fence is not None:
                    # A cache says when a phase was read, not when this commits: read the
                    # phases again, share-locked until this transaction ends, so no switch
                    # can land before our commit.
                    phases = self.fence(conn)
                    if entity is not None and phases.get(entity) is Phase.DYNAMODB_ONLY:
                        raise PhaseMoved(entity)
                    enabled = {e for e, phase in phases.items() if phase.follows_mysql}
                else:
                    enabled = self.enabled()
                enabled &= everything
                if not enabled:
                    result = write(conn)
                    transaction.commit()
                    return result
                touches, befores, unseen = self._lock(conn, touches)
                provisional = [RowChange(t.table, before, _provisional(t, before))
                               for t, before in zip(touches, befores, strict=True)]
                provisional += self._cascades(conn, touches, befores)
                roots = self.graph.affected_roots(conn, provisional, entities=enabled)
                before_image = self._image(conn, roots, strict=False,
                                           known=self._known_rows(provisional, after=False))
                result = write(conn)
                self._check_unseen(unseen)
                changes = self._after(conn, touches, befores, provisional, result, created)
                reached = self.graph.affected_roots(conn, changes, entities=enabled)
                self._image_late_roots(before_image, roots, reached, changes)
                for entity, keys in reached.items():
                    roots.setdefault(entity, set()).update(keys)
                after_image = self._image(conn, roots, known=self._known_rows(changes, after=True))
                actions = _diff(before_image, after_image)
                if not actions:
                    transaction.commit()
                    return result
                touched = [(s.table, s.key, s.owner) for s in before_image.values()] + \
                    [(s.table, s.key, s.owner) for s in after_image.values()
                     if _key_id(s.table, s.key) not in before_image]
                version = self.outbox.record("dual_write", operation, roots, touched)
                try:
                    self.floor.check()  # once per process; DynamoDB down is the policy's
                    outcome = self._write(actions, version)
                    self.stats.items_written += sum(isinstance(a, Put) for a in actions)
                    self.stats.items_deleted += sum(isinstance(a, Delete) for a in actions)
                    self.stats.superseded += len(outcome.superseded)
                    if self.ledger is not None:
                        self.ledger.succeeded(_entities(roots, entity), operation,
                                              time.perf_counter() - started)
                except (DynamoDBError, KeyCollision, VersionRegression) as err:
                    self.stats.dynamodb_failures += 1
                    failure = err
                    counted = self._count_failure(operation, roots, entity, err, started)
                    # Two rows on one key, or versions gone backwards, is no outage that
                    # repair could catch up on: the caller must hear of it.
                    if isinstance(err, KeyCollision | VersionRegression) or \
                            self._policy(roots) is Policy.ROLLBACK:
                        raise
                    log.warning("%s: DynamoDB failed (%s); MySQL commits, outbox #%s stays "
                                "for repair", operation, err, version)
                    self.outbox.note_failure(version, err)
            except (DynamoDBError, KeyCollision, VersionRegression, ItemError) as err:
                transaction.rollback()
                if not counted:
                    self._count_failure(operation, roots, entity, err, started)
                repaired = self._repair_after_rollback(version)
                raise DualWriteFailed(operation, err, repaired) from err
            except BaseException:
                transaction.rollback()
                if version is not None:
                    self._repair_after_rollback(version)
                raise
            try:
                transaction.commit()
            except DBAPIError as err:
                repaired = self._repair_after_rollback(version)
                raise CommitFailed(f"{operation}: MySQL commit failed after DynamoDB took the "
                                   f"write; {'re-synced' if repaired else 'outbox keeps it'}") \
                    from err
        if version is not None and failure is None:
            self.outbox.clear_later(version)
        return result

    def _count_failure(self, operation: str, roots: Mapping[str, Iterable[Key]],
                       entity: str | None, error: BaseException, started: float) -> bool:
        """Log and count a failed dual-write, whatever the policy (never silent)."""
        if self.ledger is None:
            log.error("dual-write failed: operation=%s roots=%s error=%s: %s", operation,
                      {e: list(k)[:5] for e, k in roots.items()}, type(error).__name__, error)
            return True
        entities = _entities(roots, entity)
        policy = self._policy(roots).value
        if isinstance(error, KeyCollision | VersionRegression | ItemError):
            policy = Policy.ROLLBACK.value
        self.ledger.failed(entities, operation,
                           {e: [list(k) for k in keys][:5] for e, keys in roots.items()},
                           error, policy=policy, seconds=time.perf_counter() - started)
        return True

    def _write(self, actions: Sequence[Action], version: int, *,
               skip_collisions: bool = False) -> Any:
        """The versioned write; a stored version above ours is counted and recorded as the
        mark (what `migrate state versions --raise-counter` must move the counter past)."""
        try:
            outcome = self.writer.write(actions, version, skip_collisions=skip_collisions)
        except VersionRegression as err:
            self.stats.version_regressions += 1
            log.error("%s", err)
            self.floor.record(err.stored)
            raise
        self.floor.note(version)
        return outcome

    def _policy(self, roots: Mapping[str, Iterable[Key]]) -> Policy:
        policies = {self.policy(entity) for entity, keys in roots.items() if keys}
        return Policy.ROLLBACK if Policy.ROLLBACK in policies or not policies else Policy.OUTBOX

    def _repair_after_rollback(self, version: int | None) -> bool:
        """After a rollback DynamoDB may hold part of a change: re-sync it from MySQL now,
        or leave the outbox row for `repair` when that fails too."""
        if version is None:
            return True
        entry = self.outbox.get(version)
        if entry is None:
            return True
        try:
            self.repair_entry(entry)
            return True
        except Exception as err:  # noqa: BLE001 - recorded on the outbox row, never lost
            log.warning("immediate repair of outbox #%s failed: %s", version, err)
            self.outbox.note_failure(version, err)
            return False

    # -- images ------------------------------------------------------------------------
    def _image_late_roots(self, before_image: dict[ItemKey, _Slot],
                          announced: Mapping[str, set[Key]], reached: Mapping[str, set[Key]],
                          changes: Sequence[RowChange]) -> None:
        """Add to the before-image the items of roots the write reached but its touches did
        not announce (a lock-only touch of a row the write deleted, values that leave out a
        column the write changed too): without them, what those roots no longer map to
        would never be deleted. Their records are read on a second connection, whose view
        is the last commit: the state before this write, which holds their root locks now.
        A root whose own row this write inserted had no items before and is skipped."""
        inserted: set[tuple[str, Key]] = set()
        for change in changes:
            if change.before is None and change.after is not None:
                pk = self.catalog.primary_key(change.table)
                if all(c in change.after for c in pk):
                    inserted.add((change.table, tuple(change.after[c] for c in pk)))
        late: dict[str, set[Key]] = {}
        for entity, keys in reached.items():
            table = self.readers[entity].source.table
            unseen = {k for k in keys if k not in announced.get(entity, ())
                      and (table, tuple(k)) not in inserted}
            if unseen:
                late[entity] = unseen
        if not late:
            return
        self.stats.late_roots += 1
        log.debug("dual-write reached roots its touches did not name: %s",
                  {e: sorted(k)[:5] for e, k in late.items()})
        with self.connect() as committed:
            for ident, slot in self._image(committed, late, strict=False, lock=None).items():
                before_image.setdefault(ident, slot)

    def _lock(self, conn: Connection, touches: Sequence[Touch]
              ) -> tuple[list[Touch], list[dict[str, Any] | None], list[_Unseen]]:
        """Lock every touched row (FOR UPDATE) and return it as it is before the write;
        `where` touches become one keyed touch per matching row. The third list names
        what the write must not find beyond these rows (see `_check_unseen`)."""
        expanded: list[Touch] = []
        befores: list[dict[str, Any] | None] = []
        unseen: list[_Unseen] = []
        for touch in touches:
            if touch.where is not None:
                pk = self.catalog.primary_key(touch.table)
                where, params = _equal(touch.where, "w")
                sql = f"SELECT * FROM {quote_name(touch.table)} WHERE {where} FOR UPDATE"
                seen: set[Key] = set()
                for row in raw_query(conn, sql, params):
                    key = tuple(row[c] for c in pk)
                    seen.add(key)
                    expanded.append(Touch(touch.table, key, touch.values, touch.delete))
                    befores.append(row)
                unseen.append(_Unseen(touch.table, dict(touch.where), frozenset(seen)))
                continue
            expanded.append(touch)
            before = None if touch.key is None else \
                self._row(conn, touch.table, touch.key, lock="update")
            befores.append(before)
            if touch.key is not None and before is None:
                pk = self.catalog.primary_key(touch.table)
                unseen.append(_Unseen(touch.table, dict(zip(pk, touch.key, strict=True)),
                                      frozenset()))
        return expanded, befores, unseen

    def _check_unseen(self, unseen: Sequence[_Unseen]) -> None:
        """Raise `RowRaced` when another writer committed a row the locking reads did not
        see: a row absent then, or a new match of a `where`. The write may have changed
        it, and the before-image lacks it. A second connection sees the last commit and
        none of this transaction's own changes, so a row we inserted does not count."""
        if not unseen:
            return
        with self.connect() as other:
            for check in unseen:
                pk = self.catalog.primary_key(check.table)
                where, params = _equal(check.where, "u")
                sql = (f"SELECT {', '.join(map(quote_name, pk))} FROM "
                       f"{quote_name(check.table)} WHERE {where}")
                for row in raw_query(other, sql, params):
                    key = tuple(row[c] for c in pk)
                    if key not in check.seen:
                        raise RowRaced(f"{check.table} row {key} was committed by "
                                       f"another writer after this one looked for it")

    def _row(self, conn: Connection, table: str, key: Key,
             lock: str | None = None) -> dict[str, Any] | None:
        pk = self.catalog.primary_key(table)
        params: dict[str, Any] = {}
        sql = (f"SELECT * FROM {quote_name(table)} WHERE "
               f"{in_clause(pk, [tuple(key)], params, 'k')}{LOCKS[lock]}")
        rows = raw_query(conn, sql, params)
        return rows[0] if rows else None

    def _cascades(self, conn: Connection, touches: Sequence[Touch],
                  befores: Sequence[Mapping[str, Any] | None]) -> list[RowChange]:
        """Rows MySQL itself will delete or null when the touched rows are deleted."""
        changes: list[RowChange] = []
        frontier: list[tuple[str, Mapping[str, Any]]] = [
            (t.table, b) for t, b in zip(touches, befores, strict=True)
            if t.delete and b is not None]
        seen: set[tuple[str, Key]] = set()
        while frontier:
            table, row = frontier.pop()
            for fk in self.catalog.children(table):
                if fk.on_delete not in ("CASCADE", "SET NULL"):
                    continue
                value = tuple(row.get(c) for c in fk.parent_columns)
                if None in value:
                    continue
                params: dict[str, Any] = {}
                sql = (f"SELECT * FROM {quote_name(fk.child)} WHERE "
                       f"{in_clause(fk.child_columns, [value], params, 'c')} FOR UPDATE")
                for child in raw_query(conn, sql, params):
                    ident = (fk.child, tuple(child.get(c) for c in
                                             self.catalog.primary_key(fk.child)))
                    if ident in seen:
                        continue
                    seen.add(ident)
                    if fk.on_delete == "CASCADE":
                        changes.append(RowChange(fk.child, child, None))
                        frontier.append((fk.child, child))
                    else:
                        nulled = dict(child)
                        nulled.update({c: None for c in fk.child_columns})
                        changes.append(RowChange(fk.child, child, nulled))
        return changes

    def _after(self, conn: Connection, touches: Sequence[Touch],
               befores: Sequence[Mapping[str, Any] | None], provisional: Sequence[RowChange],
               result: Any, created: Callable[[Any], Sequence[tuple[str, Key]]] | None,
               ) -> list[RowChange]:
        changes: list[RowChange] = []
        for touch, before in zip(touches, befores, strict=True):
            if touch.key is not None:
                changes.append(RowChange(touch.table, before,
                                         None if touch.delete else
                                         self._row(conn, touch.table, touch.key)))
        if created is not None:
            for table, key in created(result):
                changes.append(RowChange(table, None, self._row(conn, table, key)))
        # Cascaded rows: deleted ones are gone; nulled ones are re-read as they now are.
        for change in provisional[len(touches):]:
            if change.after is None:
                changes.append(change)
            else:
                key = tuple(change.before[c] for c in self.catalog.primary_key(change.table)) \
                    if change.before is not None else ()
                changes.append(RowChange(change.table, change.before,
                                         self._row(conn, change.table, key)))
        return changes

    def _image(self, conn: Connection, roots: Mapping[str, Iterable[Key]], *,
               strict: bool = True, known: _KnownRows | None = None,
               lock: str | None = "update") -> dict[ItemKey, _Slot]:
        """Every item the roots map to now; roots locked exclusively, related rows shared
        (`lock=None`: plain reads, as on a connection reading the last commit).

        Two roots mapping to one key raise `KeyCollision` when `strict` (an after-image:
        the change would make the collision); a before-image only notes the first.
        `known`: whole rows this transaction has just read under its exclusive lock (the
        touched rows): their records are built from them (`_records`)."""
        image: dict[ItemKey, _Slot] = {}
        for entity, keys in roots.items():
            keys = list(keys)
            if not keys:
                continue
            reader, mapper = self.readers[entity], self.mappers[entity]
            table = self.ddb.table_name(mapper.table.name)
            records = self._records(conn, reader, keys, known) if lock == "update" else \
                reader.fetch(conn, keys, lock=lock)
            for record in records:
                owner = mapper.owner(record)
                for item in mapper.items(record):
                    key = mapper.item_key(item)
                    ident = _key_id(table, key)
                    other = image.get(ident)
                    if other is not None and other.owner != owner:
                        if not strict:
                            continue
                        # Two rows of this change map to one key: neither may win silently.
                        raise KeyCollision(table, key, other.owner or "?", owner)
                    image[ident] = _Slot(table, key, item, owner)
        return image

    def _known_rows(self, changes: Sequence[RowChange], *, after: bool) -> _KnownRows:
        """The rows of a change as the images may use them (`_records`): before the
        write, the locking reads' whole rows (rows found absent are left out); after
        it, the re-read rows, and None for a row deleted (or moved to another key)."""
        known: _KnownRows = {}

        def key(table: str, row: Mapping[str, Any]) -> Key | None:
            pk = self.catalog.primary_key(table)
            return tuple(row[c] for c in pk) if all(c in row for c in pk) else None

        for change in changes:
            rows = known.setdefault(change.table, {})
            old = key(change.table, change.before) if change.before is not None else None
            if not after:
                if old is not None:
                    rows[old] = change.before
                continue
            new = key(change.table, change.after) if change.after is not None else None
            if old is not None and old != new:
                rows[old] = None
            if new is not None:
                rows[new] = change.after
        return known

    def _records(self, conn: Connection, reader: RecordReader, keys: list[Key],
                 known: _KnownRows | None) -> list[dict[str, Any]]:
        """The roots' records, as `reader.fetch(keys, lock="update")` gives them. When
        the transaction holds every one of these rows (or knows it absent) from a read
        of the whole row under its exclusive lock, the rows are not read again: only
        their related rows are. That applies to integer keys (their order here is the
        ORDER BY of `fetch`) of a table whose primary key is the entity's."""
        table = reader.source.table
        held = (known or {}).get(table)
        if held is None or any(tuple(k) not in held for k in keys) or \
                any(type(v) is not int for k in keys for v in k) or \
                tuple(reader.source.primary_key) != tuple(self.catalog.primary_key(table)):
            return reader.fetch(conn, keys, lock="update")
        rows = [row for row in (held[k] for k in sorted({tuple(k) for k in keys}))
                if row is not None]
        if any(column not in row for row in rows for column in reader.columns):
            return reader.fetch(conn, keys, lock="update")
        return reader.from_rows(conn, rows, lock="update")

    # -- re-sync and repair ------------------------------------------------------------------
    def sync_roots(self, roots: Mapping[str, Iterable[Key]], *, operation: str = "resync",
                   stale: Sequence[Delete] = (), kind: str = "resync",
                   skip_collisions: bool = False) -> int:
        """Write every item the roots map to now, from MySQL, and delete the `stale`
        item keys they no longer map to; returns the number of actions.

        The roots are read under exclusive locks, so no dual-write of theirs runs
        meanwhile; the write carries a fresh version, so it cannot be overwritten by
        an older state, and it is recorded in the outbox until it is done. A root found
        absent holds no lock (READ COMMITTED takes no gap locks), so a writer may insert
        it meanwhile: the stale deletes name what they may remove (`AtMost` the version
        of the change being repaired, `Exactly` what reconcile saw) and leave what such
        a writer wrote. A key two rows map to (or another row holds in DynamoDB) raises
        `KeyCollision`; with `skip_collisions` (reconcile, which reports collisions) it
        is left as it is. Deadlocks and lock wait timeouts (a live dual-write locking the
        same rows in another order) retry the whole re-sync, as they do a dual-write.
        """
        wanted = {e: set(keys) for e, keys in roots.items() if e in self.readers and keys}
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._sync_roots_once(wanted, operation, stale, kind, skip_collisions)
            except Exception as err:
                if not is_retryable(err) or attempt >= self.mysql_attempts:
                    raise
                self.stats.retries += 1
                pause(attempt, base=0.005, cap=0.5)

    def _sync_roots_once(self, roots: Mapping[str, set[Key]], operation: str,
                         stale: Sequence[Delete], kind: str, skip_collisions: bool) -> int:
        version: int | None = None
        skipped = 0
        with self.connect() as conn, conn.begin():
            image = self._image(conn, roots, strict=not skip_collisions)
            actions: list[Action] = [Put(s.table, s.item, s.key, s.owner)
                                     for s in image.values()]
            actions += [d for d in stale if _key_id(d.table, d.key) not in image]
            if actions:
                keys = [(s.table, s.key, s.owner) for s in image.values()] + \
                    [(d.table, d.key, d.owner) for d in stale]
                self.floor.check()
                version = self.outbox.record(kind, operation, roots, keys)
                try:
                    outcome = self._write(actions, version, skip_collisions=skip_collisions)
                    skipped = len(outcome.collided)
                except BaseException:
                    if kind == "repair":
                        # The outbox row being repaired still names all of this.
                        self.outbox.clear([version])
                    raise
        if version is not None:
            self.outbox.clear([version])
        return len(actions) - skipped

    def repair_entry(self, entry: OutboxEntry) -> int:
        """Re-sync what one outbox row names, from MySQL; returns the actions written.
        Its item keys are deleted where no root maps to them now, but only as the change
        (or an earlier one) left them: `AtMost` its version."""
        stale = [Delete(table, dict(key), owner, AtMost(entry.id))
                 for table, key, owner in entry.item_keys]
        count = self.sync_roots(entry.roots, operation=f"repair of #{entry.id}",
                                stale=stale, kind="repair")
        self.outbox.clear([entry.id])
        self.stats.repairs += 1
        return count

    def repair(self, *, limit: int | None = None, older_than: float = 0.0,
               on_error: Callable[[OutboxEntry, BaseException], None] | None = None
               ) -> tuple[int, int]:
        """Re-sync every pending outbox row (oldest first); returns (repaired, failed).

        `older_than` (seconds) skips rows that a live dual-write may still clear.
        """
        import datetime as dt

        done = failed = 0
        after = 0
        while limit is None or done + failed < limit:
            batch = self.outbox.pending(limit=100, after=after,
                                        older_than=dt.timedelta(seconds=older_than))
            if not batch:
                break
            for entry in batch:
                after = entry.id
                try:
                    self.repair_entry(entry)
                    done += 1
                except Exception as err:  # noqa: BLE001 - recorded and reported, never lost
                    failed += 1
                    self.outbox.note_failure(entry.id, err)
                    if on_error is not None:
                        on_error(entry, err)
                if limit is not None and done + failed >= limit:
                    break
        return done, failed


_KnownRows = dict[str, dict[Key, Mapping[str, Any] | None]]
"""Whole rows by table and primary key (None: known absent)."""


def _entities(roots: Mapping[str, Iterable[Key]], entity: str | None) -> list[str]:
    """The entities a change wrote items of (the wrapper's own when it names none)."""
    found = sorted(name for name, keys in roots.items() if keys)
    return found or ([entity] if entity else ["?"])


def _equal(values: Mapping[str, Any], prefix: str) -> tuple[str, dict[str, Any]]:
    """`col = :param AND ...` for the columns and values, with its parameters."""
    where = " AND ".join(f"{quote_name(c)} = :{prefix}{i}" for i, c in enumerate(values))
    return where, {f"{prefix}{i}": v for i, v in enumerate(values.values())}


def _provisional(touch: Touch, before: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What the touched row will look like, as far as we know before the write."""
    if touch.delete:
        return None
    if before is None:
        return dict(touch.values or {})
    merged = dict(before)
    merged.update(touch.values or {})
    return merged


def _diff(before: Mapping[ItemKey, _Slot], after: Mapping[ItemKey, _Slot]) -> list[Action]:
    actions: list[Action] = []
    for ident, slot in after.items():
        old = before.get(ident)
        if old is None or old.item != slot.item:
            actions.append(Put(slot.table, slot.item, slot.key, slot.owner))
    for ident, slot in before.items():
        if ident not in after:
            actions.append(Delete(slot.table, slot.key, slot.owner))
    return actions
