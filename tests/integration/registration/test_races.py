"""Races through the real HTTP server (uvicorn on a free port): 64 clients released at
once by a barrier register for one event of capacity 10, then the 10 registered leave
at once; in a MySQL phase (dual_write: the event's row lock, DynamoDB following) and in
dynamodb_only (conditional transactions alone)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa

from migration.registration.dual_write import RegistrationApp
from migration.registration.dynamodb import user_key
from migration.registration.models import Event, User
from migration.registration.server import running as serving

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

CLIENTS = 64
CAPACITY = 10


def at_once(count: int, request: Callable[[httpx.Client, int], httpx.Response]
            ) -> list[httpx.Response]:
    """`count` clients, each on its own connection, released together by a barrier."""
    barrier = threading.Barrier(count)
    answers: list[httpx.Response | None] = [None] * count
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            with httpx.Client(timeout=120) as http:
                barrier.wait()
                answers[n] = request(http, n)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return [a for a in answers if a is not None]


@pytest.mark.parametrize("phase", ["dual_write", "dynamodb_only"])
def test_64_clients_one_event_of_capacity_10(open_app: Callable[[str], RegistrationApp],
                                             phase: str) -> None:
    app = open_app(phase)
    users = [f"user{n:02d}" for n in range(CLIENTS)]
    _add_users(app, users, phase)
    app.events.create(Event("race", "The race", CAPACITY, waitlist_enabled=True))
    with serving(app) as base:
        answers = at_once(CLIENTS, lambda http, n: http.post(
            f"{base}/events/race/registrations", json={"userId": users[n]},
            headers={"Idempotency-Key": f"race-{n}"}))
        assert [a.status_code for a in answers] == [201] * CLIENTS, \
            [a.text for a in answers if a.status_code != 201]
        statuses = Counter(a.json()["status"] for a in answers)
        assert statuses == {"registered": CAPACITY, "waitlisted": CLIENTS - CAPACITY}
        event = httpx.get(f"{base}/events/race").json()
        assert (event["registeredCount"], event["waitlistCount"]) == (CAPACITY, CLIENTS - CAPACITY)
        registered = httpx.get(f"{base}/events/race/registrations").json()
        waitlist = app.events.waitlisted_users("race")
        assert len(registered) == CAPACITY and len(waitlist) == CLIENTS - CAPACITY
        assert set(registered) | set(waitlist) == set(users)
        _check_items(app, registered, waitlist)

        # The ten registered leave at once: each place goes to one waitlisted user, in
        # the line's order, and nobody is promoted twice.
        left = at_once(CAPACITY, lambda http, n: http.delete(
            f"{base}/events/race/registrations/{registered[n]}"))
        assert [a.status_code for a in left] == [204] * CAPACITY
        now = httpx.get(f"{base}/events/race/registrations").json()
        assert sorted(now) == sorted(waitlist[:CAPACITY])
        assert app.events.waitlisted_users("race") == waitlist[CAPACITY:]
        event = httpx.get(f"{base}/events/race").json()
        assert (event["registeredCount"], event["waitlistCount"]) == \
            (CAPACITY, CLIENTS - 2 * CAPACITY)
        _check_items(app, now, waitlist[CAPACITY:])


def _add_users(app: RegistrationApp, users: list[str], phase: str) -> None:
    """The users the clients are, in the store the phase reads them from (in bulk: they
    are not what races)."""
    if phase != "dynamodb_only":
        with app.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (user_id, name) VALUES (:u, :n)"),
                         [{"u": u, "n": u.title()} for u in users])
        return
    table = app.ddb.table_name("registration-system")
    for start in range(0, len(users), 25):
        app.ddb.call("BatchWriteItem", RequestItems={table: [
            {"PutRequest": {"Item": {**user_key(u), "entity_type": {"S": "user"},
                                     "user_id": {"S": u}, "name": {"S": u.title()}}}}
            for u in users[start:start + 25]]})
    assert app.users.get(users[-1]) == User(users[-1], users[-1].title())


def _check_items(app: RegistrationApp, registered: list[str], waitlist: list[str]) -> None:
    """DynamoDB holds exactly these members under the seed's keys, counts equal to them."""
    items = app.ddb.call("Query", TableName=app.ddb.table_name("registration-system"),
                         KeyConditionExpression="PK = :pk",
                         ExpressionAttributeValues={":pk": {"S": "EVENT#race"}},
                         ConsistentRead=True)["Items"]
    sks = sorted(i["SK"]["S"] for i in items)
    assert [s for s in sks if s.startswith("REG#")] == sorted(f"REG#{u}" for u in registered)
    waits = [s for s in sks if s.startswith("WAIT#")]
    assert [w.split("#")[2] for w in waits] == waitlist  # key order is the line's order
    assert all(len(w.split("#")[1]) == 5 for w in waits)
    [meta] = [i for i in items if i["SK"]["S"] == "METADATA"]
    assert int(meta["registered_count"]["N"]) == len(registered)
    assert int(meta["waitlist_count"]["N"]) == len(waitlist)


def test_retried_and_doubled_requests_register_once_in_dynamodb_only(
        open_app: Callable[[str], RegistrationApp]) -> None:
    app = open_app("dynamodb_only")
    _add_users(app, ["first", "twin"], "dynamodb_only")
    app.events.create(Event("small", "Small", 1, waitlist_enabled=True))
    with serving(app) as base:
        # One request retried 8 times at once (same Idempotency-Key): one answer, one member.
        retried = at_once(8, lambda http, n: http.post(
            f"{base}/events/small/registrations", json={"userId": "first"},
            headers={"Idempotency-Key": "k-first"}))
        assert {(a.status_code, a.json()["status"]) for a in retried} == {(201, "registered")}
        assert len({a.json()["message"] for a in retried}) == 1
        # The same user asking 8 times at once with different keys, on a full event: one
        # place in the line, the other answers say so.
        doubled = at_once(8, lambda http, n: http.post(
            f"{base}/events/small/registrations", json={"userId": "twin"},
            headers={"Idempotency-Key": f"k-twin-{n}"}))
        assert sorted(a.status_code for a in doubled) == [201] + [400] * 7
        assert app.events.waitlisted_users("small") == ["twin"]
        event = httpx.get(f"{base}/events/small").json()
        assert (event["registeredCount"], event["waitlistCount"]) == (1, 1)
        # A key reused for another request is refused, not answered with the first answer.
        reused = httpx.delete(f"{base}/events/small/registrations/twin",
                              headers={"Idempotency-Key": "k-first"})
        assert (reused.status_code, reused.json()["error"]) == \
            (400, "IdempotencyKeyReusedError")
