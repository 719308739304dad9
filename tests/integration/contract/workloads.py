"""The applications the draft tests study: the registration service's schema (a fixture
DDL) and the shop, each with a workload of known statements, and the checks every drafted
contract must pass (validate, schema plan/apply, estimate, backfill, reconcile)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.backfill.run import BackfillOptions, backfill, estimate
from migration.commands import validate_contracts
from migration.contract import load_contract
from migration.contract.model import AccessPattern, Entity
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply, plan
from migration.settings import Settings
from migration.shop.repositories import MySQLShop
from reconcile.run import ReconcileOptions, reconcile

FIXTURES = Path(__file__).parents[2] / "fixtures"
REGISTRATION_DDL = FIXTURES / "registration" / "schema.sql"

# What the registration "application" runs in one workload, and how often.
REGISTRATION_QUERIES: dict[str, tuple[str, int]] = {
    "get_event": ("SELECT * FROM events WHERE event_id = :event", 30),
    "get_user": ("SELECT user_id, name FROM users WHERE user_id = :user", 20),
    "user_registrations": ("SELECT event_id, registered_at FROM registrations "
                           "WHERE user_id = :user", 15),
    "event_registrations": ("SELECT user_id FROM registrations WHERE event_id = :event", 10),
    "next_waiting": ("SELECT user_id, position FROM waitlist_entries WHERE event_id = :event "
                     "ORDER BY position LIMIT 1", 6),
    "count_up": ("UPDATE events SET registered_count = registered_count + 1 "
                 "WHERE event_id = :event", 5),
    "register": ("INSERT INTO registrations (event_id, user_id) VALUES (:event, :new_user)", 4),
    "unregister": ("DELETE FROM registrations WHERE event_id = :event AND user_id = :new_user", 4),
    # An OR: no key design serves it, so the draft must say so.
    "busy_or_big": ("SELECT * FROM events WHERE status = :status OR capacity > :capacity", 3),
}


def create_registration(engine: Engine, *, extras: bool = False) -> None:
    """The registration schema; `extras` adds a table without a primary key and a table
    with a DECIMAL(65,30) column (both need a note in a draft)."""
    statements = [s for s in REGISTRATION_DDL.read_text(encoding="utf-8").split(";")
                  if "CREATE" in s]
    if extras:
        statements += [
            "CREATE TABLE audit_log (happened_at DATETIME(6) NOT NULL, message TEXT NOT NULL)",
            "CREATE TABLE ledger (entry_id INT NOT NULL PRIMARY KEY, "
            "amount DECIMAL(65,30) NOT NULL, note VARCHAR(100) NULL)",
        ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def seed_registration(engine: Engine, *, users: int = 12, events: int = 4,
                      extras: bool = False) -> None:
    rng = random.Random(17)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (user_id, name) VALUES (:u, :n)"),
                     [{"u": f"user-{i}", "n": f"Ünïcode {i}"} for i in range(users)])
        conn.execute(sa.text(
            "INSERT INTO events (event_id, title, description, date, location, capacity, "
            "organizer, waitlist_enabled) VALUES (:e, :t, :d, :day, :l, :c, :o, :w)"),
            [{"e": f"event-{i}", "t": f"Event {i}", "d": None if i % 2 else "A long day",
              "day": "2025-06-0" + str(i + 1), "l": "Hall", "c": 3, "o": None, "w": i % 2 == 0}
             for i in range(events)])
        for i in range(events):
            chosen = rng.sample(range(users - 2), 5)  # the last two register in the workload
            conn.execute(sa.text("INSERT INTO registrations (event_id, user_id) VALUES (:e, :u)"),
                         [{"e": f"event-{i}", "u": f"user-{u}"} for u in chosen[:3]])
            conn.execute(sa.text("INSERT INTO waitlist_entries (event_id, user_id, position) "
                                 "VALUES (:e, :u, :p)"),
                         [{"e": f"event-{i}", "u": f"user-{u}", "p": p + 1}
                          for p, u in enumerate(chosen[3:])])
        if extras:
            conn.execute(sa.text("INSERT INTO audit_log (happened_at, message) "
                                 "VALUES (NOW(6), 'seeded')"))
            conn.execute(sa.text("INSERT INTO ledger (entry_id, amount, note) VALUES "
                                 "(1, '12345678901234567890123456789012345.123456789012345678901234567890', "
                                 "'precise'), (2, '-0.000000000000000000000000000001', NULL)"))


def registration_workload(engine: Engine, *, users: int = 12, events: int = 4
                          ) -> Callable[[], None]:
    """A callable that runs REGISTRATION_QUERIES (each its number of times) on `engine`."""

    def run() -> None:
        rng = random.Random(4)
        with engine.connect() as conn:
            for name, (sql, times) in REGISTRATION_QUERIES.items():
                for k in range(times):
                    params: dict[str, Any] = {
                        "event": f"event-{rng.randrange(events)}",
                        "user": f"user-{rng.randrange(users)}",
                        "new_user": f"user-{(k % 2) + users - 2}" if name in ("register",
                                                                             "unregister")
                        else None,
                        "status": "active", "capacity": 2}
                    if name == "register":
                        params["event"] = f"event-{k}"
                    if name == "unregister":
                        params["event"] = f"event-{k}"
                    conn.execute(sa.text(sql), {k2: v for k2, v in params.items()
                                                if f":{k2}" in sql})
                    conn.commit()

    return run


def shop_workload(engine: Engine, *, users: int) -> Callable[[], None]:
    """The shop's own MySQL repositories at work (reads of every entity, a join)."""

    def run() -> None:
        rng = random.Random(3)
        with engine.begin() as conn:
            shop = MySQLShop.on(conn)
            for _ in range(20):
                user_id = rng.randint(1, users)
                user = shop.users.get(user_id)
                if user is not None:
                    shop.users.get_by_email(user.email)
                shop.orders.list_for_user(user_id)
                shop.carts.list_items(user_id)
            for _ in range(6):
                shop.products.list_by_category(rng.randint(1, 5))
                shop.products.get_product(rng.randint(1, 10))
                shop.categories.list_children(None)
                shop.categories.list_children(1)
            conn.execute(sa.text(
                "SELECT c.quantity, p.name, p.price FROM shopping_carts c "
                "JOIN products p ON p.id = c.product_id WHERE c.user_id = 3"))

    return run


