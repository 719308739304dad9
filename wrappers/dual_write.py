"""`DualWrite`: one application's dual-write, wired from its settings and its contract.

An application that adopts the toolkit builds one `DualWrite` per process and
hands it to its `DualWriteWrapper` subclasses (see `wrappers.base`). It owns
what every wrapper shares: the MySQL engine (READ COMMITTED, UTC sessions), the
DynamoDB client (the choke point), the flag store (one flag per source entity of
the contract, named after its entity type in lower case), the failure policy of
each entity and the sync engine that runs each write (`migration.sync.engine`).
Nothing here knows any application: entities, flags and items all come from
the contract.

    app = DualWrite(Settings(), "contract.yaml")
    app.run("notes.create", [Touch("notes", values=row)], lambda conn: insert(conn, row),
            created=lambda note_id: [("notes", (note_id,))])
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migration.contract import load_contract
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.errors import ConfigError
from migration.ops.ledger import Ledger
from migration.settings import Settings
from migration.source.mysql import connection_failure, create_engine
from migration.sync.dependencies import Key
from migration.sync.engine import Policy, SyncEngine, Touch
from migration.sync.state import ensure_state_tables
from wrappers.flags import FlagStore, flag_names

T = TypeVar("T")


class DualWrite:
    """One application's dual-write: engine, DynamoDB client, flags, policies, sync engine.

    `contract` is a `Contract` or the path of one (default: `settings.contract`).
    `policies` maps flag names to `rollback` or `outbox` and wins over
    `MIGRATE_FAILURE_POLICY__<FLAG>`. Use it as a context manager, or `close()` it.
    """

    def __init__(self, settings: Settings | None = None,
                 contract: Contract | str | Path | None = None, *,
                 ddb: DynamoDB | None = None, policies: Mapping[str, str] | None = None,
                 pool_size: int = 20):
        self.settings = settings = settings or Settings()
        self.contract = _contract(contract, settings)
        self.engine: Engine = create_engine(settings, pool_size=pool_size)
        try:
            ensure_state_tables(self.engine)
        except sa.exc.DBAPIError as err:
            self.engine.dispose()
            # A wrong password, host or database: one line saying so, the driver's error kept.
            failure = connection_failure(err, settings.sqlalchemy_url())
            if failure is None:
                raise
            raise failure from err
        self.ddb = ddb or DynamoDB(settings)
        self.flags = FlagStore(self.engine, flag_names(self.contract), overrides=settings.flags,
                               cache_seconds=settings.flag_cache_seconds)
        chosen = {name.lower(): value for name, value in settings.failure_policy.items()}
        chosen.update({name.lower(): value for name, value in (policies or {}).items()})
        self.policies: dict[str, Policy] = {}
        for name, value in chosen.items():
            self.flags._known(name)
            self.policies[self.flags.entities[name]] = Policy(value)
        # Every dual-write and shadow-read outcome, counted for `migrate status`.
        self.ledger = Ledger(self.engine, flush_seconds=settings.outcome_flush_seconds,
                             retention_days=settings.outcome_retention_days)
        self.sync = SyncEngine(self.contract, self.engine, self.ddb, ledger=self.ledger,
                               enabled=self.flags.writing_entities,
                               fence=self.flags.fenced_phases,
                               policy=lambda entity: self.policies.get(entity, Policy.ROLLBACK))
        self.shadow_mismatches = 0
        self._metrics: Any = None
        # A dual-write holds up to three of the pool's connections at once (its transaction,
        # the outbox's, the check for rows raced in), and writers of one row queue on its
        # lock while holding the first: a burst could take every connection and leave the
        # lock's holder waiting for a second one until the pool times out. So at most a
        # third of the pool's connections' worth of writes (pool_size and as many again
        # as overflow) run at once; the others wait for a slot before taking any.
        self.write_slots = threading.BoundedSemaphore(max(1, 2 * pool_size // 3))

    def run(self, operation: str, touches: Sequence[Touch], write: Callable[[Connection], T], *,
            created: Callable[[T], Sequence[tuple[str, Key]]] | None = None,
            entity: str | None = None) -> T:
        """Run one application write in MySQL and bring DynamoDB along, as the phases of
        the entities it touches say (see `SyncEngine.run`); `PhaseMoved` when `entity`
        has moved to `dynamodb_only`."""
        with self.write_slots:
            return self.sync.run(operation, touches, write, created=created, entity=entity)

    def metrics(self, registry: Any = None) -> Any:
        """Prometheus metrics of this process's dual-writes and shadow reads (a
        `migration.ops.metrics.Metrics` following the ledger; needs the extra `ops`)."""
        if self._metrics is None:
            from migration.ops.metrics import Metrics

            self._metrics = Metrics(registry).observe(self.ledger)
        return self._metrics

    def read(self, read: Callable[[Connection], T]) -> T:
        """Run a read on a MySQL connection of the application's engine."""
        with self.engine.connect() as conn:
            return read(conn)

    def ready_for_dynamodb_only(self) -> bool:
        """Whether this application may write DynamoDB natively once its phase is
        `dynamodb_only` again after a catch-up went back: a writer that finds the write
        fence released reopens it only then (`wrappers.base`). An application that must
        prepare DynamoDB first (the shop writes its holder links) answers False until it
        has; the default has nothing to prepare."""
        return True

    def repair(self, *, limit: int | None = None, older_than: float = 0.0) -> tuple[int, int]:
        """Re-sync whatever the outbox names; returns (repaired, failed)."""
        return self.sync.repair(limit=limit, older_than=older_than)

    def close(self) -> None:
        self.ledger.close()
        self.sync.outbox.close()
        self.sync.floor.flush_quietly()
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _contract(contract: Contract | str | Path | None, settings: Settings) -> Contract:
    if isinstance(contract, Contract):
        return contract
    path = contract if contract is not None else settings.contract
    if path is None:
        raise ConfigError("no contract: pass one to DualWrite, or set MIGRATE_CONTRACT")
    return load_contract(path)
