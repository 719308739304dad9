"""User registration under contention, against DynamoDB Local (never moto: only a real
engine proves that its transactions serialise).

32 threads register the same email at the same moment: exactly one wins, every
other gets the typed "already exists" error on the EmailLookup put, and no User or
EmailLookup item is left without its partner. Then registrations and deletions of
a few emails race, and the two tables must still agree.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from migration.contract.load import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.cross_table import CrossTableService
from migration.dynamodb.schema import apply
from migration.dynamodb.transactions import TransactionConditionFailed, TransactionItemExists

pytestmark = pytest.mark.dynamodb

SCHEMA = Path(__file__).parents[1] / "fixtures" / "mcp-schemas" / "user_registration_schema.json"
THREADS = 32


def scan(ddb: DynamoDB, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"TableName": ddb.table_name(table), "ConsistentRead": True}
    while True:
        response = ddb.call("Scan", **request)
        items += response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def assert_consistent(ddb: DynamoDB) -> tuple[dict[str, str], dict[str, str]]:
    """Every User has the EmailLookup of its email pointing back at it, and every
    EmailLookup points at a User with that email. Returns (user -> email, email -> user)."""
    users = {i["user_id"]["S"]: i["email"]["S"] for i in scan(ddb, "Users")}
    lookups = {i["email"]["S"]: i["user_id"]["S"] for i in scan(ddb, "EmailLookup")}
    assert {lookups.get(email) for email in users.values()} <= set(users), "a User lacks its lookup"
    for user_id, email in users.items():
        assert lookups.get(email) == user_id, f"User {user_id} has no EmailLookup for {email}"
    for email, user_id in lookups.items():
        assert users.get(user_id) == email, f"EmailLookup {email} points at no User {user_id}"
    return users, lookups


def registration(user_id: str, email: str) -> dict[str, Any]:
    return {"user": {"user_id": user_id, "email": email, "full_name": user_id,
                     "created_at": "2024-05-01T00:00:00Z"},
            "email_lookup": {"email": email, "user_id": user_id}}


def test_32_threads_register_the_same_email(ddb: DynamoDB) -> None:
    contract = load_contract(SCHEMA)
    apply(contract, ddb)
    service = CrossTableService(contract, ddb, max_attempts=12)
    barrier = threading.Barrier(THREADS)
    outcomes: dict[str, Any] = {}
    lock = threading.Lock()

    def attempt(n: int) -> None:
        user_id = f"user-{n:02d}"
        barrier.wait()
        try:
            result: Any = service.run("register_user", **registration(user_id, "same@example.com"))
        except Exception as err:  # recorded and asserted on below
            result = err
        with lock:
            outcomes[user_id] = result

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == THREADS

    winners = [u for u, r in outcomes.items() if r is True]
    assert len(winners) == 1, f"winners: {winners}"
    losers = {u: r for u, r in outcomes.items() if r is not True}
    kinds = Counter(type(r).__name__ for r in losers.values())
    assert kinds == Counter({"TransactionItemExists": THREADS - 1}), kinds
    for err in losers.values():
        assert isinstance(err, TransactionItemExists)
        assert (err.action.index, err.action.entity) == (1, "EmailLookup")

    users, lookups = assert_consistent(ddb)
    assert users == {winners[0]: "same@example.com"}
    assert lookups == {"same@example.com": winners[0]}


def test_concurrent_deletes_and_registrations_keep_the_tables_consistent(ddb: DynamoDB) -> None:
    contract = load_contract(SCHEMA)
    apply(contract, ddb)
    service = CrossTableService(contract, ddb, max_attempts=12)
    emails = [f"e{n}@example.com" for n in range(4)]
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []
    tally: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(12):
            email = rng.choice(emails)
            # A user id belongs to one email for good, so a delete names a real pair.
            user_id = f"{email}:{rng.randrange(3)}"
            try:
                if rng.random() < 0.55:
                    service.run("register_user", **registration(user_id, email))
                    outcome = "registered"
                else:
                    service.run("delete_user_with_email", user_id=user_id, email=email)
                    outcome = "deleted"
            except TransactionConditionFailed:
                outcome = "refused"
            except Exception as err:  # anything else fails the test below
                with lock:
                    errors.append(err)
                return
            with lock:
                tally[outcome] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert tally["registered"] and tally["deleted"] and tally["refused"], tally
    users, lookups = assert_consistent(ddb)
    assert len(set(users.values())) == len(users)  # one User per email at most
