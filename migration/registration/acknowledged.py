"""What HTTP clients of the registration service were told, and the check that DynamoDB
holds it.

`Answers` records every answer: its status code, the seed's error type of a 4xx, and
what a client was last told about one user's place at one event ("registered",
"waitlisted", or gone). Each user is driven by one client, so the answers about one
(event, user) pair arrive in the order their requests were made. An answer that
contradicts what the client was told before (a member told NotRegisteredError, a
non-member AlreadyRegisteredError) is a failure: a write was lost or invented.

`check_dynamodb` compares the answers with the seed's single table: every acknowledged
user and event has its item; every acknowledged membership not later ended by an
acknowledged unregistration has its item under the seed's keys (a waitlisted user may
since have been promoted to a registration), and no other membership exists; each event
holds no more registrations than its capacity and its counts equal its items.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from migration.dynamodb.client import DynamoDB

# The seed's domain errors a realistic mix of requests meets, per operation.
EXPECTED_ERRORS = {
    "register": {"EventFullError", "AlreadyRegisteredError"},
    "unregister": {"NotRegisteredError"},
}
REGISTERED, WAITLISTED = "registered", "waitlisted"
WAIT_SK = re.compile(r"^WAIT#(\d{5})#(.+)$")
KEPT_FAILURES = 20


@dataclass
class Membership:
    """What a client was last told about a user's place at an event; `certain` is False
    once a request about it got no answer that says (a failure: the check skips it)."""

    state: str | None = None
    certain: bool = True


@dataclass
class EventFacts:
    capacity: int
    waitlist_enabled: bool


class Answers:
    """Every answer the clients got (thread-safe), counted per phase of the journey."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.phase = "start"
        self.statuses: Counter[int] = Counter()
        self.per_phase: Counter[str] = Counter()
        self.domain_errors: Counter[str] = Counter()
        self.failed = 0
        self._unanswered = 0
        self.failures: list[str] = []  # the first KEPT_FAILURES, one line each
        self.users: set[str] = set()
        self.events: dict[str, EventFacts] = {}
        self.members: dict[tuple[str, str], Membership] = {}

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + self._unanswered

    def answered(self, operation: str, status: int, error: str | None) -> bool:
        """Count one answer; False (and a failure recorded) when it is not one the mix
        expects: a 5xx, or a 4xx other than the operation's domain errors."""
        with self._lock:
            self.statuses[status] += 1
            self.per_phase[self.phase] += 1
            if status < 400:
                return True
            if status < 500 and error in EXPECTED_ERRORS.get(operation, set()):
                self.domain_errors[error] += 1
                return True
        self.fail(f"{operation}: {status} {error or ''}".rstrip())
        return False

    def unanswered(self, operation: str, err: BaseException) -> None:
        with self._lock:
            self._unanswered += 1
            self.per_phase[self.phase] += 1
        self.fail(f"{operation}: no answer ({type(err).__name__}: {err})")

    def fail(self, what: str) -> None:
        with self._lock:
            self.failed += 1
            if len(self.failures) < KEPT_FAILURES:
                self.failures.append(f"[{self.phase}] {what}")

    def user_created(self, user_id: str) -> None:
        with self._lock:
            self.users.add(user_id)

    def event_created(self, event_id: str, capacity: int, waitlist_enabled: bool) -> None:
        with self._lock:
            self.events[event_id] = EventFacts(capacity, waitlist_enabled)

    def told(self, event_id: str, user_id: str, state: str | None, *, certain: bool = True
             ) -> None:
        """A client was told the user's place at the event (None: not a member)."""
        with self._lock:
            self.members[(event_id, user_id)] = Membership(state, certain)

    def recent_events(self, count: int) -> list[str]:
        """The last `count` events created."""
        with self._lock:
            return list(self.events)[-count:]

    def member(self, event_id: str, user_id: str) -> Membership:
        with self._lock:
            return self.members.get((event_id, user_id), Membership())

    def memberships_of(self, user_ids: set[str]) -> list[tuple[str, str, Membership]]:
        """(event, user, membership) of these users, as told so far."""
        with self._lock:
            return [(e, u, m) for (e, u), m in self.members.items() if u in user_ids]


@dataclass
class Checks:
    """What `check_dynamodb` looked at, and what it found wrong (empty: all holds)."""

    users: int = 0
    events: int = 0
    registered: int = 0
    waitlisted: int = 0
    gone: int = 0
    uncertain: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def memberships(self) -> int:
        return self.registered + self.waitlisted + self.gone


