"""How a commit treats DynamoDB's answers (a scripted client stands in for DynamoDB,
raising the real botocore errors): conflicts and throttling retried with one token,
everything else turned at once into a typed error naming the failing action."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from migration.contract.load import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.transactions import (
    TransactionBuilder,
    TransactionConditionFailed,
    TransactionConflicted,
    TransactionFailed,
    TransactionInvalid,
    TransactionItemExists,
    TransactionThrottled,
)
from migration.errors import Terminal, Transient
from migration.settings import Settings

SCHEMA = Path(__file__).parents[2] / "fixtures" / "mcp-schemas" / "user_registration_schema.json"


def cancelled(*codes: str) -> ClientError:
    reasons = [{"Code": code, "Message": f"{code} happened"} if code != "None" else {"Code": "None"}
               for code in codes]
    if "ConditionalCheckFailed" in codes:
        reasons[codes.index("ConditionalCheckFailed")]["Item"] = {"pk": {"S": "EMAIL#taken"}}
    return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                        "CancellationReasons": reasons}, "TransactWriteItems")


class Scripted:
    """Answers TransactWriteItems from a script: an exception to raise, or a response."""

    def __init__(self, script: list[Any]):
        self.script: Iterator[Any] = iter(script)
        self.requests: list[dict[str, Any]] = []

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        self.requests.append(params)
        answer = next(self.script)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)


def commit(script: list[Any], max_attempts: int = 5) -> tuple[Scripted, Exception | None]:
    client = Scripted(script)
    ddb = DynamoDB(Settings(table_prefix="p_"), client=client, base_delay=0.0)
    tx = TransactionBuilder(ddb, load_contract(SCHEMA), max_attempts=max_attempts, base_delay=0.0)
    tx.create("Users", {"pk": {"S": "USER#u1"}, "user_id": {"S": "u1"}})
    tx.create("EmailLookup", {"pk": {"S": "EMAIL#taken"}, "user_id": {"S": "u1"}})
    try:
        tx.commit()
    except Exception as err:  # returned for the test to inspect
        return client, err
    return client, None


def test_the_request_uses_physical_names_and_asks_for_the_old_item() -> None:
    client, err = commit([{}])
    assert err is None
    (request,) = client.requests
    assert [list(i["Put"].keys()) for i in request["TransactItems"]] == [
        ["TableName", "Item", "ConditionExpression", "ReturnValuesOnConditionCheckFailure",
         "ExpressionAttributeNames"]] * 2
    assert request["TransactItems"][1]["Put"]["TableName"] == "p_EmailLookup"
    assert request["TransactItems"][0]["Put"]["ConditionExpression"] == "attribute_not_exists(#n0)"
    assert len(request["ClientRequestToken"]) == 36


def test_conflicts_are_retried_with_the_same_token_until_they_pass() -> None:
    client, err = commit([cancelled("TransactionConflict", "None"),
                          cancelled("None", "ThrottlingError"), {}])
    assert err is None
    assert len(client.requests) == 3
    assert len({r["ClientRequestToken"] for r in client.requests}) == 1


def test_conflicts_that_never_end_become_transaction_conflicted() -> None:
    client, err = commit([cancelled("TransactionConflict", "None")] * 3, max_attempts=3)
    assert isinstance(err, TransactionConflicted) and isinstance(err, Transient)
    assert err.attempts == 3 and len(client.requests) == 3
    assert "after 3 attempts" in str(err) and err.action.entity is None and err.action.index == 0


def test_throttling_that_never_ends() -> None:
    _, err = commit([cancelled("None", "ThrottlingError")] * 2, max_attempts=2)
    assert isinstance(err, TransactionThrottled) and err.action.index == 1


def test_a_failed_condition_is_not_retried_even_beside_a_conflict() -> None:
    client, err = commit([cancelled("TransactionConflict", "ConditionalCheckFailed")])
    assert len(client.requests) == 1
    assert isinstance(err, TransactionItemExists) and isinstance(err, TransactionConditionFailed)
    assert isinstance(err, Terminal)
    assert (err.action.index, err.action.op, err.action.table) == (1, "Put", "EmailLookup")
    assert err.action.create and err.stored_item == {"pk": {"S": "EMAIL#taken"}}
    assert [r.code for r in err.reasons] == ["TransactionConflict", "ConditionalCheckFailed"]
    assert str(err).startswith("TransactWriteItems cancelled: action 1 (Put (create) EmailLookup")
    assert isinstance(err.__cause__, Exception)


def test_validation_errors_become_transaction_invalid() -> None:
    client, err = commit([cancelled("ValidationError", "None")])
    assert isinstance(err, TransactionInvalid) and isinstance(err, TransactionFailed)
    assert len(client.requests) == 1 and err.reason.message == "ValidationError happened"
