"""The registration service's journey: from `mysql_only` to `dynamodb_only` while it
serves HTTP clients, through the toolkit's own operations and its measured gates, then
checked against what every client was told.

    mysql_only ─ dual_write ─ backfill ─ reconcile ─ shadow_read ─ reconcile
               ─ dynamodb_read ─ reconcile ─ dynamodb_only

The service runs in this process (uvicorn, `server.running`), `Load` sends it a mix of
requests from several clients the whole time, and each move is the command an operator
runs: `commands.status` for the gates, `commands.flags_set` to move (refused unless its
gate holds: nothing is forced), `commands.backfill`, and `reconcile`. A refused gate is
waited on for more evidence (traffic goes on; a reconcile is run when the gate asks for
clean reconciles) up to `evidence_timeout`, then the journey stops with the gate's
reasons. The gates are the toolkit's with short windows (`journey_settings`).

The four entities move together, one flag after the other in `ORDER`: `event` first,
because its wrapper writes registrations and waitlist entries; once it is
`dynamodb_only` every such write takes the DynamoDB path, so no write can take the
MySQL path with `registration` already left behind. `user` comes last: a user created in
DynamoDB alone could not be registered on the MySQL path (its foreign key). Before
`dynamodb_only` every gate is measured first and the four flags then move back to back,
with no reconcile between them (a reconcile then would see the moved entities' new
items as drift).

At the end (`acknowledged.check_dynamodb`): no answer other than the mix's domain
errors, no event overbooked, counts equal to items, every acknowledged membership in
DynamoDB under the seed's keys; and every reconcile found zero drift, every shadow read
matched.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from botocore.exceptions import BotoCoreError
from sqlalchemy.exc import SQLAlchemyError

from migration import commands
from migration.backfill.run import BackfillOptions
from migration.dynamodb.client import DynamoDB
from migration.errors import MigrateError, Terminal
from migration.local.services import local_services, sigterm_interrupts
from migration.ops.operate import GateRefused
from migration.ops.status import Gate
from migration.registration import REGISTRATION_CONTRACT
from migration.registration.acknowledged import Answers, Checks, check_dynamodb
from migration.registration.dual_write import RegistrationApp
from migration.registration.load import Load
from migration.registration.server import prepare, running
from migration.resources import Resources
from migration.settings import GateSettings, Settings
from migration.source.mysql import create_engine, server_url
from migration.sync.phases import Phase
from reconcile.result import ReconcileResult
from reconcile.run import ReconcileOptions, reconcile

Echo = Callable[[str], None]

ORDER = ("event", "registration", "waitlist", "user")  # why this order: the docstring
TABLE = "registration-system"


@dataclass
class JourneyOptions:
    clients: int = 4
    seconds_per_phase: float = 5.0  # of traffic in each phase (and the final window)
    evidence_timeout: float = 60.0  # how long a refused gate is waited on
    seed: int = 0  # the clients' choices


class JourneyStuck(MigrateError, Terminal):
    """A gate did not hold within the time given: its reasons say what it still lacks."""

    def __init__(self, target: str, waited: float, refused: dict[str, Gate]):
        self.target = target
        self.refused = refused
        reasons = "; ".join(f"{flag}: {r}" for flag, gate in refused.items()
                            for r in gate.reasons)
        super().__init__(f"the gate to {target} did not hold after {waited:.0f}s: {reasons}")


class NotANewStart(MigrateError, Terminal):
    """The service has moved or holds data already: a journey starts from nothing."""


@dataclass
class Step:
    at: float
    name: str
    text: str


@dataclass
class JourneyReport:
    """What the journey did and found; `passed` when every check holds."""

    options: JourneyOptions
    answers: Answers
    steps: list[Step] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    reconciles: list[dict[str, int]] = field(default_factory=list)
    shadow_comparisons: int = 0
    shadow_mismatches: int = 0
    checks: Checks | None = None
    stopped: str | None = None  # why the journey did not reach dynamodb_only
    problems: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def passed(self) -> bool:
        return self.stopped is None and not self.problems and self.answers.failed == 0 and \
            self.checks is not None and not self.checks.problems

    def summary(self) -> str:
        answers, checks = self.answers, self.checks
        rate = answers.requests / self.elapsed if self.elapsed else 0.0
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(answers.statuses.items()))
        lines = ["summary",
                 f"  requests        {answers.requests} in {self.elapsed:.1f}s ({rate:.0f}/s) "
                 f"from {self.options.clients} clients; by status {codes}",
                 "  per phase       " + ", ".join(f"{p} {n}" for p, n in
                                                  answers.per_phase.items()),
                 "  domain errors   " + (", ".join(f"{e} {n}" for e, n in
                                                   sorted(answers.domain_errors.items()))
                                         or "none") + " (expected in the mix)",
                 f"  unexpected      {answers.failed}"]
        lines += [f"    {failure}" for failure in answers.failures]
        drift = sum(r.get("drift", 0) for r in self.reconciles)
        lines.append(f"  reconciles      {len(self.reconciles)}, drift {drift} "
                     f"({sum(r.get('rows', 0) for r in self.reconciles)} rows compared, "
                     f"{sum(r.get('cleared_in_flight', 0) for r in self.reconciles)} "
                     "differences cleared as writes in flight)")
        lines.append(f"  shadow reads    {self.shadow_comparisons} compared (as the gate to "
                     f"dynamodb_read counted them), {self.shadow_mismatches} mismatched")
        if checks is not None:
            verdict = "all there under the seed's keys, no event overbooked, counts equal " \
                "to items" if not checks.problems else f"{len(checks.problems)} problem(s):"
            lines.append(f"  in DynamoDB     {checks.users} users, {checks.events} events, "
                         f"{checks.memberships} acknowledged memberships ({checks.registered} "
                         f"registered, {checks.waitlisted} waitlisted, {checks.gone} gone"
                         + (f", {checks.uncertain} unanswered skipped" if checks.uncertain
                            else "") + f"): {verdict}")
            lines += [f"    {problem}" for problem in checks.problems[:20]]
        lines.append("  phases          " + ", ".join(f"{p} {s:.1f}s" for p, s in
                                                      self.phase_seconds.items()))
        if self.stopped:
            lines.append(f"  stopped         {self.stopped}")
        lines += [f"  problem         {p}" for p in self.problems]
        lines.append(f"result: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)


def journey_settings(settings: Settings, options: JourneyOptions) -> Settings:
    """`settings` with the gates' windows and thresholds short enough for a journey of
    `options.seconds_per_phase` per phase, flags re-read and outcomes flushed often."""
    seconds = options.seconds_per_phase
    gates = GateSettings(window_seconds=max(5.0, 2 * seconds), min_dual_writes=5,
                         outbox_max_age_seconds=10.0, min_comparisons=5, clean_reconciles=2,
                         final_window_seconds=seconds)
    return settings.model_copy(update={
        "gates": gates, "flag_cache_seconds": 0.5, "outcome_flush_seconds": 0.5,
        "contract": settings.contract or REGISTRATION_CONTRACT})


def journey(settings: Settings, options: JourneyOptions | None = None, *, local: bool = False,
            keep: bool = False, echo: Echo = print) -> JourneyReport:
    """`migrate registration journey`: the journey on a database and table prefix of its
    own (`scratch`), on the settings' MySQL server and DynamoDB endpoint; with `local`,
    on MariaDB and DynamoDB Local started when none answer."""
    services = local_services(settings) if local else contextlib.nullcontext(settings)
    with sigterm_interrupts(), services as live, scratch(live, keep=keep, echo=echo) as own:
        return run_journey(own, options, echo=echo)


def run_journey(settings: Settings, options: JourneyOptions | None = None, *,
                echo: Echo = print) -> JourneyReport:
    """Run the journey on `settings`' database and table prefix, which must be new to the
    service (its schema and table are created); see the module docstring."""
    options = options or JourneyOptions()
    settings = journey_settings(settings, options)
    prepare(settings)
    report = JourneyReport(options, Answers())
    with RegistrationApp(settings) as app:
        _require_a_new_start(settings, app)
        with running(app) as base:
            echo(f"journey: {options.clients} clients on {base}, {options.seconds_per_phase:g}s "
                 f"of traffic per phase; MySQL {settings.redacted_mysql_url()}, DynamoDB "
                 f"{app.ddb.endpoint or 'AWS'}, table {settings.table_name(TABLE)}")
            journey = _Journey(settings, options, report, echo)
            load = Load(base, report.answers, options.clients, seed=options.seed)
            with load:
                try:
                    journey.run()
                except JourneyStuck as stuck:
                    report.stopped = str(stuck)
                    journey.step("stopped", str(stuck))
                finally:
                    load.stop()  # the answers in flight count for the last phase
                    journey.enter("end")
            report.elapsed = time.monotonic() - journey.started
        app.ledger.flush()
        report.shadow_mismatches = app.shadow_mismatches
        report.checks = check_dynamodb(report.answers, app.ddb, settings.table_name(TABLE))
    return report


def _require_a_new_start(settings: Settings, app: RegistrationApp) -> None:
    flags = {row.flag.entity: row.flag.phase for row in commands.flags_show(settings)}
    moved = {name: phase.value for name, phase in flags.items() if phase is not Phase.MYSQL_ONLY}
    with app.engine.connect() as conn:
        users = conn.execute(sa.text("SELECT COUNT(*) FROM users")).scalar_one()
    if moved or users:
        raise NotANewStart(
            f"the journey starts on a service that never moved: {moved or f'{users} users'} "
            "found. Run it on a new database (the CLI makes one) or `db downgrade base` first")


class _Journey:
    def __init__(self, settings: Settings, options: JourneyOptions, report: JourneyReport,
                 echo: Echo):
        self.settings = settings
        self.options = options
        self.report = report
        self.echo = echo
        self.started = time.monotonic()
        self.phase_started = self.started

    # -- telling ------------------------------------------------------------------------
    def step(self, name: str, text: str) -> None:
        at = time.monotonic() - self.started
        self.report.steps.append(Step(at, name, text))
        self.echo(f"[{at:6.1f}s] {name:<14} {text}")

    def enter(self, phase: str) -> None:
        """The clients' answers count for `phase` from now on."""
        now = time.monotonic()
        previous = self.report.answers.phase
        if previous != "start":
            self.report.phase_seconds[previous] = \
                self.report.phase_seconds.get(previous, 0.0) + now - self.phase_started
        self.phase_started = now
        self.report.answers.phase = phase

    def traffic(self, seconds: float | None = None) -> None:
        seconds = self.options.seconds_per_phase if seconds is None else seconds
        before = self.report.answers.requests
        time.sleep(seconds)
        self.step("traffic", f"{seconds:g}s in {self.report.answers.phase}: "
                             f"{self.report.answers.requests - before} requests")

    # -- the journey ----------------------------------------------------------------------
    def run(self) -> None:
        self.enter(Phase.MYSQL_ONLY.value)
        self.step(Phase.MYSQL_ONLY.value, "serving from MySQL alone")
        self.traffic()
        self.move(Phase.DUAL_WRITE)
        self.traffic()
        self.backfill()
        self.reconcile()
        self.move(Phase.SHADOW_READ)
        self.traffic()
        self.reconcile()
        self.move(Phase.DYNAMODB_READ)
        self.traffic()
        self.reconcile()
        self.move(Phase.DYNAMODB_ONLY)
        self.traffic()

    def gates(self, target: Phase) -> dict[str, Gate]:
        """Each flag's gate to `target`, as `migrate status` measures it now."""
        status = commands.status(self.settings, list(ORDER))
        return {e.flag: e.gate for e in status.entities if e.gate is not None
                and e.gate.target == target.value}

    def move(self, target: Phase) -> None:
        """Every flag to `target` through its gate; a refused gate waits for evidence."""
        waited_from = time.monotonic()
        deadline = waited_from + self.options.evidence_timeout
        moved: list[str] = []
        gates: dict[str, Gate] = {}
        while len(moved) < len(ORDER):
            if not moved:  # before the first flag moves, all gates must hold
                gates = self.gates(target)
                refused = {f: g for f, g in gates.items() if not g.holds}
                if len(gates) < len(ORDER):
                    raise MigrateError(f"not every flag stands before {target.value}: "
                                       f"{sorted(gates)}")
                if refused:
                    self._wait(target, refused, deadline, waited_from, may_reconcile=True)
                    continue
            flag = ORDER[len(moved)]
            try:
                change = commands.flags_set(self.settings, flag, target.value,
                                            by="registration journey")
            except GateRefused as refused_now:
                self._wait(target, {flag: refused_now.gates[-1]},
                           deadline, waited_from, may_reconcile=False)
                continue
            if change.switch is not None and change.switch.gates:
                gates[flag] = change.switch.gates[-1]
            moved.append(flag)
        if target is Phase.DYNAMODB_READ:  # the gate counted every flag's shadow reads
            self.report.shadow_comparisons = sum(
                int(g.evidence["shadow"]["comparisons"]) for g in gates.values())
        self.enter(target.value)
        self.step(target.value, f"{', '.join(ORDER)} moved; "
                                f"{_evidence(target, list(gates.values()))}")

    def _wait(self, target: Phase, refused: dict[str, Gate], deadline: float,
              waited_from: float, *, may_reconcile: bool) -> None:
        if time.monotonic() > deadline:
            raise JourneyStuck(target.value, time.monotonic() - waited_from, refused)
        if may_reconcile and any(_wants_reconcile(g) for g in refused.values()):
            self.step("gate waits", "; ".join(f"{f}: {r}" for f, g in refused.items()
                                              for r in g.reasons[:1]))
            self.reconcile()
        else:
            time.sleep(1.0)

    def backfill(self) -> None:
        summary = commands.backfill(self.settings, BackfillOptions(workers=2))
        rows = sum(e.rows_read for e in summary.entities)
        items = sum(e.items_written for e in summary.entities)
        if summary.dead_lettered:
            self.report.problems.append(f"backfill: {summary.dead_lettered} dead letter(s)")
        self.step("backfill", f"{rows} rows, {items} items in {summary.elapsed:.1f}s, "
                              f"{summary.dead_lettered} dead letters")

    def reconcile(self) -> ReconcileResult:
        with Resources(self.settings, pool_size=5) as resources:
            result = reconcile(resources.contract, resources.engine, resources.ddb,
                               ReconcileOptions(settle_seconds=0.5))
        totals = result.totals
        self.report.reconciles.append(totals)
        if result.has_drift:
            drifted = {e.entity: e.counts() for e in result.entities if e.drift}
            self.report.problems.append(f"reconcile in {self.report.answers.phase} found "
                                        f"drift: {drifted}")
        self.step("reconcile", f"{totals['rows']} rows, {totals['actual_items']} items: "
                               f"{'drift ' + str(totals['drift']) if result.has_drift else 'no drift'}"
                               f" ({totals['cleared_in_flight']} cleared in flight) in "
                               f"{result.seconds:.1f}s")
        return result


