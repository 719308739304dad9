"""The backfill driver: plan chunks, read them under locks, map, write, checkpoint.

Safety beside live dual-writes (measured and explained in docs/benchmarks.md):
each chunk is read inside a MySQL transaction with shared locks on its rows and
on every related row its items read (the same lock discipline as dual-write),
stamped with a fresh version from the outbox sequence, written, and only then
committed. While the locks are held no dual-write can change those rows, so the
chunk's items are current; a dual-write that follows waits, then writes a newer
version; a row deleted after the chunk was read cannot exist (its delete waited).
That is why plain `BatchWriteItem` (which takes no conditions) is safe here, and
the backfill runs at the endpoint's bulk ingest speed.

An unconditional batch is only safe while those locks are held. A request could
still land after them: its process died after sending it, or its MySQL
connection was lost while it retried. So each chunk's outbox row names the
chunk's roots and item keys and is cleared only after the chunk committed; it
is *held* (repair leaves it alone) for as long as a request of the chunk might
still arrive: a chunk stops sending after `chunk_seconds`, and one call ends
within the client's longest call time. A chunk that failed after sending is
then re-synced by `migrate repair` from MySQL, with a newer version and the
bounded deletes of repair (an item it resurrected is removed).

Resumable: checkpoints (see `checkpoints`) advance over the longest run of
chunks DynamoDB has fully taken. Rows that cannot become items go to a
dead-letter file with their key and reason. Requests are pre-encoded JSON sent
through the choke point's fast path.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.backfill.checkpoints import Checkpoint, CheckpointStore
from migration.backfill.progress import Progress
from migration.backfill.segments import SegmentPlan, make_plan
from migration.backoff import pause
from migration.collector import fewer_collections
from migration.contract.model import Contract, Entity, Table
from migration.dynamodb.batches import until_processed
from migration.dynamodb.client import DynamoDB, batch_write_body, encode_json
from migration.dynamodb.limits import BATCH_WRITE_ITEMS
from migration.errors import ConditionFailed, ItemError, MigrateError, Terminal, Transient
from migration.mapping.compiled import compile_items
from migration.mapping.item import OWNER_ATTRIBUTE, ItemMapper, item_size
from migration.mapping.values import Item
from migration.source.catalog import Catalog, read_catalog
from migration.source.conformance import require_conformance
from migration.source.mysql import consistent_snapshot, is_retryable
from migration.source.records import RecordReader, quote_name
from migration.sync.outbox import Outbox
from migration.sync.state import ensure_state_tables, flags
from migration.sync.versions import VersionFloor
from migration.sync.writer import FREE_OR_OWNED, VersionRegression

Key = tuple[Any, ...]

log = logging.getLogger(__name__)


class BackfillError(MigrateError, Terminal):
    """The backfill cannot run as asked (unknown entity, bad segment...)."""


class ChunkOverdue(MigrateError, Transient):
    """A chunk kept sending past its time (`chunk_seconds`): it stops, so that its outbox
    row's hold covers every request it sent; it is retried afresh."""


