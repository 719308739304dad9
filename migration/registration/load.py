"""HTTP load on the registration service: clients in threads, each on its own connection,
sending a realistic mix until stopped, every answer recorded in `Answers`.

The mix: create users (each client its own: a user is driven by one client only, so
the answers about them arrive in order) and events (shared, small capacities, most with
a waitlist); register a client's users for the most recent events, where the clients
meet (so capacities fill, lines form and places are promoted); unregister them, now and
then where they are not members; read events, member lists and a user's events.

Every answer is held against what the client was told before: a member told
`NotRegisteredError`, a non-member told `AlreadyRegisteredError`, a registration of a
member that succeeds, or a user's event list missing an event they were acknowledged
registered for (still, after re-reads: the list comes from an eventually consistent
index in DynamoDB), is a failure (a write lost, invented, or read stale).
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from typing import Any, Self

import httpx

from migration.registration.acknowledged import REGISTERED, WAITLISTED, Answers

# Weights of the mix (out of 100).
MIX: tuple[tuple[str, int], ...] = (
    ("create_user", 8), ("create_event", 4), ("register", 40), ("unregister", 18),
    ("read", 30))
HOT_EVENTS = 6  # registrations go to the most recent events: the clients meet there
TIMEOUT_SECONDS = 60.0
# A user's events come from GSI1 once DynamoDB answers reads, and a GSI is eventually
# consistent: a listing that contradicts the acknowledged writes is asked again after
# these pauses before it counts as a failure.
LISTING_RECHECK_PAUSES = (0.2, 0.5, 1.0)


class Load:
    """`clients` threads sending the mix to `base` while the block runs (or from `start`
    to `stop`); `seed` makes each client's choices repeatable."""

    def __init__(self, base: str, answers: Answers, clients: int, *, seed: int = 0,
                 think_seconds: float = 0.0):
        self.base = base
        self.answers = answers
        self.clients = clients
        self.seed = seed
        self.think_seconds = think_seconds
        self.run_id = uuid.uuid4().hex[:6]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True,
                                          name=f"load-client-{n}")
                         for n in range(self.clients)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2 * TIMEOUT_SECONDS)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _client(self, number: int) -> None:
        client = _Client(self, number)
        try:
            with httpx.Client(base_url=self.base, timeout=TIMEOUT_SECONDS) as http:
                client.http = http
                while not self._stop.is_set():
                    client.step()
                    if self.think_seconds:
                        self._stop.wait(client.rng.uniform(0, self.think_seconds))
        except Exception as err:  # noqa: BLE001 - a client that dies is a failure, said once
            self.answers.fail(f"client {number} stopped: {type(err).__name__}: {err}")


