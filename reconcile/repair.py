"""Repair: re-sync drifted keys from MySQL with the version-guarded writes of dual-write.

Everything goes through `SyncEngine.sync_roots`: the roots are read under
exclusive row locks, their items written with a fresh version (an older state
can never overwrite a newer one), and stale keys deleted only when no locked
root maps to them any more; the change is recorded in the outbox until
DynamoDB has it, so even a repair that dies half-way is finished by `repair`.

- missing / mismatched: re-sync the rows that map to the key (and the row the
  stored item names, harmless when it maps elsewhere);
- extra: delete the stored item (a guard under its own owner), re-syncing the
  row it names in the same call so a row that maps to the key again keeps it;
- a guard held by another row: delete it under that owner first, then re-sync;
- every delete is conditional on the exact version the re-check saw: an item a
  writer put there since (a row inserted after the re-check looked) stays;
- collisions and unmappable rows are not repaired: a person must change the
  rows in MySQL (rename one of two categories, fix an empty key value).

Without `yes`, nothing is written: the plan is returned.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.mapping.values import Item
from migration.sync.engine import SyncEngine
from migration.sync.state import ensure_state_tables
from migration.sync.writer import Delete, Exactly
from reconcile.canonical import Root, from_wire, key_from_text, plain_key
from reconcile.result import RepairResult
from reconcile.scope import Scope
from reconcile.store import Drifted, Spill

PLAN_LINES = 30


class Repair:
    """Plans and applies the repair of one run's drift (see the module docstring)."""

    def __init__(self, contract: Contract, scope: Scope, engine: Engine, ddb: DynamoDB,
                 spill: Spill, *, batch_size: int = 50):
        self.contract = contract
        self.scope = scope
        self.engine = engine
        self.ddb = ddb
        self.spill = spill
        self.batch_size = batch_size

    def describe_root(self, subject: int, root: Root) -> str:
        entity = self.scope.entity_at(subject)
        if entity is None:
            return f"row {root}"
        return f"{entity.name} " + ", ".join(
            f"{column}={value!r}" for column, value in zip(entity.primary_key, root, strict=True))

    def describe_key(self, table: int, key: str) -> str:
        scope = self.scope.tables[table]
        return f"{scope.logical} " + json.dumps(
            plain_key(key_from_text(key, scope.key_names), scope.key_names), ensure_ascii=False)

    def stale_key(self, table: int, key: str) -> dict[str, Any]:
        """A key for a botocore request (binary values as bytes)."""
        scope = self.scope.tables[table]
        converted: Item = from_wire(key_from_text(key, scope.key_names))
        return converted

    # -- planning --------------------------------------------------------------------------
    def run(self, *, yes: bool, unmappable: int,
            progress: Callable[[str, dict[str, Any]], None] | None = None) -> RepairResult:
        """Plan the repair of every drifted key; with `yes`, apply it too."""
        result = RepairResult(applied=yes, unmappable_skipped=unmappable)
        sync: SyncEngine | None = None
        if yes:
            ensure_state_tables(self.engine)
            sync = SyncEngine(self.contract, self.engine, self.ddb)
        try:
            for batch in self.spill.drift(self.batch_size):
                self._plan(batch, result)
                if sync is not None:
                    self._apply(sync, batch, result)
                    if progress is not None:
                        progress("repair", {"keys": result.repaired_keys,
                                            "actions": result.actions})
        finally:
            if sync is not None:
                sync.outbox.close()
        counts = self.spill.repair_root_counts()
        result.roots = {self.scope.subjects[subject]: count
                        for subject, count in sorted(counts.items())}
        return result

    def _plan(self, batch: Sequence[Drifted], result: RepairResult) -> None:
        roots: list[tuple[int, Root]] = []
        for drifted in batch:
            if drifted.kind == "collisions":
                result.collisions_skipped += 1
                self._note(result, f"skip collision at {self.describe_key(drifted.table, drifted.key)}"
                           f": rows {', '.join(self.describe_root(*r) for r in drifted.roots)} "
                           "map to it; change one of them in MySQL")
                continue
            # Rows the repair re-syncs because they map to the key, or (a guard another row
            # holds) because that row's stale guard goes first. The row an extra item
            # names is locked too when applied, but maps elsewhere: it is not counted.
            targets = list(drifted.roots)
            if drifted.owner is not None and drifted.kind == "mismatched" and \
                    drifted.held is not None and drifted.held not in targets:
                targets.append(drifted.held)
            roots.extend(t for t in targets if self.scope.entity_at(t[0]) is not None)
            if drifted.kind == "extra_in_dynamodb":
                result.deletes += 1
                self._note(result, f"delete {self.describe_key(drifted.table, drifted.key)} "
                           "(no source row maps to it)")
            elif drifted.owner is not None:
                result.deletes += 1
                self._note(result, f"delete {self.describe_key(drifted.table, drifted.key)} "
                           f"held by {drifted.owner}, then re-sync "
                           + ", ".join(self.describe_root(*r) for r in drifted.roots))
            else:
                self._note(result, f"re-sync {', '.join(self.describe_root(*r) for r in targets)}"
                           f" from MySQL ({drifted.kind} at "
                           f"{self.describe_key(drifted.table, drifted.key)})")
        self.spill.add_repair_roots(roots)

    @staticmethod
    def _note(result: RepairResult, line: str) -> None:
        if len(result.plan) < PLAN_LINES:
            result.plan.append(line)

    # -- applying ----------------------------------------------------------------------------
    def _apply(self, sync: SyncEngine, batch: Sequence[Drifted], result: RepairResult) -> None:
        work = [d for d in batch if d.kind != "collisions"]
        if not work:
            return
        try:
            result.actions += self._sync(sync, work)
            result.repaired_keys += len(work)
            return
        except Exception:  # noqa: BLE001 - retried key by key below to isolate the culprit
            pass
        for drifted in work:
            try:
                result.actions += self._sync(sync, [drifted])
                result.repaired_keys += 1
            except Exception as err:  # noqa: BLE001 - reported; the rest still gets repaired
                result.failures.append((f"{drifted.kind} at "
                                        f"{self.describe_key(drifted.table, drifted.key)}",
                                        f"{type(err).__name__}: {err}"))

    def _sync(self, sync: SyncEngine, work: Sequence[Drifted]) -> int:
        actions = 0
        # Guards another row holds: delete them under that owner first, with that row
        # locked and re-synced, or the rightful owner's put would be refused.
        first: dict[str, set[Root]] = defaultdict(set)
        first_stale: list[Delete] = []
        roots: dict[str, set[Root]] = defaultdict(set)
        stale: list[Delete] = []
        for drifted in work:
            physical = self.scope.tables[drifted.table].physical
            key = self.stale_key(drifted.table, drifted.key)
            held = self._named(drifted.held)
            observed = Delete(physical, key, drifted.owner, Exactly(drifted.version))
            if drifted.kind == "mismatched" and drifted.owner is not None:
                first_stale.append(observed)
                if held is not None:
                    first[held[0]].add(held[1])
            elif drifted.kind == "extra_in_dynamodb":
                stale.append(observed)
            if held is not None:
                roots[held[0]].add(held[1])
            for named in map(self._named, drifted.roots):
                if named is not None:
                    roots[named[0]].add(named[1])
        # Keys two rows map to are reported as collisions and left to a person.
        if first_stale:
            actions += sync.sync_roots(first, operation="reconcile repair", stale=first_stale,
                                       kind="reconcile", skip_collisions=True)
        actions += sync.sync_roots(roots, operation="reconcile repair", stale=stale,
                                   kind="reconcile", skip_collisions=True)
        return actions

    def _named(self, root: tuple[int, Root] | None) -> tuple[str, Root] | None:
        if root is None:
            return None
        entity = self.scope.entity_at(root[0])
        return (entity.name, root[1]) if entity is not None else None
