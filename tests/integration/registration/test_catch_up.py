"""Going back from dynamodb_only (`migrate registration catch-up`): MySQL brought up to
the seed's table while the service keeps serving, no acknowledged write lost or applied
twice, the flags back in dynamodb_read, reconcile without drift."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration.cli import cli
from migration.registration import REGISTRATION_CONTRACT
from migration.registration.catch_up import SWITCH_ORDER, catch_up
from migration.registration.dual_write import RegistrationApp
from migration.registration.errors import RegistrationError
from migration.registration.models import Event, RegistrationStatus, User
from migration.settings import Settings
from migration.sync.phases import Phase
from tests.integration.registration.harness import set_phase
from tests.integration.registration.test_migration import migrate

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def _mysql(app: RegistrationApp) -> dict[str, Any]:
    with app.engine.connect() as conn:
        return {
            "users": sorted(conn.execute(sa.text("SELECT user_id, name FROM users")).all()),
            "events": sorted(conn.execute(sa.text(
                "SELECT event_id, registered_count, waitlist_count, next_position FROM events"))
                .all()),
            "registrations": sorted(conn.execute(sa.text(
                "SELECT event_id, user_id FROM registrations")).all()),
            "waitlist": sorted(conn.execute(sa.text(
                "SELECT event_id, user_id, position FROM waitlist_entries")).all())}


def _dynamodb(app: RegistrationApp) -> dict[str, Any]:
    items = app.ddb.call("Scan", TableName=app.fence.table, ConsistentRead=True)["Items"]
    out: dict[str, list[Any]] = {"users": [], "events": [], "registrations": [], "waitlist": []}
    for i in items:
        kind = i["entity_type"]["S"]
        if kind == "user":
            out["users"].append((i["user_id"]["S"], i["name"]["S"]))
        elif kind == "event":
            out["events"].append((i["event_id"]["S"], int(i["registered_count"]["N"]),
                                  int(i["waitlist_count"]["N"]), int(i["next_position"]["N"])))
        elif kind == "registration":
            out["registrations"].append((i["event_id"]["S"], i["user_id"]["S"]))
        elif kind == "waitlist":
            out["waitlist"].append((i["event_id"]["S"], i["user_id"]["S"],
                                    int(i["position"]["N"])))
    return {k: sorted(v) for k, v in out.items()}


def _counts_equal_rows(app: RegistrationApp) -> None:
    with app.engine.connect() as conn:
        wrong = conn.execute(sa.text(
            "SELECT e.event_id FROM events e WHERE registered_count <> (SELECT COUNT(*) FROM "
            "registrations r WHERE r.event_id = e.event_id) OR waitlist_count <> (SELECT "
            "COUNT(*) FROM waitlist_entries w WHERE w.event_id = e.event_id) OR "
            "registered_count > capacity")).all()
    assert wrong == []


def _env(settings: Settings) -> dict[str, str | None]:
    return {"MIGRATE_CONTRACT": str(REGISTRATION_CONTRACT),
            "MIGRATE_MYSQL_URL": settings.sqlalchemy_url().render_as_string(hide_password=False),
            "MIGRATE_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
            "MIGRATE_TABLE_PREFIX": settings.table_prefix}


def _phases(app: RegistrationApp) -> set[Phase]:
    app.flags.invalidate()
    return {app.flags.flag(name).phase for name in SWITCH_ORDER}


def test_catch_up_brings_mysql_level_with_dynamodb_and_goes_back(
        open_app: Callable[[str], RegistrationApp], registration_settings: Settings,
        tmp_path: Path) -> None:
    app = open_app("dual_write")
    for n in range(9):
        app.users.create(User(f"u{n}", f"User {n}"))
    app.events.create(Event("before", "Before", 2, waitlist_enabled=True))
    for user in ("u0", "u1", "u2", "u3"):
        app.events.register("before", user)

    set_phase(app, "dynamodb_only")
    app.users.create(User("late", "Late"))
    app.events.create(Event("after", "After", 2, waitlist_enabled=True))
    for user in ("u4", "u5", "u6", "u7", "u0", "late"):
        app.events.register("after", user)
    assert app.events.unregister("after", "u4") == "u6"  # promoted
    app.events.unregister("after", "u7")  # leaves the line
    assert app.events.unregister("before", "u0") == "u2"
    app.events.unregister("after", "u0")
    app.events.register("after", "u0")  # joins again, further down the line
    assert _mysql(app) != _dynamodb(app)

    refused = CliRunner().invoke(cli, ["flags", "set", "event", "dynamodb_read"],
                                 env=_env(registration_settings))
    assert refused.exit_code == 2 and "migrate registration catch-up" in refused.stderr
    output = migrate(registration_settings, "registration", "catch-up",
                     "--settle-seconds", "0").output
    assert re.fullmatch(r"caught up: \d+ items copied, 2 rows without an item deleted, \d+ stream "
                        r"records applied; outbox counter above version \d+; writes paused \d+ ms; "
                        r"back in dynamodb_read: "
                        r"registration, waitlist, user, event\n", output), output
    assert _phases(app) == {Phase.DYNAMODB_READ}
    assert _mysql(app) == _dynamodb(app)
    _counts_equal_rows(app)
    assert ("after", "u0", 5) in _mysql(app)["waitlist"]
    again = CliRunner().invoke(cli, ["registration", "catch-up"], env=_env(registration_settings))
    assert again.exit_code == 2 and again.stderr.startswith(
        "error: registration catch-up failed: nothing to catch up"), again.stderr
    reconciled = migrate(registration_settings, "reconcile", "--quiet", "--fail-on-drift",
                         "--report-dir", str(tmp_path))
    assert "no drift" in reconciled.output
    # Back on MySQL's path: writes dual-write again, and stay level.
    app.events.unregister("after", "u5")
    app.events.register("before", "u8")
    assert _mysql(app) == _dynamodb(app)
    _counts_equal_rows(app)


def _held(app: RegistrationApp, thread: dict[str, threading.Event]) -> None:
    """Holds the first fenced transaction of each named thread until its `go` is set;
    sets `refused` when the thread reads the fence (its write was refused by it)."""
    sent: set[str] = set()

    def hook(operation: str, params: dict[str, Any]) -> None:
        name = threading.current_thread().name
        if name not in thread:
            return
        if operation == "TransactWriteItems" and name not in sent:
            sent.add(name)
            thread[name].wait(timeout=60)
        if operation == "GetItem" and params["Key"].get("id", {}).get("S", "").startswith(
                "fence#"):
            thread[f"{name} refused"].set()

    app.ddb.before.append(hook)


def test_help() -> None:
    result = CliRunner().invoke(cli, ["registration", "catch-up", "-h"])
    assert result.exit_code == 0 and "Go back from dynamodb_only" in result.output


def test_a_write_racing_the_close_lands_once(
        open_app: Callable[[str], RegistrationApp], registration_settings: Settings) -> None:
    app = open_app("dynamodb_only")
    for user in ("before", "after", "other"):
        app.users.create(User(user, user.title()))
    app.events.create(Event("e", "E", 5, waitlist_enabled=True))
    app.events.register("e", "other")
    gates = {name: threading.Event() for name in
             ("before", "after", "before refused", "after refused")}
    _held(app, gates)
    answers: dict[str, Any] = {}

    def write(user: str) -> None:
        try:
            answers[user] = app.events.register("e", user)
        except BaseException as err:  # noqa: BLE001 - asserted below
            answers[user] = err

    writers = [threading.Thread(target=write, args=(u,), name=u) for u in ("before", "after")]
    for t in writers:
        t.start()

    def drained() -> None:  # "before" commits after the stream was drained once, before the close
        gates["before"].set()
        writers[0].join(timeout=60)

    def closed() -> None:  # "after" is sent once the fence is closed: refused, then it waits
        gates["after"].set()
        assert gates["after refused"].wait(timeout=60)

    summary = catch_up(registration_settings, settle_seconds=0.0,
                       hooks={"drained": drained, "closed": closed})
    writers[1].join(timeout=60)
    assert not gates["before refused"].is_set(), "committed before the close"
    assert {u: a.status for u, a in answers.items()} == \
        {"before": RegistrationStatus.REGISTERED, "after": RegistrationStatus.REGISTERED}
    assert _phases(app) == {Phase.DYNAMODB_READ}
    mysql = _mysql(app)
    assert mysql["registrations"] == [("e", "after"), ("e", "before"), ("e", "other")]
    assert mysql["events"] == [("e", 3, 0, 1)]
    assert mysql == _dynamodb(app)
    assert summary.records_applied > summary.records_before_close, "the final drain applied it"
    _counts_equal_rows(app)


def test_clients_keep_registering_during_the_catch_up(
        open_app: Callable[[str], RegistrationApp], registration_settings: Settings) -> None:
    app = open_app("dynamodb_only")
    writers, per_writer, capacity = 4, 40, 6
    users = [[f"w{w}u{n:02d}" for n in range(per_writer)] for w in range(writers)]
    table = app.fence.table
    flat = [u for group in users for u in group]
    for start in range(0, len(flat), 25):
        app.ddb.call("BatchWriteItem", RequestItems={table: [
            {"PutRequest": {"Item": {"PK": {"S": f"USER#{u}"}, "SK": {"S": "METADATA"},
                                     "_owner": {"S": f"User#{u}"}, "entity_type": {"S": "user"},
                                     "user_id": {"S": u}, "name": {"S": u}}}}
            for u in flat[start:start + 25]]})
    events = [f"ev{n}" for n in range(3)]
    for event in events:
        app.events.create(Event(event, event, capacity, waitlist_enabled=event != "ev2"))
    acknowledged: list[tuple[str, str]] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    progress = threading.Semaphore(0)
    fenced = threading.Event()
    done = threading.Event()

    def hook(operation: str, params: dict[str, Any]) -> None:
        if operation == "GetItem" and params["Key"].get("id", {}).get("S", "").startswith(
                "fence#"):
            fenced.set()

    app.ddb.before.append(hook)

    def client(w: int) -> None:
        for n, user in enumerate(users[w]):
            if done.is_set() and n % 10 == 9:
                return  # a few writes after the switch back, then stop
            event = events[(w + n) % len(events)]
            try:
                app.events.register(event, user)
                acknowledged.append((event, user))
            except RegistrationError as err:  # ev2 is full and has no waitlist
                refused.append(f"{event} {user}: {type(err).__name__}")
            except BaseException as err:  # noqa: BLE001 - asserted below
                errors.append(err)
                return
            progress.release()

    threads = [threading.Thread(target=client, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()

    def writes_go_on() -> None:  # copied: more writes land before the stream is drained
        for _ in range(writers * 2):
            assert progress.acquire(timeout=60)

    held = [0.0]

    def wait_for_a_fenced_write() -> None:  # not the catch-up's own pause: taken off below
        started = time.perf_counter()
        assert fenced.wait(timeout=60), "no write met the closed fence"
        held[0] = time.perf_counter() - started

    summary = catch_up(registration_settings, settle_seconds=0.0,
                       hooks={"copied": writes_go_on, "closed": wait_for_a_fenced_write})
    done.set()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert _phases(app) == {Phase.DYNAMODB_READ}
    mysql = _mysql(app)
    members = {(e, u) for e, u in mysql["registrations"]} | \
        {(e, u) for e, u, _ in mysql["waitlist"]}
    assert set(acknowledged) <= members, set(acknowledged) - members
    assert len(members) == len(acknowledged)
    assert all(reason.endswith("EventFullError") for reason in refused)
    assert mysql == _dynamodb(app)
    _counts_equal_rows(app)
    print(f"catch-up: {summary.items_copied} items copied, {summary.records_applied} stream "
          f"records applied, writes paused {(summary.paused_seconds - held[0]) * 1000:.0f} ms; "
          f"{len(acknowledged)} registrations acknowledged")