def _wants_reconcile(gate: Gate) -> bool:
    """Whether the gate lacks clean reconciles (running one is the evidence it asks for)."""
    found, thresholds = gate.evidence.get("reconcile"), gate.evidence.get("thresholds", {})
    if not found:
        return False
    if gate.target == Phase.SHADOW_READ.value:
        return bool(found["clean_since_backfill"] < 1)
    return bool(found["consecutive_clean"] < thresholds.get("clean_reconciles", 1))


def _evidence(target: Phase, gates: list[Gate]) -> str:
    """The gates' evidence, summed over the flags, in one line."""
    measured = [g.evidence for g in gates if "dual_writes" in g.evidence]
    if not measured:
        return "gate: nothing to measure"

    def total(section: str, name: str) -> int:
        return sum(int(e[section][name] or 0) for e in measured)

    parts = [f"dual-writes {total('dual_writes', 'successes')} ok / "
             f"{total('dual_writes', 'failures')} failed over "
             f"{measured[0]['window_seconds']:g}s",
             f"outbox {total('outbox', 'rows')} row(s)",
             f"clean reconciles {min(e['reconcile']['consecutive_clean'] for e in measured)}"]
    if target is Phase.SHADOW_READ:
        parts.insert(0, "backfill complete" if all(e["backfill"]["complete"] for e in measured)
                     else "backfill incomplete")
    else:
        parts.append(f"shadow reads {total('shadow', 'comparisons')} compared, "
                     f"{total('shadow', 'mismatches')} mismatched")
    if target is Phase.DYNAMODB_ONLY:
        held = min(float(e.get("in_phase_seconds") or 0) for e in measured)
        parts.append(f"{held:.0f}s in dynamodb_read")
    return "gates held: " + ", ".join(parts)