class _Client:
    """One client's choices and what it was told about its own users."""

    def __init__(self, load: Load, number: int):
        self.load = load
        self.answers = load.answers
        self.rng = random.Random(load.seed * 1000 + number)
        self.prefix = f"{load.run_id}-c{number}"
        self.users: list[str] = []
        self.created = 0
        self.http: httpx.Client

    def step(self) -> None:
        names = [name for name, _ in MIX]
        action = self.rng.choices(names, weights=[w for _, w in MIX])[0]
        if action == "create_user" or len(self.users) < 2:
            self.create_user()
        elif action == "create_event" or not self.answers.events:
            self.create_event()
        elif action == "register":
            self.register()
        elif action == "unregister":
            self.unregister()
        else:
            self.read()

    # -- requests -----------------------------------------------------------------------
    def _send(self, operation: str, method: str, path: str, **kwargs: Any
              ) -> tuple[httpx.Response | None, bool]:
        """The answer (None: none came) and whether it is one the mix expects."""
        try:
            answer = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            self.answers.unanswered(operation, err)
            return None, False
        error = None
        if answer.status_code >= 400:
            try:
                error = answer.json().get("error")
            except ValueError:
                error = None
        return answer, self.answers.answered(operation, answer.status_code, error)

    def _next_id(self, kind: str) -> str:
        self.created += 1
        return f"{self.prefix}-{kind}{self.created}"

    def create_user(self) -> None:
        user = self._next_id("u")
        answer, ok = self._send("create_user", "POST", "/users",
                                json={"userId": user, "name": f"User {user}"})
        if answer is not None and ok and answer.status_code == 201:
            self.users.append(user)
            self.answers.user_created(user)

    def create_event(self) -> None:
        event = self._next_id("e")
        capacity = self.rng.randint(1, 3)
        waitlist = self.rng.random() < 0.7
        answer, ok = self._send("create_event", "POST", "/events", json={
            "eventId": event, "title": f"Event {event}", "capacity": capacity,
            "waitlistEnabled": waitlist, "location": "Hall " + event[-1]})
        if answer is not None and ok and answer.status_code == 201:
            self.answers.event_created(event, capacity, waitlist)

    def _hot_event(self) -> str:
        return self.rng.choice(self.answers.recent_events(HOT_EVENTS))

    def register(self) -> None:
        user, event = self.rng.choice(self.users), self._hot_event()
        before = self.answers.member(event, user)
        answer, ok = self._send("register", "POST", f"/events/{event}/registrations",
                                json={"userId": user},
                                headers={"Idempotency-Key": uuid.uuid4().hex})
        if answer is None or not ok:
            self.answers.told(event, user, before.state, certain=False)
            return
        error = answer.json().get("error") if answer.status_code >= 400 else None
        member = before.certain and before.state is not None
        stranger = before.certain and before.state is None
        if answer.status_code == 201:
            if member:
                self.answers.fail(f"register: {user} at {event} was told {before.state}, "
                                  "then registered again")
            self.answers.told(event, user, answer.json()["status"])
        elif error == "AlreadyRegisteredError" and stranger:
            self.answers.fail(f"register: {user} at {event} is no member as acknowledged, "
                              "but was told AlreadyRegisteredError")
        elif error == "EventFullError" and member:
            self.answers.fail(f"register: {user} at {event} was told {before.state}, then "
                              "EventFullError")

    def unregister(self) -> None:
        mine = [(e, u) for e, u, m in self.answers.memberships_of(set(self.users))
                if m.state is not None]
        if mine and self.rng.random() < 0.85:
            event, user = self.rng.choice(mine)
        else:
            event, user = self._hot_event(), self.rng.choice(self.users)
        before = self.answers.member(event, user)
        answer, ok = self._send("unregister", "DELETE",
                                f"/events/{event}/registrations/{user}",
                                headers={"Idempotency-Key": uuid.uuid4().hex})
        if answer is None or not ok:
            self.answers.told(event, user, before.state, certain=False)
            return
        if answer.status_code == 204:
            if before.certain and before.state is None:
                self.answers.fail(f"unregister: {user} at {event} is no member as "
                                  "acknowledged, but was unregistered")
            self.answers.told(event, user, None)
        elif before.certain and before.state is not None:
            self.answers.fail(f"unregister: {user} at {event} was told {before.state}, then "
                              "NotRegisteredError")

    def read(self) -> None:
        user, event = self.rng.choice(self.users), self._hot_event()
        kind = self.rng.randrange(5)
        if kind == 0:
            self._send("get_event", "GET", f"/events/{event}")
        elif kind == 1:
            self._send("event_registrations", "GET", f"/events/{event}/registrations")
        elif kind == 2:
            self._send("get_user", "GET", f"/users/{user}")
        else:
            which = "registrations" if kind == 3 else "waitlists"
            for pause in (None, *LISTING_RECHECK_PAUSES):
                if pause is not None:
                    self.load._stop.wait(pause)
                answer, ok = self._send(f"user_{which}", "GET", f"/users/{user}/{which}")
                if answer is None or not ok:
                    return
                wrong = self._contradictions(user, which, {e["eventId"] for e in answer.json()})
                if not wrong:
                    return
            for what in wrong:
                self.answers.fail(f"GET /users/{user}/{which}: {what}")

    def _contradictions(self, user: str, which: str, listed: set[str]) -> list[str]:
        """The user's events as listed against what this client (their only one) was told:
        a registration stays one; a waitlist entry may have been promoted meanwhile."""
        must: Callable[[str | None], bool]
        if which == "registrations":
            must, never = (lambda s: s == REGISTERED), (lambda s: s is None)
        else:
            must, never = (lambda s: False), (lambda s: s != WAITLISTED)
        wrong = []
        for event, _, told in self.answers.memberships_of({user}):
            if not told.certain:
                continue
            if must(told.state) and event not in listed:
                wrong.append(f"{event} missing, acknowledged {told.state}")
            if never(told.state) and event in listed:
                wrong.append(f"{event} listed, acknowledged {told.state or 'not a member'}")
        return wrong
