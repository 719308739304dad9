"""Re-read differing keys from both stores, so that writes in flight are not reported.

For a batch of keys (at most 100: one BatchGetItem), inside one MySQL
transaction: read the roots that map to those keys with shared row locks
(`RecordReader.fetch(lock="share")`, the lock discipline of dual-write and
backfill), map them through the one row-to-item function, then read the keys
from DynamoDB with ConsistentRead while the locks are held. A dual-write takes
exclusive locks on its roots and writes DynamoDB before it commits, so while
our shared locks are held none of these roots has a write in flight: both
reads see the same committed state. Roots named by the stored items (an
extra item's fields or a guard's owner) are locked and read too, and the keys
read again, until no new root turns up.

What may still slip through is a row that maps to one of the keys but is
named by neither side (a row inserted after the first pass whose item lands
between our reads): the caller re-checks persistent differences once more
after a pause, and reports only what both re-checks found.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, Engine

from migration.backoff import pause
from migration.dynamodb.batches import until_processed
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.limits import BATCH_GET_KEYS
from migration.errors import ItemError
from migration.mapping.item import OWNER_ATTRIBUTE
from migration.mapping.values import AttributeValue, Item
from migration.source.mysql import is_retryable
from migration.sync.compare import field_differences
from reconcile.canonical import Root, from_wire, key_from_text, key_text
from reconcile.scope import Scope
from reconcile.store import Candidate

MAX_ROOT_ROUNDS = 4


@dataclass
class Finding:
    """What a re-read found at one key; `kind` None means both stores agree now."""

    kind: str | None
    table: int
    key: str
    subject: int
    roots: list[tuple[int, Root]] = field(default_factory=list)  # rows mapping here now
    stored_root: tuple[int, Root] | None = None  # the row the stored item names
    owner: str | None = None  # the stored item's guard owner
    differences: dict[str, dict[str, Any]] = field(default_factory=dict)
    stored: Item | None = None

    @property
    def candidate(self) -> Candidate:
        """This key as a candidate for the next re-check: every row known to touch it."""
        roots = list(self.roots)
        if self.stored_root is not None and self.stored_root not in roots:
            roots.append(self.stored_root)
        return self.table, self.key, roots


class Recheck:
    """Re-reads batches of keys under row locks; see the module docstring."""

    def __init__(self, scope: Scope, engine: Engine, ddb: DynamoDB, *,
                 mysql_attempts: int = 20, get_attempts: int = 12):
        self.scope = scope
        self.engine = engine
        self.ddb = ddb
        self.version_attribute = scope.contract.version_attribute
        self.mysql_attempts = mysql_attempts
        self.get_attempts = get_attempts
        # migration.source.mysql engines are READ COMMITTED already: no per-checkout SET.
        self._read_committed = engine.get_execution_options().get("isolation_level") == \
            "READ COMMITTED" or getattr(engine.dialect, "_on_connect_isolation_level",
                                        None) == "READ COMMITTED"

    def connect(self) -> Connection:
        """A READ COMMITTED connection: locking reads see the latest commit. Its statements
        (IN lists of every key of a batch) skip SQLAlchemy's compiled cache, which would
        keep one large entry per distinct list length."""
        conn = self.engine.connect().execution_options(compiled_cache=None)
        if self._read_committed:
            return conn
        return conn.execution_options(isolation_level="READ COMMITTED")

    def run(self, batch: Sequence[Candidate]) -> list[Finding]:
        """Findings for every key of the batch (one BatchGetItem's worth: <= 100 keys)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._run(batch)
            except Exception as err:
                if not is_retryable(err) or attempt >= self.mysql_attempts:
                    raise
                pause(attempt, base=0.01, cap=1.0)

    def _run(self, batch: Sequence[Candidate]) -> list[Finding]:
        keys = {(tbl, key) for tbl, key, _ in batch}
        wanted: set[tuple[int, Root]] = {root for _, _, roots in batch for root in roots}
        fetched: set[tuple[int, Root]] = set()
        expected: dict[tuple[int, str], list[tuple[int, Root, Item]]] = defaultdict(list)
        with self.connect() as conn:
            conn.begin()
            try:
                stored: dict[tuple[int, str], Item] = {}
                for _ in range(MAX_ROOT_ROUNDS):
                    new = wanted - fetched
                    self._map_roots(conn, new, keys, expected)
                    fetched |= new
                    stored = self.get(keys)
                    wanted |= {root for item_key, item in stored.items()
                               if (root := self.stored_root(item_key[0], item)) is not None}
                    if wanted <= fetched:
                        break
            finally:
                conn.rollback()
        before = {(tbl, key): roots for tbl, key, roots in batch}
        return [self._finding(tbl, key, expected.get((tbl, key), []), stored.get((tbl, key)),
                              before.get((tbl, key), []))
                for tbl, key in sorted(keys)]

    def _map_roots(self, conn: Connection, roots: Iterable[tuple[int, Root]],
                   keys: set[tuple[int, str]],
                   expected: dict[tuple[int, str], list[tuple[int, Root, Item]]]) -> None:
        """Read the roots under shared locks and note the items that land on `keys`.

        A row that cannot become an item maps to no key; the first pass reports it.
        """
        by_subject: dict[int, list[Root]] = defaultdict(list)
        for subject, root in roots:
            by_subject[subject].append(root)
        for subject, wanted in sorted(by_subject.items()):
            entity = self.scope.entity_at(subject)
            if entity is None:
                continue
            table = entity.table
            for record in entity.reader.fetch(conn, wanted, lock="share"):
                try:
                    items = entity.mapper.items(record)
                except ItemError:
                    continue
                root = entity.reader.root_of(record)
                for item in items:
                    item_key = (table.index, key_text(item, table.key_names))
                    if item_key in keys:
                        expected[item_key].append((subject, root, item))

    def stored_root(self, table_index: int, item: Mapping[str, AttributeValue]
                    ) -> tuple[int, Root] | None:
        """(subject, root) of the row a stored item says it was made from, or None."""
        subject, entity = self.scope.tables[table_index].attribute(item)
        if entity is None:
            return None
        root = entity.root_of_any(item)
        return (subject, root) if root is not None else None

    def _finding(self, table_index: int, key: str, expected: list[tuple[int, Root, Item]],
                 stored: Item | None, before: list[tuple[int, Root]]) -> Finding:
        roots = list(dict.fromkeys((subject, root) for subject, root, _ in expected))
        stored_subject = -1
        stored_root: tuple[int, Root] | None = None
        owner: str | None = None
        if stored is not None:
            stored_subject, _ = self.scope.tables[table_index].attribute(stored)
            stored_root = self.stored_root(table_index, stored)
            held = stored.get(OWNER_ATTRIBUTE)
            owner = held.get("S") if held is not None else None
        # Whose key it is: the row mapping to it now, else the stored item's entity, else
        # the row that mapped to it when the difference was first seen.
        subject = expected[0][0] if expected else stored_subject
        if subject < 0 and before:
            subject = before[0][0]
        finding = Finding(None, table_index, key, subject, roots, stored_root, owner,
                          stored=stored)
        if len(roots) > 1:
            finding.kind = "collisions"
        elif not expected:
            if stored is not None and stored_subject >= 0:
                finding.kind = "extra_in_dynamodb"
        elif stored is None:
            finding.kind = "missing_in_dynamodb"
        else:
            differences = field_differences(expected[0][2], from_wire(stored),
                                            ignore=[self.version_attribute])
            if differences:
                finding.kind = "mismatched"
                finding.differences = differences
        return finding

    # -- DynamoDB ------------------------------------------------------------------------
    def get(self, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Item]:
        """Consistent reads of the keys (BatchGetItem through the fast path), by key."""
        requests: dict[str, dict[str, Any]] = {}
        physical = {}
        for tbl, key in keys:
            table = self.scope.tables[tbl]
            physical[table.physical] = table
            requests.setdefault(table.physical, {"Keys": [], "ConsistentRead": True})[
                "Keys"].append(key_from_text(key, table.key_names))
        found: dict[tuple[int, str], Item] = {}
        pending: list[tuple[str, dict[str, Any]]] = list(requests.items())
        while pending:
            chunk: dict[str, dict[str, Any]] = {}
            count = 0
            while pending and count < BATCH_GET_KEYS:
                name, request = pending.pop()
                room = BATCH_GET_KEYS - count
                if len(request["Keys"]) > room:
                    pending.append((name, {"Keys": request["Keys"][room:],
                                           "ConsistentRead": True}))
                    request = {"Keys": request["Keys"][:room], "ConsistentRead": True}
                chunk[name] = request
                count += len(request["Keys"])
            for answer in until_processed(
                    "BatchGetItem",
                    lambda request: self.ddb.call_json("BatchGetItem", {"RequestItems": request}),
                    chunk, lambda left: left, attempts=self.get_attempts, cap=2.0):
                for name, items in answer.get("Responses", {}).items():
                    table = physical[name]
                    for item in items:
                        found[(table.index, key_text(item, table.key_names))] = item
        return found
