"""The transaction builder against DynamoDB Local: every kind of action across tables,
atomicity when one condition fails, typed errors naming the failing action, one
idempotency token per commit (kept on retries), and limits refused before any call."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from migration.contract.load import load_contract
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.repository import Repositories
from migration.dynamodb.schema import apply
from migration.dynamodb.transactions import (
    DuplicateItemInTransaction,
    EntityTransaction,
    MixedTransaction,
    TransactionBuilder,
    TransactionConditionFailed,
    TransactionItemExists,
    TransactionTooLarge,
)
from migration.errors import CancellationReason, DynamoDBUnavailable, TransactionCancelled

pytestmark = pytest.mark.dynamodb

FIXTURES = Path(__file__).parents[2] / "fixtures"


@pytest.fixture(scope="module")
def registration(module_ddb: DynamoDB) -> Contract:
    contract = load_contract(FIXTURES / "mcp-schemas" / "user_registration_schema.json")
    apply(contract, module_ddb)
    return contract


@pytest.fixture(scope="module")
def library(module_ddb: DynamoDB) -> Contract:
    contract = load_contract(FIXTURES / "runtime" / "library.yaml")
    apply(contract, module_ddb)
    return contract


def user_item(user_id: str, email: str) -> dict[str, Any]:
    return {"pk": {"S": f"USER#{user_id}"}, "user_id": {"S": user_id}, "email": {"S": email},
            "full_name": {"S": user_id}, "created_at": {"S": "2024-05-01"}, "_type": {"S": "USER"}}


def lookup_item(email: str, user_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"EMAIL#{email}"}, "email": {"S": email}, "user_id": {"S": user_id},
            "_type": {"S": "EMAIL_LOOKUP"}}


def key(text: str) -> dict[str, Any]:
    return {"pk": {"S": text}}


def test_wire_level_actions_across_tables(module_ddb: DynamoDB, registration: Contract) -> None:
    TransactionBuilder(module_ddb, registration) \
        .create("Users", user_item("w1", "w1@x")) \
        .create("EmailLookup", lookup_item("w1@x", "w1")).commit()
    tx = TransactionBuilder(module_ddb, registration)
    tx.update("Users", key("USER#w1"), set_values={"full_name": {"S": "Wanda"}},
              condition="attribute_exists(pk) AND email = :email", values={"email": "w1@x"})
    tx.condition_check("EmailLookup", key("EMAIL#w1@x"), "user_id = :u", values={"u": "w1"})
    assert tx.commit() == []
    user, lookup = TransactionBuilder(module_ddb, registration) \
        .get("Users", key("USER#w1")).get("EmailLookup", key("EMAIL#w1@x"), projection=["user_id"]) \
        .commit()
    assert user is not None and user["full_name"] == {"S": "Wanda"}
    assert lookup == {"user_id": {"S": "w1"}}


def test_a_failed_condition_cancels_everything_and_names_the_action(module_ddb: DynamoDB,
                                                                   registration: Contract) -> None:
    TransactionBuilder(module_ddb, registration).create("Users", user_item("w2", "w2@x")).commit()
    tx = TransactionBuilder(module_ddb, registration)
    tx.update("Users", key("USER#w2"), set_values={"full_name": {"S": "changed"}})
    tx.condition_check("EmailLookup", key("EMAIL#w2@x"), "attribute_exists(pk)")
    with pytest.raises(TransactionConditionFailed) as caught:
        tx.commit()
    err = caught.value
    assert (err.action.index, err.action.op, err.action.table) == (1, "ConditionCheck", "EmailLookup")
    assert err.action.key == key("EMAIL#w2@x") and err.attempts == 1
    assert "action 1 (ConditionCheck EmailLookup (pk='EMAIL#w2@x'))" in str(err)
    assert isinstance(err, TransactionCancelled) and len(err.reasons) == 2
    user = TransactionBuilder(module_ddb, registration).get("Users", key("USER#w2")).commit()[0]
    assert user is not None and user["full_name"] == {"S": "w2"}  # the update did not happen


def test_a_failed_create_returns_the_existing_item(module_ddb: DynamoDB, registration: Contract) -> None:
    TransactionBuilder(module_ddb, registration).create("EmailLookup", lookup_item("w3@x", "w3")).commit()
    with pytest.raises(TransactionItemExists) as caught:
        TransactionBuilder(module_ddb, registration).create("EmailLookup", lookup_item("w3@x", "other")) \
            .commit()
    assert caught.value.action.create and caught.value.stored_item is not None
    assert caught.value.stored_item["user_id"] == {"S": "w3"}


def test_conflicts_are_retried_with_the_same_token(module_ddb: DynamoDB, registration: Contract) -> None:
    tokens: list[str] = []
    conflicts = iter([True, True])

    def conflict_twice(operation: str, params: dict[str, Any]) -> None:
        if operation != "TransactWriteItems":
            return
        tokens.append(params.get("_json", params)["ClientRequestToken"])
        if next(conflicts, False):
            raise TransactionCancelled(operation, "conflict", [
                CancellationReason(0, "TransactionConflict", "busy"), CancellationReason(1, "None")])

    module_ddb.before.append(conflict_twice)
    try:
        TransactionBuilder(module_ddb, registration, base_delay=0.001) \
            .create("Users", user_item("w4", "w4@x")) \
            .create("EmailLookup", lookup_item("w4@x", "w4")).commit()
        TransactionBuilder(module_ddb, registration).delete("EmailLookup", key("EMAIL#w4@x")).commit()
    finally:
        module_ddb.before.remove(conflict_twice)
    assert len(tokens) == 4 and len(set(tokens[:3])) == 1 and tokens[3] != tokens[0]


def test_a_lost_answer_is_not_applied_twice(module_ddb: DynamoDB, library: Contract) -> None:
    # The commit succeeds but its answer is "lost"; the choke point retries with the
    # same token and DynamoDB answers from its idempotency cache.
    books = Repositories(library, module_ddb)["Book"]
    books.put({"isbn": "t1", "name": "Tehanu", "author": "x", "genre": "y", "year": 1990,
               "status": "AVAILABLE"})
    lost = iter([True])

    def lose_answer(operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        if operation == "TransactWriteItems" and next(lost, False):
            raise DynamoDBUnavailable(operation, "ConnectionClosedError", "answer lost")

    module_ddb.after.append(lose_answer)
    try:
        EntityTransaction(library, module_ddb).update("Book", {"isbn": "t1"}, {"size": 250}).commit()
    finally:
        module_ddb.after.remove(lose_answer)
    assert books.get({"isbn": "t1"}).version == 2  # counted once, not twice


def test_entity_transaction(module_ddb: DynamoDB, library: Contract) -> None:
    repos = Repositories(library, module_ddb)
    member_id = "00000000-0000-0000-0000-0000000000aa"
    repos["Book"].put({"isbn": "t2", "name": "Tales", "author": "x", "genre": "y", "year": 2001,
                       "status": "AVAILABLE", "price": "5"})
    repos["Book"].put({"isbn": "t4", "name": "Gifts", "author": "x", "genre": "y", "year": 2004,
                       "status": "AVAILABLE"})
    repos["Loan"].put({"member_id": member_id, "isbn": "t9", "loaned_at": "2024-01-01",
                       "due_date": "2024-01-15", "returned": True})
    tx = EntityTransaction(library, module_ddb)
    tx.create({"member_id": member_id, "name": "Tess", "joined_at": "2024-01-01T00:00:00Z"},
              name="Member")
    tx.put(repos["Book"].models.full("Book")(isbn="t3", name="Voyage", author="x", genre="y",
                                             year=2002, status="AVAILABLE"))
    tx.update("Book", {"isbn": "t2"}, {"price": Decimal("6.5")}, condition="price < :limit",
              values={"limit": 10})
    tx.delete("Loan", {"member_id": member_id, "loaned_at": "2024-01-01", "isbn": "t9"},
              condition="returned = true")
    tx.condition_check("Book", {"isbn": "t4"}, "attribute_exists(PK)")
    assert len(tx) == 5
    tx.commit()
    got = EntityTransaction(library, module_ddb).get("Member", {"member_id": member_id}) \
        .get("Book", {"isbn": "t2"}).get("Book", {"isbn": "missing"}).commit()
    assert got[0].name == "Tess" and got[1].price == Decimal("6.5") and got[1].version == 2
    assert got[2] is None
    assert repos["Book"].get({"isbn": "t3"}).version == 1


def test_limits_are_refused_before_any_call(module_ddb: DynamoDB, registration: Contract) -> None:
    before = sum(module_ddb.calls.values())
    tx = TransactionBuilder(module_ddb, registration)
    tx.create("Users", user_item("z", "z@x"))
    with pytest.raises(DuplicateItemInTransaction, match="actions 0 and 1"):
        tx.delete("Users", key("USER#z"))
    with pytest.raises(MixedTransaction):
        tx.get("Users", key("USER#y"))
    big = TransactionBuilder(module_ddb, registration)
    for n in range(100):
        big.condition_check("Users", key(f"USER#{n}"), "attribute_exists(pk)")
    with pytest.raises(TransactionTooLarge, match="100"):
        big.condition_check("Users", key("USER#100"), "attribute_exists(pk)")
    assert sum(module_ddb.calls.values()) == before