def _scan(ddb: DynamoDB, table: str) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.call("Scan", **request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else value.get("S", value.get("N"))


def check_dynamodb(answers: Answers, ddb: DynamoDB, table: str) -> Checks:
    """Compare what the clients were told with the seed's table (module docstring)."""
    checks = Checks()
    problems = checks.problems
    users: dict[str, dict[str, Any]] = {}
    events: dict[str, dict[str, Any]] = {}
    regs: dict[str, dict[str, dict[str, Any]]] = {}
    waits: dict[str, dict[str, dict[str, Any]]] = {}
    for item in _scan(ddb, table):
        pk, sk = _s(item, "PK") or "", _s(item, "SK") or ""
        if pk.startswith("USER#") and sk == "METADATA":
            users[pk.removeprefix("USER#")] = item
        elif pk.startswith("EVENT#"):
            event = pk.removeprefix("EVENT#")
            if sk == "METADATA":
                events[event] = item
            elif sk.startswith("REG#"):
                regs.setdefault(event, {})[sk.removeprefix("REG#")] = item
            elif sk.startswith("WAIT#"):
                matched = WAIT_SK.match(sk)
                if matched is None:
                    problems.append(f"{pk} {sk}: not WAIT#NNNNN#user (zero-padded position)")
                    continue
                waits.setdefault(event, {})[matched.group(2)] = item
            else:
                problems.append(f"{pk} {sk}: an item of no known kind")

    for user in sorted(answers.users):
        checks.users += 1
        found = users.get(user)
        if found is None or (_s(found, "entity_type"), _s(found, "user_id")) != ("user", user):
            problems.append(f"user {user}: acknowledged, but USER#{user}/METADATA is "
                            f"{'missing' if found is None else 'not its user item'}")

    for event, facts in sorted(answers.events.items()):
        checks.events += 1
        meta = events.get(event)
        if meta is None:
            problems.append(f"event {event}: acknowledged, but EVENT#{event}/METADATA is missing")
            continue
        registered, waiting = regs.get(event, {}), waits.get(event, {})
        if len(registered) > facts.capacity:
            problems.append(f"event {event}: overbooked, {len(registered)} registered for a "
                            f"capacity of {facts.capacity}")
        if waiting and not facts.waitlist_enabled:
            problems.append(f"event {event}: {len(waiting)} waitlisted without a waitlist")
        counts = (int(_s(meta, "registered_count") or -1), int(_s(meta, "waitlist_count") or -1))
        if counts != (len(registered), len(waiting)):
            problems.append(f"event {event}: registered_count, waitlist_count = {counts}, but "
                            f"it holds {len(registered)} REG# and {len(waiting)} WAIT# items")
        positions = [int(_s(w, "position") or 0) for w in waiting.values()]
        if len(set(positions)) != len(positions):
            problems.append(f"event {event}: waitlist positions repeat: {sorted(positions)}")
        for user, reg in registered.items():
            problems += _key_problems(reg, event, user, "REGISTERED", "registration")
        for user, wait in waiting.items():
            problems += _key_problems(wait, event, user, "WAITLISTED", "waitlist")
            if WAIT_SK.match(_s(wait, "SK") or "") and \
                    int((_s(wait, "SK") or "").split("#")[1]) != int(_s(wait, "position") or 0):
                problems.append(f"EVENT#{event} {_s(wait, 'SK')}: position attribute "
                                f"{_s(wait, 'position')} is not the key's")

    for (event, user), membership in sorted(answers.members.items()):
        if not membership.certain:
            checks.uncertain += 1
            continue
        is_reg, is_wait = user in regs.get(event, {}), user in waits.get(event, {})
        state = membership.state
        where = f"{user} at {event}"
        if state == REGISTERED:
            checks.registered += 1
            if not is_reg or is_wait:
                problems.append(f"{where}: acknowledged registered, but DynamoDB has "
                                f"{_holds(is_reg, is_wait)}")
        elif state == WAITLISTED:
            checks.waitlisted += 1
            if is_reg == is_wait:  # promoted (REG#) or still in line (WAIT#), exactly one
                problems.append(f"{where}: acknowledged waitlisted, but DynamoDB has "
                                f"{_holds(is_reg, is_wait)}")
        else:
            checks.gone += 1
            if is_reg or is_wait:
                problems.append(f"{where}: not a member as acknowledged, but DynamoDB has "
                                f"{_holds(is_reg, is_wait)}")
    told = set(answers.members)
    for kind, members in (("REG#", regs), ("WAIT#", waits)):
        for event, by_user in members.items():
            for user in by_user:
                if (event, user) not in told:
                    problems.append(f"{user} at {event}: a {kind} item no client was told of")
    return checks


def _holds(is_reg: bool, is_wait: bool) -> str:
    held = [name for name, there in (("REG#", is_reg), ("WAIT#", is_wait)) if there]
    return " and ".join(held) + " item(s)" if held else "no item"


def _key_problems(item: dict[str, Any], event: str, user: str, gsi1sk: str,
                  entity_type: str) -> list[str]:
    want = {"GSI1PK": f"USER#{user}", "GSI1SK": gsi1sk, "entity_type": entity_type,
            "user_id": user, "event_id": event, "status": gsi1sk.lower()}
    wrong = {name: _s(item, name) for name, value in want.items() if _s(item, name) != value}
    if not wrong:
        return []
    return [f"EVENT#{event} {_s(item, 'SK')}: {wrong} (the seed's keys say "
            f"{ {n: want[n] for n in wrong} })"]