@dataclass(frozen=True)
class Segment:
    """Slice `index` of `count` of every table's key space."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Segment:
        try:
            index, count = (int(x) for x in text.split("/"))
        except ValueError:
            raise BackfillError(f"segment {text!r} is not I/N (for example 0/4)") from None
        if count < 1 or not 0 <= index < count:
            raise BackfillError(f"segment {text!r}: need 0 <= I < N")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class BackfillOptions:
    entities: Sequence[str] = ()
    workers: int = 4
    batch_size: int = 500
    rate: float | None = None  # items per second, all workers together
    restart: bool = False
    dry_run: bool = False
    segment: Segment = field(default_factory=Segment)
    shuffle: bool = False
    dead_letters: Path | None = None
    progress: Progress | None = None
    max_batch_attempts: int = 12
    # How long one chunk may keep sending requests; its outbox row is held from repair
    # for that long plus the client's longest call (see the module docstring).
    chunk_seconds: float = 300.0


def pool_size(workers: int) -> int:
    """MySQL connections a backfill of `workers` keeps busy at once: each worker holds its
    chunk's transaction and, while it records the chunk's version, an outbox connection;
    plus the chunk planner and the outbox cleaner. A smaller pool makes and drops a
    connection for nearly every chunk (with PyMySQL, each new one also builds a TLS
    context: tens of milliseconds of CPU)."""
    return 2 * workers + 2


@dataclass
class EntitySummary:
    entity: str
    rows_read: int = 0
    items_written: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    would_write: int = 0  # a dry run: the items a real run would write
    bytes: int = 0  # a dry run: their size, as DynamoDB counts it
    write_units: int = 0  # a dry run: the write request units they would take (GSIs included)
    largest_item: int = 0
    elapsed: float = 0.0
    chunks: int = 0
    resumed_from: Key | None = None
    resumed_items: int = 0  # of `items_written`, those an earlier run wrote
    already_done: bool = False
    replanned: bool = False  # its checkpoint was made under a replaced plan: started over
    warning: str | None = None  # its flag says DynamoDB does not follow its writes
    # Other segments of the cut not finished yet ("1/3", ...): the entity is not fully
    # copied though this process's segment is.
    pending_segments: list[str] = field(default_factory=list)

    @property
    def items_per_second(self) -> float:
        """This run's speed: the items it wrote (not the ones restored from a checkpoint)
        over its own time."""
        done = self.items_written - self.resumed_items
        return done / self.elapsed if self.elapsed else 0.0


@dataclass
class BackfillSummary:
    entities: list[EntitySummary]
    elapsed: float
    dry_run: bool
    dead_letter_file: Path | None  # this run's, when it dead-lettered rows
    # Where earlier runs resumed here put theirs ("host:path" when on another host).
    earlier_dead_letter_files: list[str] = field(default_factory=list)

    @property
    def dead_lettered(self) -> int:
        return sum(e.dead_lettered for e in self.entities)

    @property
    def exit_code(self) -> int:
        return 1 if self.dead_lettered else 0

    def text(self) -> str:
        if self.dry_run:
            return self._dry_run_text()
        lines = [f"{'entity':<10} {'rows read':>10} {'items':>10} {'skipped':>8} "
                 f"{'dead':>6} {'elapsed':>8} {'items/s':>9}"]
        for e in self.entities:
            lines.append(f"{e.entity:<10} {e.rows_read:>10} {e.items_written:>10} {e.skipped:>8} "
                         f"{e.dead_lettered:>6} {e.elapsed:>7.1f}s {e.items_per_second:>9.0f}"
                         f"{self._note(e)}")
        total_items = sum(e.items_written for e in self.entities)
        done_now = total_items - sum(e.resumed_items for e in self.entities)
        lines.append(f"{'total':<10} {sum(e.rows_read for e in self.entities):>10} "
                     f"{total_items:>10} {sum(e.skipped for e in self.entities):>8} "
                     f"{self.dead_lettered:>6} {self.elapsed:>7.1f}s "
                     f"{done_now / self.elapsed if self.elapsed else 0:>9.0f}")
        return "\n".join(lines + self._warning_lines() + self._dead_letter_lines())

    def _warning_lines(self) -> list[str]:
        lines = [f"warning: {e.entity}: {e.warning}" for e in self.entities if e.warning]
        lines += [f"not done: {e.entity}: segment{'s' if len(e.pending_segments) > 1 else ''} "
                  f"{', '.join(e.pending_segments)} of its cut "
                  f"{'are' if len(e.pending_segments) > 1 else 'is'} not finished; the entity "
                  "is not fully copied until every segment is"
                  for e in self.entities if e.pending_segments]
        return lines

    def _dry_run_text(self) -> str:
        def row(name: str, rows: int, items: int, size: int, units: int, dead: int,
                elapsed: float, note: str = "") -> str:
            rate = items / elapsed if elapsed else 0.0
            return (f"{name:<10} {rows:>10} {items:>10} {size:>12} {units:>12} {dead:>6} "
                    f"{elapsed:>7.1f}s {rate:>9.0f}{note}")

        lines = [f"{'entity':<10} {'rows read':>10} {'items':>10} {'bytes':>12} "
                 f"{'write units':>12} {'dead':>6} {'elapsed':>8} {'items/s':>9}"]
        lines += [row(e.entity, e.rows_read, e.would_write, e.bytes, e.write_units,
                      e.dead_lettered, e.elapsed, self._note(e)) for e in self.entities]
        lines.append(row("total", sum(e.rows_read for e in self.entities),
                         sum(e.would_write for e in self.entities),
                         sum(e.bytes for e in self.entities),
                         sum(e.write_units for e in self.entities), self.dead_lettered,
                         self.elapsed))
        lines.append("dry run: nothing was written; items, bytes and write units are what a "
                     "real run would write (each GSI copy included, as in `migrate estimate`)")
        return "\n".join(lines + self._dead_letter_lines())

    @staticmethod
    def _note(e: EntitySummary) -> str:
        if e.already_done:
            return "  (already done; --restart to redo)"
        if e.replanned:
            return "  (segment plan replaced by a --restart: started over)"
        if e.resumed_from is not None:
            return f"  (resumed: {e.resumed_items} items written before; items/s of this run)"
        return ""

    def _dead_letter_lines(self) -> list[str]:
        if not self.dead_lettered:
            return []
        files = list(self.earlier_dead_letter_files)
        if self.dead_letter_file is not None and str(self.dead_letter_file) not in files:
            files.append(str(self.dead_letter_file))
        where = ", ".join(files) if files else "the dead-letter files of the earlier runs"
        return [f"{self.dead_lettered} row(s) could not become items: see {where}"]


def gsi_key_names(table: Table) -> list[tuple[str, ...]]:
    """The key attribute names of each GSI of `table` (what `write_units` takes)."""
    return [tuple(a.name for a in ix.key_attributes) for ix in table.gsis]


def write_units(item: Item, size: int, indexes: Sequence[Sequence[str]]) -> int:
    """Write request units a put of `item` (of `size` bytes) takes: ceil(size / 1 KB) in
    its table and again in every GSI it has all key attributes for (`indexes`: each
    GSI's attribute names; projection ALL: the whole item is written there too)."""
    copies = 1 + sum(1 for names in indexes if all(n in item for n in names))
    return -(-size // 1024) * copies


class RateLimiter:
    """A token bucket shared by all workers: at most `rate` items per second.

    A chunk takes its tokens before its MySQL transaction begins (a wait must not
    hold the chunk's share locks, or dual-writes on those rows would time out),
    for the items it is expected to make, and settles the difference after it
    committed (`settle`)."""

    def __init__(self, rate: float | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = rate
        self.tokens = float(rate or 0)
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.lock = threading.Lock()

    def acquire(self, count: int) -> None:
        if not self.rate or count <= 0:
            return
        while True:
            with self.lock:
                now = self.clock()
                self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= count or self.tokens >= self.rate:
                    self.tokens -= count
                    return
                wait_for = (count - self.tokens) / self.rate
            self.sleep(min(wait_for, 1.0))

    def settle(self, taken: int, used: int) -> None:
        """After a chunk that took `taken` tokens ahead and wrote `used` items: wait for
        the tokens it lacked, or give back the ones it did not need."""
        if not self.rate or used == taken:
            return
        if used > taken:
            self.acquire(used - taken)
            return
        with self.lock:
            self.tokens = min(float(self.rate), self.tokens + (taken - used))


class DeadLetters:
    """Rows that cannot become items: one JSON line each (entity, source key, reason)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.count = 0
        self._file: Any = None
        self._lock = threading.Lock()

    def add(self, entity: str, source_key: dict[str, Any], reason: str) -> None:
        with self._lock:
            if self._file is None:
                if self.path is None:
                    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
                    self.path = Path("dead-letters") / f"backfill-{stamp}.jsonl"
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Unbuffered, appending: each line is one write(2), so the segment
                # processes of `--processes` can share the file line by line.
                self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
            self._file.write((json.dumps({
                "entity": entity, "source_key": source_key, "reason": reason,
                "at": dt.datetime.now(dt.UTC).isoformat()},
                ensure_ascii=False, default=str) + "\n").encode("utf-8"))
            self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class KeyRegistry:
    """Item keys already claimed in this run, on disk (memory stays flat as tables grow):
    two source rows mapping to one DynamoDB key must be caught, not overwritten."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="backfill-keys-")
        self._db = sqlite3.connect(Path(self._dir.name) / "keys.db", check_same_thread=False)
        self._db.execute("CREATE TABLE keys (k TEXT PRIMARY KEY, owner TEXT NOT NULL)")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._lock = threading.Lock()

    def claim(self, keys: list[tuple[str, str]]) -> dict[str, str]:
        """Record (key, owner) pairs; returns {key: earlier owner} for keys already held
        by another owner (those keys are not recorded again)."""
        taken: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = keys[start:start + 500]
                marks = ",".join("?" * len(part))
                for key, owner in self._db.execute(
                        f"SELECT k, owner FROM keys WHERE k IN ({marks})", [k for k, _ in part]):
                    taken[key] = owner
                self._db.executemany("INSERT OR IGNORE INTO keys VALUES (?, ?)", part)
        return {k: o for k, o in taken.items()
                if any(key == k and owner != o for key, owner in keys)}

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()


def key_is_injective(entity: Entity, catalog: Catalog) -> bool:
    """True when distinct source rows can never share an item key: every primary-key
    column is in the key templates, directly or through a lookup of a unique column."""
    source = entity.source
    if source is None:
        return False
    fields = {entity.record_name(name) for name in entity.key_fields}
    own = tuple(sorted(fields - set(source.derived_names)))
    if own and catalog.is_unique(source.table, own):
        return True  # the key holds a unique index of the row itself (users.email)
    determined = {c for c in source.primary_key if c in fields}
    for lookup in source.lookups:
        if lookup.name in fields and catalog.is_unique(lookup.table, (lookup.column,)):
            targets = tuple(t for t, _ in lookup.on)
            if catalog.is_unique(lookup.table, targets):
                determined |= {s for _, s in lookup.on}
    return set(source.primary_key) <= determined


def batch_bodies(table: str, items: list[Item]) -> list[tuple[int, bytes]]:
    """BatchWriteItem bodies of `items` in 25s, each item encoded once: (items, body)."""
    return [(len(batch), batch_write_body(table, batch))
            for batch in (items[start:start + BATCH_WRITE_ITEMS]
                          for start in range(0, len(items), BATCH_WRITE_ITEMS))]


@dataclass
class _Chunk:
    number: int
    after: Key | None
    until: Key
    rows: int


class _EntityRun:
    """One entity in one segment: plans chunks, runs them, advances the checkpoint."""

    def __init__(self, driver: Backfill, entity: Entity):
        self.driver = driver
        self.entity = entity
        # With the catalog: lookups by unique integer keys read in their rows' SELECT.
        self.reader = RecordReader(driver.contract, entity, driver.catalog)
        self.mapper = ItemMapper(driver.contract, entity)
        self.items_of = compile_items(self.mapper)  # `mapper.items`, compiled for the hot loop
        self.table = driver.ddb.table_name(entity.table)
        self.summary = EntitySummary(entity.name)
        self.where = ""
        self.where_params: dict[str, Any] = {}
        self.completed: dict[int, _Chunk] = {}
        self.next_to_checkpoint = 0
        self.checkpoint = Checkpoint(entity.name, str(driver.options.segment))
        self.lock = threading.Lock()
        self.collisions: KeyRegistry | None = None
        self.rng = random.Random()
        self.indexes = gsi_key_names(driver.contract.table_of(entity))

    def apply_plan(self, plan: SegmentPlan | None) -> None:
        """Read only this process's segment of the plan (every row without one)."""
        if plan is None:
            return
        self.where, self.where_params = plan.where(self.driver.options.segment.index)
        self.checkpoint.plan = plan.generation

    def plan(self, engine: Engine, after: Key | None) -> Iterator[_Chunk]:
        """Chunk boundaries from an index-only keyset scan (never OFFSET)."""
        size = self.driver.options.batch_size
        number = 0
        window: list[_Chunk] = []
        with engine.connect() as conn:
            while True:
                keys = self.reader.read_keys(conn, after, size, where=self.where,
                                             where_params=self.where_params)
                conn.rollback()
                if not keys:
                    break
                window.append(_Chunk(number, after, keys[-1], len(keys)))
                number += 1
                after = keys[-1]
                if len(window) >= max(16, 2 * self.driver.options.workers):
                    yield from self._release(window)
                    window = []
                if len(keys) < size:
                    break
        yield from self._release(window)

    def _release(self, window: list[_Chunk]) -> list[_Chunk]:
        if self.driver.options.shuffle:
            self.rng.shuffle(window)
        return window

    def run_chunk(self, chunk: _Chunk) -> None:
        rate, dry = self.driver.rate, self.driver.options.dry_run
        # `--rate` waits here, before the chunk's transaction begins: no lock is held.
        taken = self._expected_items(chunk.rows) if rate.rate and not dry else 0
        rate.acquire(taken)
        attempts = 0
        while True:
            attempts += 1
            try:
                written = self._run_chunk(chunk)
                break
            except Exception as err:
                overdue = isinstance(err, ChunkOverdue) and attempts < 3
                if not (overdue or is_retryable(err)) or attempts >= 20:
                    raise
                pause(attempts, base=0.01, cap=1.0)
        rate.settle(taken, written)

    def _expected_items(self, rows: int) -> int:
        """Items a chunk of `rows` rows should make, from the chunks done so far."""
        with self.lock:
            done, items = self.summary.rows_read, self.summary.items_written
        return -(-rows * items // done) if done and items else rows

    def _run_chunk(self, chunk: _Chunk) -> int:
        """Read, map and write one chunk under its locks; returns the items written."""
        driver = self.driver
        dry = driver.options.dry_run
        version: int | None = None
        sent = False
        with driver.engine.connect() as conn:
            transaction = conn.begin()
            try:
                if dry:  # no locks: the rows and their related rows read at one instant
                    consistent_snapshot(conn)
                records = self.reader.read_range(
                    conn, chunk.after, chunk.until, lock=None if dry else "share",
                    where=self.where, where_params=self.where_params)
                items, dead = self._map(records)
                sizes = [item_size(i) for i in items] if dry else []
                units = [write_units(i, size, self.indexes)
                         for i, size in zip(items, sizes, strict=True)] if dry else []
                written = 0 if dry else len(items)
                if not dry and items:
                    version = self._record(records, items)
                    deadline = time.monotonic() + driver.options.chunk_seconds
                    stamp = {"N": str(version)}
                    attribute = driver.contract.version_attribute
                    for item in items:
                        item[attribute] = stamp
                    sent = True
                    if self.collisions is not None:
                        claimants = {self.mapper.owner(r): self.mapper.source_key(r)
                                     for r in records}
                        written = self._put_claimed(items, claimants, dead, version, deadline)
                    else:
                        if driver.options.shuffle:
                            self.rng.shuffle(items)
                        bodies = batch_bodies(self.table, items)
                        del items
                        driver.write_bodies(bodies, deadline)
                transaction.commit()
            except BaseException:
                transaction.rollback()
                # Nothing sent: nothing can land. Else the row stays, held, for repair.
                if version is not None and not sent:
                    driver.outbox.clear([version])
                raise
        if version is not None:
            driver.outbox.clear_later(version)
        for source_key, reason in dead:
            driver.dead_letters.add(self.entity.name, source_key, reason)
        self._done(chunk, len(records), written, len(dead), sizes, units,
                   self.reader.root_of(records[-1]) if records else chunk.until)
        return written

    def _record(self, records: list[dict[str, Any]], items: list[Item]) -> int:
        """The chunk's outbox row: its roots and item keys, held from repair while a request
        of the chunk may still arrive; its id is the chunk's version."""
        driver = self.driver
        roots = {self.entity.name: [self.reader.root_of(r) for r in records]}
        keys = [(self.table, self.mapper.item_key(item), item[OWNER_ATTRIBUTE]["S"]
                 if OWNER_ATTRIBUTE in item else None) for item in items]
        hold = driver.options.chunk_seconds + driver.ddb.longest_call_seconds() + 60
        version = driver.outbox.record("backfill", f"backfill {self.entity.name}", roots, keys,
                                       hold_seconds=hold)
        driver.floor.note(version)
        return version

    def _map(self, records: list[dict[str, Any]]) -> tuple[list[Item], list[tuple[dict[str, Any],
                                                                                    str]]]:
        items: list[Item] = []
        dead: list[tuple[dict[str, Any], str]] = []
        claims: list[tuple[str, str]] = []
        owners: dict[str, tuple[dict[str, Any], int, int]] = {}
        for record in records:
            try:
                mapped = self.items_of(record)
            except ItemError as err:
                dead.append((err.source_key, err.reason))
                continue
            if self.collisions is not None:
                key = json.dumps(self.mapper.item_key(mapped[0]), sort_keys=True,
                                 ensure_ascii=False)
                owner = json.dumps(self.mapper.source_key(record), default=str)
                if key in owners:
                    dead.append((self.mapper.source_key(record),
                                 f"maps to the same key {key} as {owners[key][0]}"))
                    continue
                owners[key] = (self.mapper.source_key(record), len(items), len(mapped))
                claims.append((key, owner))
            items.extend(mapped)
        if self.collisions is not None and claims:
            taken = self.collisions.claim(claims)
            if taken:
                drop: set[int] = set()
                for key, earlier in taken.items():
                    source_key, start, count = owners[key]
                    dead.append((source_key, f"maps to the same key {key} as {earlier}"))
                    drop.update(range(start, start + count))
                items = [item for i, item in enumerate(items) if i not in drop]
        return items, dead

    def _put_claimed(self, items: list[Item], claimants: dict[str, dict[str, Any]],
                     dead: list[tuple[dict[str, Any], str]], version: int,
                     deadline: float) -> int:
        """Write the items of an entity whose key two rows may share (`key_is_injective`
        says no), one conditional PutItem each: refused when the key holds another row's
        item (its `_owner`), so a row colliding with one copied by an earlier run of this
        backfill, or by another segment's process, is dead-lettered too, not overwritten.
        A record's items (the entity item, then its guards) share an owner and go in
        order; after a refusal the rest of that record's items are not written. The put
        is conditional on the version too, as every conditional write is. Returns the
        items written."""
        attribute = self.driver.contract.version_attribute
        condition = {"ConditionExpression": f"{FREE_OR_OWNED} AND (attribute_not_exists(#v) "
                                            "OR #v <= :v)",
                     "ExpressionAttributeNames": {"#k": self.mapper.partition_key,
                                                  "#o": OWNER_ATTRIBUTE, "#v": attribute},
                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        stamp = {"N": str(version)}
        written = 0
        refused: str | None = None
        for item in items:
            owner = item[OWNER_ATTRIBUTE]
            if owner["S"] == refused:
                continue
            if time.monotonic() > deadline:
                raise ChunkOverdue(f"a chunk of {self.entity.name} kept sending for more than "
                                   f"{self.driver.options.chunk_seconds:.0f}s")
            request = dict(condition, TableName=self.table, Item=item,
                           ExpressionAttributeValues={":o": owner, ":v": stamp})
            try:
                self.driver.ddb.call_json("PutItem", request)
                written += 1
            except ConditionFailed as err:
                stored = err.item or {}
                held = stored.get(OWNER_ATTRIBUTE, {}).get("S")
                if held is None or held == owner["S"]:
                    # Ours, or no row's: refused only for a version above ours, which no
                    # writer can have written while this chunk holds its rows' locks.
                    above = int(stored.get(attribute, {}).get("N", version))
                    raise VersionRegression(self.table, self.mapper.item_key(item), above,
                                            version) from err
                refused = owner["S"]
                key = json.dumps({k: next(iter(v.values()))
                                  for k, v in self.mapper.item_key(item).items()},
                                 ensure_ascii=False)
                dead.append((claimants.get(owner["S"], {"_owner": owner["S"]}),
                             f"maps to the key {key}, which DynamoDB holds for {held}"))
        return written

    def note_dead_letter_file(self) -> None:
        """Name this run's dead-letter file in the checkpoint, so that a run resuming it
        can say where the rows it counts went."""
        path = self.driver.dead_letters.path
        if path is not None:
            where = f"{socket.gethostname()}:{path.resolve()}"
            if where not in self.checkpoint.dead_letter_files:
                self.checkpoint.dead_letter_files.append(where)

    def _done(self, chunk: _Chunk, rows: int, items: int, dead: int, sizes: list[int],
              units: list[int], last_key: Key) -> None:
        driver = self.driver
        with self.lock:
            summary = self.summary
            summary.rows_read += rows
            summary.items_written += items
            summary.dead_lettered += dead
            summary.chunks += 1
            if sizes:
                summary.would_write += len(sizes)
                summary.bytes += sum(sizes)
                summary.largest_item = max(summary.largest_item, max(sizes))
                summary.write_units += sum(units)
            if driver.options.dry_run:
                summary.skipped += rows - dead
            if dead:
                self.note_dead_letter_file()  # saved with the next checkpoint
            self.completed[chunk.number] = _Chunk(chunk.number, chunk.after, last_key, rows)
            advanced = False
            while self.next_to_checkpoint in self.completed:
                done = self.completed.pop(self.next_to_checkpoint)
                self.checkpoint.last_key = done.until
                self.next_to_checkpoint += 1
                advanced = True
            if advanced and not driver.options.dry_run:
                self.checkpoint.rows_read = summary.rows_read
                self.checkpoint.items_written = summary.items_written
                self.checkpoint.dead_letters = summary.dead_lettered
                driver.checkpoints.save(self.checkpoint)
        if driver.options.progress is not None:
            driver.options.progress.advance(self.entity.name, rows, items)


class Backfill:
    """Runs a backfill; see `backfill()`."""

    def __init__(self, contract: Contract, engine: Engine, ddb: DynamoDB,
                 options: BackfillOptions):
        self.contract = contract
        self.engine = engine
        self.ddb = ddb
        self.options = options
        self.outbox = Outbox(engine)
        self.floor = VersionFloor(ddb, self.outbox)
        self.checkpoints = CheckpointStore(ddb)
        self.dead_letters = DeadLetters(options.dead_letters)
        self.rate = RateLimiter(options.rate)
        self._version_attribute = contract.version_attribute
        self.earlier_dead_letter_files: list[str] = []
        self.catalog: Catalog | None = None  # read when the run starts

    def entities(self) -> list[Entity]:
        sources = self.contract.source_entities()
        if not self.options.entities:
            return sources
        by_name = {e.name.lower(): e for e in sources}
        by_name.update({e.entity_type.lower(): e for e in sources})
        chosen = []
        for name in self.options.entities:
            entity = by_name.get(name.lower())
            if entity is None:
                raise BackfillError(f"unknown entity {name!r}; entities: "
                                    f"{', '.join(e.name for e in sources)}")
            chosen.append(entity)
        return chosen

    def write(self, table: str, items: list[Item]) -> None:
        """BatchWriteItem in 25s through the fast path; unprocessed items are retried
        with exponential backoff and full jitter."""
        self.write_bodies(batch_bodies(table, items),
                          time.monotonic() + self.options.chunk_seconds)

    def write_bodies(self, bodies: Sequence[tuple[int, bytes]], deadline: float) -> None:
        """Send pre-encoded BatchWriteItem bodies (item count, body) in order; unprocessed
        items are retried with exponential backoff and full jitter. No request is sent
        after `deadline` (see `ChunkOverdue`). (`--rate` is applied per chunk, before its
        transaction: see `RateLimiter`.)"""
        def in_time() -> None:
            if time.monotonic() > deadline:
                raise ChunkOverdue(f"a chunk kept sending for more than "
                                   f"{self.options.chunk_seconds:.0f}s")

        for _count, body in bodies:
            for _answer in until_processed(
                    "BatchWriteItem", lambda request: self.ddb.call_json("BatchWriteItem", request),
                    body, lambda left: encode_json({"RequestItems": left}),
                    attempts=self.options.max_batch_attempts, before_send=in_time):
                pass

    def run(self) -> BackfillSummary:
        started = time.monotonic()
        with fewer_collections():  # the heap alive now kept out of full collections
            return self._run(started)

    def _run(self, started: float) -> BackfillSummary:
        entities = self.entities()
        # Before a row is read: a contract naming what MySQL lacks stops here, whole.
        require_conformance(self.contract, self.engine, {e.name for e in entities})
        if not self.options.dry_run:
            ensure_state_tables(self.engine)
            self.floor.check()  # the batches take no condition: never below a stored version
        with self.engine.connect() as conn:
            catalog = self.catalog = read_catalog(conn)
        summaries = []
        progress = self.options.progress
        try:
            # Restarts and cuts are settled for every entity before any row is copied, so
            # that a run stopped after its first entity leaves no entity half-restarted.
            prepared = self._prepare_all(entities)
            for run, saved in prepared:
                summaries.append(self._copy(run, saved, catalog, progress))
            self.floor.flush()
        finally:
            self.outbox.close()
            self.dead_letters.close()
            if progress is not None:
                progress.close()
        return BackfillSummary(summaries, time.monotonic() - started, self.options.dry_run,
                               self.dead_letters.path if self.dead_letters.count else None,
                               self.earlier_dead_letter_files)

    def _prepare_all(self, entities: list[Entity]) -> list[tuple[_EntityRun, Checkpoint | None]]:
        """Each entity's plan and checkpoint, restarts applied. A `--restart` is recorded
        first, for every entity it covers, and cleared once each has started over: a
        run interrupted before that (even between two entities) is finished by the next
        run of the segment, with or without `--restart`."""
        if self.options.dry_run:
            return [self._prepare(entity, restart=False) for entity in entities]
        segment = str(self.options.segment)
        pending = set(self.checkpoints.pending_restart(segment))
        if self.options.restart:
            pending |= {entity.name for entity in entities}
            self.checkpoints.request_restart(segment, sorted(pending))
        prepared = [self._prepare(entity, restart=entity.name in pending) for entity in entities]
        if pending and pending <= {entity.name for entity in entities}:
            self.checkpoints.restart_applied(segment)
        elif pending:
            # Entities this run does not cover keep their pending restart.
            self.checkpoints.request_restart(
                segment, sorted(pending - {entity.name for entity in entities}))
        return prepared

    def _prepare(self, entity: Entity, *, restart: bool) -> tuple[_EntityRun, Checkpoint | None]:
        run = _EntityRun(self, entity)
        segment = str(self.options.segment)
        self._check_cut(entity, restart)
        saved = None if self.options.dry_run else self.checkpoints.load(entity.name, segment)
        plan = self._segment_plan(run, saved, restart)
        run.apply_plan(plan)
        if saved is not None and (restart or saved.plan != run.checkpoint.plan):
            if not restart:
                run.summary.replanned = True  # made under a plan a --restart replaced
            self.checkpoints.reset(entity.name, segment)
            saved = None
        return run, saved

    def _check_cut(self, entity: Entity, restart: bool) -> None:
        """Processes of one backfill must cut an entity into the same number of segments,
        or some rows fall in none of them: the first run's count stays in force, and a
        run asking for another is refused, unless it restarts (a new cut for all)."""
        count = self.options.segment.count
        if self.options.dry_run:
            return
        in_force = self.checkpoints.set_cut(entity.name, count, replace=restart)
        if in_force != count:
            raise BackfillError(
                f"{entity.name} is being backfilled in {in_force} segment(s); this run asks "
                f"for {count}. Run its remaining segments with --segment I/{in_force}, or "
                f"start over in {count} with --restart (given to every process)")

    def _copy(self, run: _EntityRun, saved: Checkpoint | None, catalog: Catalog,
              progress: Progress | None) -> EntitySummary:
        entity = run.entity
        after: Key | None = None
        if saved is not None and saved.done:
            # Nothing to do, but rows an earlier run could not copy are still missing:
            # the summary names them and the exit status stays 1 until --restart.
            run.summary.already_done = True
            self._carry_dead_letters(run, saved)
            run.summary.pending_segments = self._pending_segments(run)
            return run.summary
        if saved is not None:
            after = saved.last_key
            run.summary.resumed_from = after
            saved.plan = run.checkpoint.plan
            run.checkpoint = saved
            run.summary.rows_read = saved.rows_read
            run.summary.items_written = run.summary.resumed_items = saved.items_written
            self._carry_dead_letters(run, saved)
        if not key_is_injective(entity, catalog):
            run.collisions = KeyRegistry()
        if not self.options.dry_run:
            run.summary.warning = self._phase_warning(entity)
        if progress is not None:
            progress.start(entity.name, self._count(run, after), run.summary.rows_read)
        started = time.monotonic()
        try:
            self._execute(run, after)
        finally:
            if run.collisions is not None:
                run.collisions.close()
        run.summary.elapsed = time.monotonic() - started
        if not self.options.dry_run:
            run.checkpoint.done = True
            run.checkpoint.rows_read = run.summary.rows_read
            run.checkpoint.items_written = run.summary.items_written
            run.checkpoint.dead_letters = run.summary.dead_lettered
            self.checkpoints.save(run.checkpoint)
            run.summary.pending_segments = self._pending_segments(run)
        if progress is not None:
            progress.finish(entity.name)
        return run.summary

    def _pending_segments(self, run: _EntityRun) -> list[str]:
        """The other segments of this entity's cut whose checkpoint is not done (under
        the plan in force)."""
        count = self.options.segment.count
        if count == 1 or self.options.dry_run:
            return []
        pending = []
        for index in range(count):
            if index == self.options.segment.index:
                continue
            other = self.checkpoints.load(run.entity.name, f"{index}/{count}")
            if other is None or not other.done or other.plan != run.checkpoint.plan:
                pending.append(f"{index}/{count}")
        return pending

    def _carry_dead_letters(self, run: _EntityRun, saved: Checkpoint) -> None:
        """The dead letters of the earlier runs a checkpoint records: counted in this
        run's summary, their files named in it."""
        run.summary.dead_lettered = saved.dead_letters
        if saved.dead_letters:
            self.earlier_dead_letter_files += [
                f for f in (_display_file(f) for f in saved.dead_letter_files)
                if f not in self.earlier_dead_letter_files]

    def _phase_warning(self, entity: Entity) -> str | None:
        """Rows must not be copied while an application process may still write the
        entity to MySQL alone. Once its phase (the `migrate_flags` row of its flag name,
        the entity type in lower case) has left mysql_only, none can: a write on the
        MySQL-only path reads that row in share mode before its commit, and the switch
        waited for it (see `wrappers.flags`). Still `mysql_only`: every change after this
        backfill reads a row would stay out of DynamoDB; returns that warning (the copy
        goes ahead: a first fill before the switch is legitimate, it just needs a
        reconcile afterwards)."""
        name = entity.entity_type.lower()
        with self.engine.connect() as conn:
            phase = conn.execute(sa.select(flags.c.phase).where(flags.c.entity == name)).scalar()
        if phase is None or phase == "mysql_only":
            message = (f"its phase is mysql_only (`migrate flags set {name} dual_write` "
                       "first): changes made after a row is copied will not reach DynamoDB "
                       "until the entity dual-writes and `reconcile --repair` has run")
            log.info("%s: %s", entity.name, message)  # the summary shows it
            return message
        return None

    def _segment_plan(self, run: _EntityRun, saved: Checkpoint | None,
                      restart: bool) -> SegmentPlan | None:
        """The plan of this entity's segments: the stored one, else a new one stored for
        every process of the run (first come, first served). `--restart` replaces a plan
        this segment already ran under; a plan made since (by another restarted process
        of the same run) is followed. A dry run stores nothing."""
        count = self.options.segment.count
        if count == 1:
            return None
        name = run.entity.name
        stored = self.checkpoints.load_plan(name, count, create_table=not self.options.dry_run)
        if stored is not None and not (restart and saved is not None
                                       and saved.plan == stored.generation):
            return stored
        with self.engine.connect() as conn:
            fresh = make_plan(conn, name, run.reader.source.table,
                              run.reader.source.primary_key[0], count)
            conn.rollback()
        if self.options.dry_run:
            return stored or fresh
        if stored is None:
            return self.checkpoints.create_plan(fresh)
        return self.checkpoints.replace_plan(stored, fresh)

    def _count(self, run: _EntityRun, after: Key | None) -> int:
        with self.engine.connect() as conn:
            where = run.where
            return int(conn.execute(sa.text(
                f"SELECT COUNT(*) FROM {quote_name(run.reader.source.table)}"
                + (f" WHERE {where}" if where else "")), run.where_params).scalar_one())

    def _execute(self, run: _EntityRun, after: Key | None) -> None:
        # No chunk is read ahead of the writers: a chunk's read, mapping and encoding
        # take a few percent of its writes, which the other workers keep going
        # meanwhile (see docs/benchmarks.md), and every chunk in flight is one more
        # that a SIGKILL may leave written beyond the checkpoint. For the same reason
        # (unless shuffled) a chunk starts only within `workers` chunks of the
        # checkpoint: one slow chunk cannot let the others run far past it, so a
        # rerun redoes at most the chunks that were in flight.
        workers = max(1, self.options.workers)
        ordered = not self.options.shuffle
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
            in_flight: set[Future[None]] = set()
            try:
                for chunk in run.plan(self.engine, after):
                    while in_flight and (len(in_flight) >= workers or (
                            ordered and chunk.number >= run.next_to_checkpoint + workers)):
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        for future in done:
                            future.result()
                    in_flight.add(pool.submit(run.run_chunk, chunk))
                for future in in_flight:
                    future.result()
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise


def _display_file(where: str) -> str:
    """A dead-letter file named in a checkpoint ("host:path"): the path alone when it is
    on this host."""
    host, _, path = where.partition(":")
    return path if host == socket.gethostname() else where


def backfill(contract: Contract, engine: Engine, ddb: DynamoDB,
             options: BackfillOptions | None = None) -> BackfillSummary:
    """Copy every source row of the contract's entities (or `options.entities`) into
    DynamoDB; see the module docstring. Returns the summary (its `exit_code` is 1
    when rows were dead-lettered)."""
    return Backfill(contract, engine, ddb, options or BackfillOptions()).run()


def estimate(contract: Contract, engine: Engine, ddb: DynamoDB, *,
             entities: Sequence[str] = (), price_per_million: float = 0.625,
             batch_size: int = 2000) -> list[dict[str, Any]]:
    """Write request units (and on-demand cost) a real backfill would consume.

    Each item costs ceil(size / 1 KB) units in its table and again in every GSI it
    has keys for (projection ALL: the whole item is written there too).
    """
    options = BackfillOptions(entities=entities, dry_run=True, batch_size=batch_size, workers=1)
    driver = Backfill(contract, engine, ddb, options)
    chosen = driver.entities()
    require_conformance(contract, engine, {e.name for e in chosen})
    rows: list[dict[str, Any]] = []
    for entity in chosen:
        reader, mapper = RecordReader(contract, entity), ItemMapper(contract, entity)
        indexes = gsi_key_names(contract.table_of(entity))
        units = items = size = 0
        with engine.connect() as conn:
            for chunk in reader.stream(conn, chunk_size=batch_size):
                for record in chunk:
                    try:
                        for item in mapper.items(record):
                            item_bytes = item_size(item)
                            units += write_units(item, item_bytes, indexes)
                            items += 1
                            size += item_bytes
                    except ItemError:
                        continue
        rows.append({"entity": entity.name, "items": items, "bytes": size,
                     "write_units": units, "cost": units * price_per_million / 1_000_000})
    return rows