def pattern(entity: Entity, operation: str, index: bool, *params: str) -> AccessPattern:
    """The entity's one pattern of that operation, on an index or not, with those
    parameters first."""
    found = [p for p in entity.access_patterns if p.operation == operation
             and (p.index_name is not None) == index
             and tuple(x.name for x in p.parameters[:len(params)]) == params]
    assert len(found) == 1, [(p.name, p.operation, p.index_name) for p in entity.access_patterns]
    return found[0]


def calls(p: AccessPattern) -> int:
    return int(p.description.split(" call(s)")[0])


def times(name: str) -> int:
    return REGISTRATION_QUERIES[name][1]


def prove_contract(path: Path, settings: Settings, engine: Engine) -> dict[str, Any]:
    """Everything the README promises of a draft: `contract validate` passes, `schema
    plan` lists what to create and nothing after `schema apply`, `estimate` prices every
    entity, and a backfill then reconcile find no drift. Returns the evidence."""
    report, = validate_contracts([path])
    assert report.valid, report.summary()
    contract = load_contract(path)
    ddb = DynamoDB(settings)
    before = plan(contract, ddb)
    created = [c for c in before.changes if c.operation == "CreateTable"]
    assert len(created) == len(contract.tables), before.changes
    apply(contract, ddb)
    assert plan(contract, ddb).is_empty
    priced = estimate(contract, engine, ddb)
    assert {row["entity"] for row in priced} == {e.name for e in contract.source_entities()}
    summary = backfill(contract, engine, ddb, BackfillOptions(batch_size=50, workers=2))
    assert summary.exit_code == 0, summary.text()
    result = reconcile(contract, engine, ddb, ReconcileOptions(settle_seconds=0.1))
    assert not result.has_drift, result.totals
    assert result.totals["rows"] > 0
    assert result.totals["expected_items"] == result.totals["actual_items"]
    return {"estimate": priced, "backfill": summary, "reconcile": result}
