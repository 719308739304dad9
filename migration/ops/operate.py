"""The operations on a running migration, as plain functions over a flag store: the
status of every entity, and phase changes that go through the gates and are recorded.

`migration.commands` builds the flag store and the collector from the settings and
calls these; tests call them directly with a clock of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from migration.errors import MigrateError, Terminal
from migration.ops.gates import gate_for, next_gate
from migration.ops.records import operator, record_phase_change
from migration.ops.status import Collector, Gate, Status
from migration.settings import Settings
from migration.sync.phases import Phase
from wrappers.flags import Flag, FlagError, parse_phase


class GateRefused(MigrateError, Terminal):
    """An entity may not move forward: its gate does not hold (the reasons say why)."""

    def __init__(self, entity: str, current: Phase, target: Phase, gates: list[Gate]):
        self.entity = entity
        self.current = current
        self.target = target
        self.gates = gates
        self.reasons = [reason for gate in gates if not gate.holds for reason in gate.reasons]
        super().__init__(f"{entity}: the gate from {current.value} to {target.value} does not "
                         f"hold: {'; '.join(self.reasons)}. Wait for the evidence, or force "
                         "it with --force --reason TEXT (recorded)")


@dataclass
class PhaseSwitch:
    """A phase change made: the flag as it now is, the gates measured on the way (none
    when going back), whether it was forced, and what going back leaves behind."""

    flag: Flag
    from_phase: Phase | None
    gates: list[Gate] = field(default_factory=list)
    forced: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def evidence(self) -> dict[str, Any]:
        return {"gates": [{"target": g.target, "holds": g.holds, "reasons": g.reasons,
                           "evidence": g.evidence} for g in self.gates],
                "notes": self.notes}


def status(collector: Collector, settings: Settings, only: list[str] | None = None) -> Status:
    """Every entity's status (or those named), each with the gate to its next phase."""
    flags = collector.flags
    wanted = [flags._known(n.lower()) for n in only or []]
    entities = []
    for name in flags.entities:
        if wanted and name not in wanted:
            continue
        gates = settings.gates_for(name)
        entities.append(collector.entity_status(
            name, gates.window_seconds,
            gate=lambda c, flag, _s, gates=gates: next_gate(c, flag, gates)))
    return Status(generated_at=collector.now.replace(microsecond=0).isoformat() + "Z",
                  entities=entities)


def going_back(entity: str, current: Phase, target: Phase) -> list[str]:
    """What moving `entity` back from `current` to `target` leaves behind, and what to run."""
    notes: list[str] = []
    if current.follows_mysql and target is Phase.MYSQL_ONLY:
        notes.append(f"DynamoDB keeps {entity}'s items as they are now and stops following "
                     "MySQL: they go stale. Outbox rows already recorded are still repaired "
                     "by `migrate repair`. Before moving forward again, bring DynamoDB up to "
                     f"date: `migrate backfill --entity {entity} --restart`, then `reconcile` "
                     "(with `--repair --yes` for what it finds)")
    if current in (Phase.DYNAMODB_READ, Phase.DYNAMODB_ONLY) and target.writes_mysql and \
            target is not Phase.MYSQL_ONLY:
        notes.append(f"MySQL answers {entity}'s reads again; DynamoDB keeps following it. "
                     "Nothing to run; `migrate status` shows whether reads still differ")
    if current is Phase.SHADOW_READ and target is Phase.DUAL_WRITE:
        notes.append("shadow reads stop; the mismatches recorded so far stay "
                     "(`migrate flags show`); the gate to shadow_read is measured again")
    if current.position - target.position > 0 and target.next() is not None:
        notes.append(f"moving forward again passes the gate to {target.next()} "
                     "(`migrate status` shows it)")
    return notes


def set_phase(collector: Collector, settings: Settings, entity: str, phase: str,
              percent: int = 100, *, force: bool = False, reason: str | None = None,
              by: str | None = None, caught_up: bool = False) -> PhaseSwitch:
    """Move an entity to `phase` (`dynamodb_read:25` or `percent`), through every gate
    between its phase and the new one; refused (`GateRefused`) unless they all hold, or
    `force` with a `reason`. Going back is always allowed and says what it leaves behind.
    The change, who made it (`by`, or the OS user), whether it was forced, why and on
    what evidence, is recorded on the switch's own transaction."""
    flags = collector.flags
    name = flags._known(entity.lower())
    target, parsed_percent = parse_phase(phase, entity=name)
    if ":" in phase:
        percent = parsed_percent
    if force and not (reason and reason.strip()):
        raise FlagError("--force needs --reason TEXT: say why the gate is passed over; it is "
                        "recorded with the change")
    flags.invalidate()  # the gates judge the phase as it stands, not a cached one
    current = flags.flag(name).phase
    switch = PhaseSwitch(flag=flags.flag(name), from_phase=current, forced=False)
    if target.position > current.position:
        gates = settings.gates_for(name)
        for step in list(Phase)[current.position + 1:target.position + 1]:
            switch.gates.append(gate_for(collector, flags.flag(name), step, gates))
        if not all(g.holds for g in switch.gates):
            if not force:
                raise GateRefused(name, current, target, switch.gates)
            switch.forced = True
    elif target.position < current.position:
        switch.notes = going_back(name, current, target)

    def record(conn: Connection, replaced: Phase | None) -> None:
        switch.from_phase = replaced
        record_phase_change(conn, entity=name,
                            from_phase=(replaced or current).value, to_phase=target.value,
                            percent=percent, changed_by=by or operator(),
                            forced=switch.forced, reason=reason, evidence=switch.evidence)

    switch.flag = flags.set_phase(name, target, percent, caught_up=caught_up, record=record)
    return switch


__all__ = ["GateRefused", "PhaseSwitch", "going_back", "set_phase", "status"]
