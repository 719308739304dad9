"""The operations on a running migration, as plain functions over a flag store: the
status of every entity, and phase changes that go through the gates and are recorded.

Entities the contract couples (`coupled_entities`: their writes span each other) cross
the `dynamodb_only` boundary together: a switch of one of them to or from it moves
the whole group in one transaction, through every member's gates. Alone, a member in
`dynamodb_only` would stop following the MySQL writes of the others (an email change
moving a user's orders), and the others would miss its native writes.

`migration.commands` builds the flag store and the collector from the settings and
calls these; tests call them directly with a clock of their own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from migration.contract.model import Contract
from migration.errors import MigrateError, Terminal
from migration.ops.gates import gate_for, next_gate
from migration.ops.records import operator, record_phase_change
from migration.ops.status import Collector, Gate, Status
from migration.settings import Settings
from migration.sync.phases import Phase
from wrappers.flags import Flag, FlagError, FlagStore, parse_phase


class GateRefused(MigrateError, Terminal):
    """An entity may not move forward: its gate does not hold (the reasons say why; a
    reason about another member of its coupled group starts with that member's name)."""

    def __init__(self, entity: str, current: Phase, target: Phase, gates: list[Gate]):
        self.entity = entity
        self.current = current
        self.target = target
        self.gates = gates
        self.reasons = [reason for gate in gates if not gate.holds for reason in gate.reasons]
        super().__init__(f"{entity}: the gate from {current.value} to {target.value} does not "
                         f"hold: {'; '.join(self.reasons)}. Wait for the evidence, or force "
                         "it with --force --reason TEXT (recorded)")


class CatchUpNeeded(MigrateError, Terminal):
    """A group in `dynamodb_only` may not go back before MySQL has caught up with it."""

    def __init__(self, entities: list[str], catch_up: str | None):
        self.entities = entities
        self.catch_up = catch_up
        them = ", ".join(entities)
        then = (f"Run its catch-up first ({catch_up}): it replays DynamoDB's changes into "
                "MySQL and then switches back" if catch_up else
                "No catch-up is declared for them (the contract's `coupled_entities[].catch_up`"
                "), so they cannot go back: stay in dynamodb_only")
        super().__init__(f"{them} {'is' if len(entities) == 1 else 'are'} dynamodb_only: MySQL "
                         "has not been written since, so going back would serve and dual-write "
                         f"stale rows. {then}")


@dataclass
class PhaseSwitch:
    """A phase change made: the flag as it now is, the gates measured on the way (none
    when going back), whether it was forced, and what going back leaves behind."""

    flag: Flag
    from_phase: Phase | None
    gates: list[Gate] = field(default_factory=list)
    forced: bool = False
    notes: list[str] = field(default_factory=list)
    moved_with: list[Flag] = field(default_factory=list)  # the rest of its coupled group

    @property
    def evidence(self) -> dict[str, Any]:
        return {"gates": [{"target": g.target, "holds": g.holds, "reasons": g.reasons,
                           "evidence": g.evidence} for g in self.gates],
                "notes": self.notes, "moved_with": [f.entity for f in self.moved_with]}


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


def coupled_flags(contract: Contract, flags: FlagStore,
                  name: str) -> tuple[list[str], str | None]:
    """The flags that cross the `dynamodb_only` boundary with `name` (itself first), and
    the group's declared catch-up; `name` alone when the contract couples it to nothing
    (`Contract.coupled_group`)."""
    by_entity = {entity: flag for flag, entity in flags.entities.items()}
    group = contract.coupled_group(flags.entities[name])
    members = [by_entity[e] for e in group.entities if e in by_entity and by_entity[e] != name]
    return [name, *members], group.catch_up


def set_phase(collector: Collector, settings: Settings, entity: str, phase: str,
              percent: int = 100, *, force: bool = False, reason: str | None = None,
              by: str | None = None, caught_up: bool = False) -> PhaseSwitch:
    """Move an entity to `phase` (`dynamodb_read:25` or `percent`), through every gate
    between its phase and the new one; refused (`GateRefused`) unless they all hold, or
    `force` with a `reason`. Going back is always allowed and says what it leaves behind,
    except out of `dynamodb_only` before the catch-up (`CatchUpNeeded`). A switch into or
    out of `dynamodb_only` moves the entity's coupled group with it, in one transaction,
    through every member's gates (`coupled_flags`). The change, who made it (`by`, or the
    OS user), whether it was forced, why and on what evidence, is recorded per entity on
    the switch's own transaction."""
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
    members, catch_up = coupled_flags(collector.contract, flags, name)
    if Phase.DYNAMODB_ONLY not in (current, target):
        members = [name]
    # Members already where they are going stay out of the switch (and of its record).
    moving = [m for m in members
              if m == name or (flags.flag(m).phase, flags.flag(m).percent) != (target, percent)]
    leaving = [m for m in moving if flags.flag(m).phase is Phase.DYNAMODB_ONLY
               and target is not Phase.DYNAMODB_ONLY]
    if leaving and not caught_up:
        raise CatchUpNeeded(leaving, catch_up)
    switch = PhaseSwitch(flag=flags.flag(name), from_phase=current, forced=False)
    for member in moving:
        member_phase = flags.flag(member).phase
        if target.position > member_phase.position:
            member_gates = settings.gates_for(member)
            for step in list(Phase)[member_phase.position + 1:target.position + 1]:
                gate = gate_for(collector, flags.flag(member), step, member_gates)
                if member != name:
                    gate = dataclasses.replace(gate, reasons=[
                        f"{member} (moves with {name}): {r}" for r in gate.reasons],
                        evidence={**gate.evidence, "entity": member})
                switch.gates.append(gate)
        elif target.position < member_phase.position:
            switch.notes += going_back(member, member_phase, target)
    if not all(g.holds for g in switch.gates):
        if not force:
            raise GateRefused(name, current, target, switch.gates)
        switch.forced = True
    changed_by = by or operator()

    def record(conn: Connection, member: str, replaced: Phase | None) -> None:
        if member == name:
            switch.from_phase = replaced
        was = replaced or (current if member == name else flags.flag(member).phase)
        record_phase_change(conn, entity=member, from_phase=was.value, to_phase=target.value,
                            percent=percent, changed_by=changed_by, forced=switch.forced,
                            reason=reason if member == name else
                            f"moved with {name} (coupled)" + (f": {reason}" if reason else ""),
                            evidence=switch.evidence)

    moved = flags.set_phases(moving, target, percent, caught_up=caught_up, record=record)
    switch.flag, switch.moved_with = moved[0], moved[1:]
    return switch


__all__ = ["CatchUpNeeded", "GateRefused", "PhaseSwitch", "coupled_flags", "going_back",
           "set_phase", "status"]