# -- a database and table prefix of the journey's own --------------------------------------

@contextlib.contextmanager
def scratch(settings: Settings, *, keep: bool = False,
            echo: Echo = print) -> Iterator[Settings]:
    """`settings` on a new database (on the same MySQL server) and a new table prefix;
    both are dropped afterwards unless `keep`."""
    token = uuid.uuid4().hex[:8]
    url = settings.sqlalchemy_url()
    database = f"registration_journey_{token}"
    live = settings.model_copy(update={
        "mysql_url": _secret(url.set(database=database).render_as_string(hide_password=False)),
        "mysql_password": None, "table_prefix": f"{settings.table_prefix}journey-{token}-"})
    try:
        yield live
    finally:
        if keep:
            echo(f"kept: database {database}, tables {live.table_prefix}*")
        else:
            try:
                _drop(live, database)
            except (MigrateError, SQLAlchemyError, BotoCoreError) as err:
                # Never in place of what stopped the journey: said, not raised.
                echo(f"could not drop database {database} or tables {live.table_prefix}*: "
                     f"{(str(err).splitlines() or [''])[0][:200]}")


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


def _drop(settings: Settings, database: str) -> None:
    engine = create_engine(server_url(settings.sqlalchemy_url()), pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{database}`"))
    finally:
        engine.dispose()
    ddb = DynamoDB(settings)
    for name in ddb.call("ListTables").get("TableNames", []):
        if name.startswith(settings.table_prefix):
            with contextlib.suppress(MigrateError):
                ddb.call("DeleteTable", TableName=name)
