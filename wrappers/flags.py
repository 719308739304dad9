"""Feature flags: each entity's migration phase, changeable at runtime without a deploy.

Phases, in order: `mysql_only` → `dual_write` → `shadow_read` → `dynamodb_read` →
`dynamodb_only` (see `migration.sync.phases`).
A phase lives in the MySQL table `migrate_flags` (read at most every
`flag_cache_seconds` per process) and may be pinned by the environment
(`MIGRATE_FLAGS__USER=dynamodb_read:25`), which wins. `dynamodb_read` may serve
only a percentage of keys, chosen by a stable hash of the key so one key always
reads from the same store. Shadow-read mismatches are recorded in
`migrate_shadow_mismatches` with the key and the differing fields.

The cache bounds when a process last read a phase, not when its transactions
commit, so writes are fenced: every MySQL write transaction reads the flag rows
again in share mode inside itself (`fenced_phases`), and `set_phase` updates a
row exclusively, so it waits for every transaction that read the old phase.
Once `set_phase` returns, no write that took the path of the old phase (MySQL
alone, or MySQL then DynamoDB when the entity has moved to `dynamodb_only`) can
still commit.

Leaving `dynamodb_only` needs MySQL to hold what DynamoDB took meanwhile: the
switch back is refused unless it comes from the application's catch-up
(`set_phase(..., caught_up=True)`), which replays DynamoDB's changes into MySQL
(`migration.sync.catch_up`; the registration service's is `migrate registration
catch-up`; the shop has none yet, so it stays in `dynamodb_only`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.engine import Connection, Engine

from migration.errors import MigrateError, Terminal
from migration.ops.records import operator, record_phase_change
from migration.sync.phases import Phase
from migration.sync.state import flags as flags_table
from migration.sync.state import shadow_mismatches


class FlagError(MigrateError, Terminal):
    """An unknown entity, an unknown phase or a percentage outside 0-100."""


@dataclass(frozen=True)
class Flag:
    entity: str
    phase: Phase
    percent: int
    source: str  # "default", "database" or "environment"


def parse_phase(value: str, *, entity: str = "") -> tuple[Phase, int]:
    """`dynamodb_read:25` → (Phase.DYNAMODB_READ, 25); a bare phase means 100%."""
    text, _, percent_text = value.strip().partition(":")
    try:
        phase = Phase(text.strip().lower())
    except ValueError:
        where = f" for {entity}" if entity else ""
        raise FlagError(f"unknown phase {text!r}{where}; phases: "
                        f"{', '.join(p.value for p in Phase)}") from None
    percent = 100
    if percent_text:
        try:
            percent = int(percent_text)
        except ValueError:
            raise FlagError(f"percentage {percent_text!r} is not a whole number") from None
    if not 0 <= percent <= 100:
        raise FlagError(f"percentage {percent} is outside 0-100")
    return phase, percent


def flag_names(contract: Any) -> dict[str, str]:
    """Flag names of a contract's source entities: the entity type in lower case
    (USER → `user`, CART → `cart`), mapped to the contract entity."""
    return {e.entity_type.lower(): e.name for e in contract.source_entities()}


def key_bucket(entity: str, key: Iterable[Any]) -> int:
    """A stable bucket 0-99 for a key: the same key always lands in the same bucket."""
    text = entity + ":" + json.dumps([str(k) for k in key], ensure_ascii=False)
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], "big") % 100


class FlagStore:
    """Reads and sets the phase of each entity (flag names like `user`, `cart`)."""

    def __init__(self, engine: Engine, entities: Mapping[str, str], *,
                 overrides: Mapping[str, str] | None = None, cache_seconds: float = 2.0,
                 default: Phase = Phase.MYSQL_ONLY, clock: Callable[[], float] = time.monotonic):
        self.engine = engine
        self.entities = dict(entities)  # flag name -> contract entity name
        self.cache_seconds = cache_seconds
        self.default = default
        self._overrides: dict[str, tuple[Phase, int]] = {}
        for name, value in (overrides or {}).items():
            self._overrides[self._known(name.lower())] = parse_phase(value, entity=name)
        self._cache: dict[str, tuple[Phase, int]] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()
        self._clock = clock
        self._rows_ensured = False

    def _known(self, name: str) -> str:
        if name not in self.entities:
            raise FlagError(f"unknown entity {name!r}; entities: {', '.join(self.entities)}")
        return name

    def _load(self) -> dict[str, tuple[Phase, int]]:
        now = self._clock()
        with self._lock:
            if now - self._loaded_at < self.cache_seconds:
                return self._cache
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(flags_table.c.entity, flags_table.c.phase,
                                              flags_table.c.percent)).all()
            cache = self._parse(rows)
            self._cache, self._loaded_at = cache, now
            return cache

    def _parse(self, rows: Iterable[Any]) -> dict[str, tuple[Phase, int]]:
        cache = {}
        for entity, phase, percent in rows:
            if entity in self.entities:
                try:
                    cache[entity] = (Phase(phase), int(percent))
                except ValueError:
                    continue  # a phase written by a newer toolkit version: keep the default
        return cache

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")

    def flag(self, name: str) -> Flag:
        name = self._known(name.lower())
        if name in self._overrides:
            phase, percent = self._overrides[name]
            return Flag(name, phase, percent, "environment")
        stored = self._load().get(name)
        if stored is not None:
            return Flag(name, stored[0], stored[1], "database")
        return Flag(name, self.default, 100, "default")

    def all(self) -> list[Flag]:
        return [self.flag(name) for name in self.entities]

    def set_phase(self, name: str, phase: str | Phase, percent: int = 100, *,
                  caught_up: bool = False,
                  record: Callable[[Connection, Phase | None], None] | None = None) -> Flag:
        """Change an entity's phase for every process. It waits for the write transactions
        that read the old phase in share mode (`fenced_phases`) to end; from its return
        no write can commit on the old phase's path, though a process's reads follow
        within its cache time. Leaving `dynamodb_only` is refused unless `caught_up`
        (the application's catch-up has replayed DynamoDB's changes into MySQL).
        `record` is called on the switch's own transaction with the phase it replaces
        (read under the row's lock): the history of phase changes commits with it. Without
        one, the change is recorded as made here, no gate asked."""
        return self.set_phases(
            [name], phase, percent, caught_up=caught_up,
            record=None if record is None else lambda conn, _name, replaced: record(
                conn, replaced))[0]

    def set_phases(self, names: Sequence[str], phase: str | Phase, percent: int = 100, *,
                   caught_up: bool = False,
                   record: Callable[[Connection, str, Phase | None], None] | None = None
                   ) -> list[Flag]:
        """`set_phase` for several entities in one transaction: every process's writes see
        all of them move at once (a write's fence reads every flag row in one statement).
        `record` gets each entity's name and the phase it replaces."""
        wanted = [self._known(name.lower()) for name in names]
        parsed, _ = parse_phase(str(phase), entity=", ".join(wanted))
        if not 0 <= percent <= 100:
            raise FlagError(f"percentage {percent} is outside 0-100")
        with self.engine.begin() as conn:
            # Rows locked in key order, as a write's fence reads them: no deadlock.
            rows = {row[0]: (row[1], int(row[2])) for row in conn.execute(
                sa.select(flags_table.c.entity, flags_table.c.phase, flags_table.c.percent)
                .where(flags_table.c.entity.in_(wanted)).order_by(flags_table.c.entity)
                .with_for_update())}
            for name in wanted:
                current, was = rows.get(name, (None, 100))
                if current == Phase.DYNAMODB_ONLY.value and parsed is not Phase.DYNAMODB_ONLY \
                        and not caught_up:
                    raise FlagError(
                        f"{name} is dynamodb_only: MySQL has not been written since, so going "
                        "back would serve and dual-write stale rows. Only a catch-up may switch "
                        "it back: it replays DynamoDB's changes into MySQL first (the "
                        "registration service: `migrate registration catch-up`). An "
                        "application without one (the shop, today) must stay in dynamodb_only")
                statement = mysql_insert(flags_table).values(entity=name, phase=parsed.value,
                                                             percent=percent)
                conn.execute(statement.on_duplicate_key_update(
                    phase=parsed.value, percent=percent, updated_at=sa.func.now(6)))
                replaced = Phase(current) if current in set(Phase) else None
                if record is not None:
                    record(conn, name, replaced)
                elif (replaced or self.default, was) != (parsed, percent):
                    # Every change is in the history, those made here directly too (no gate
                    # was asked: `migration.ops.operate.set_phase` is the gated way).
                    record_phase_change(
                        conn, entity=name, from_phase=(replaced or self.default).value,
                        to_phase=parsed.value, percent=percent, changed_by=operator(),
                        forced=False, reason="set through FlagStore.set_phase (no gate checked)"
                        + (" by the catch-up" if caught_up else ""), evidence={})
        self.invalidate()
        return [self.flag(name) for name in wanted]

    def phase_of(self, entity: str) -> Phase:
        """The phase of a contract entity (by its contract name)."""
        for name, contract_name in self.entities.items():
            if contract_name == entity:
                return self.flag(name).phase
        return Phase.MYSQL_ONLY

    def writing_entities(self) -> set[str]:
        """Contract entities whose items DynamoDB must follow from MySQL (dual_write,
        shadow_read, dynamodb_read), as the cache says."""
        return {self.entities[f.entity] for f in self.all() if f.phase.follows_mysql}

    def fenced_phases(self, conn: Connection) -> dict[str, Phase]:
        """Each contract entity's phase, read on the caller's open transaction in share mode.

        The flag rows stay share-locked until that transaction ends, and `set_phase`
        needs them exclusively: a phase cannot change between this read and the
        caller's commit. A flag without a row gets one (`mysql_only`, committed on its
        own) first, since an absent row would lock nothing. Pinned flags (the
        environment) are taken as pinned."""
        stored = [name for name in self.entities if name not in self._overrides]
        if stored and not self._rows_ensured:
            with self.engine.begin() as own:
                own.execute(mysql_insert(flags_table).prefix_with("IGNORE"),
                            [{"entity": name, "phase": Phase.MYSQL_ONLY.value}
                             for name in stored])
            self._rows_ensured = True
        phases = self._parse(conn.execute(
            sa.select(flags_table.c.entity, flags_table.c.phase, flags_table.c.percent)
            .where(flags_table.c.entity.in_(stored)).with_for_update(read=True)).all()) \
            if stored else {}
        with self._lock:  # what was just read is the freshest there is
            self._cache, self._loaded_at = dict(phases), self._clock()
        found = {self.entities[name]: phase for name, (phase, _) in phases.items()}
        found.update({self.entities[name]: phase for name, (phase, _) in self._overrides.items()})
        for name in self.entities:
            found.setdefault(self.entities[name], self.default)
        return found

    def fenced_writing_entities(self, conn: Connection) -> set[str]:
        """`writing_entities`, read by `fenced_phases`."""
        return {entity for entity, phase in self.fenced_phases(conn).items()
                if phase.follows_mysql}

    def reads_dynamodb(self, name: str, key: Iterable[Any]) -> bool:
        flag = self.flag(name)
        if flag.phase is Phase.DYNAMODB_ONLY:
            return True
        if flag.phase is not Phase.DYNAMODB_READ:
            return False
        return flag.percent >= 100 or key_bucket(name, key) < flag.percent

    # -- shadow reads ------------------------------------------------------------------
    def record_mismatch(self, name: str, operation: str, key: Any,
                        fields: Mapping[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(shadow_mismatches.insert().values(
                entity=name, operation=operation[:200],
                item_key=json.dumps(key, ensure_ascii=False, default=str),
                fields=json.dumps(fields, ensure_ascii=False, default=str)))

    def mismatch_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(shadow_mismatches.c.entity, sa.func.count())
                                .group_by(shadow_mismatches.c.entity)).all()
        counts = dict.fromkeys(self.entities, 0)
        counts.update({entity: int(n) for entity, n in rows if entity in counts})
        return counts

    def mismatches(self, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query = sa.select(shadow_mismatches).order_by(shadow_mismatches.c.id.desc()).limit(limit)
        if name is not None:
            query = query.where(shadow_mismatches.c.entity == self._known(name))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
