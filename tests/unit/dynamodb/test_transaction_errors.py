"""How a commit treats DynamoDB's answers (a loopback endpoint answers as DynamoDB does,
from a script; the commit goes out on the choke point's fast path): conflicts and
throttling retried with one token, everything else turned at once into a typed error
naming the failing action."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from migration.contract.load import load_contract
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
from tests.unit.dynamodb.loopback import Request, answer
from tests.unit.dynamodb.loopback import client as loopback_client

SCHEMA = Path(__file__).parents[2] / "fixtures" / "mcp-schemas" / "user_registration_schema.json"


def cancelled(*codes: str) -> bytes:
    """DynamoDB's answer to a cancelled transaction, with a reason for each action."""
    reasons: list[dict[str, Any]] = [
        {"Code": code, "Message": f"{code} happened"} if code != "None" else {"Code": "None"}
        for code in codes]
    if "ConditionalCheckFailed" in codes:
        reasons[codes.index("ConditionalCheckFailed")]["Item"] = {"pk": {"S": "EMAIL#taken"}}
    return answer({"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                   "message": "cancelled", "CancellationReasons": reasons}, status=400)


class Scripted:
    """Answers each TransactWriteItems with the script's next answer; keeps the requests."""

    def __init__(self, script: list[bytes | dict[str, Any]]):
        self.script: Iterator[bytes | dict[str, Any]] = iter(script)
        self.requests: list[dict[str, Any]] = []
        self.agents: list[str] = []  # who sent each: botocore, or the fast path

    def __call__(self, request: Request) -> bytes:
        _, _, headers, body = request
        assert headers["x-amz-target"] == "DynamoDB_20120810.TransactWriteItems"
        self.requests.append(json.loads(body))
        self.agents.append(headers.get("user-agent", ""))
        reply = next(self.script)
        return reply if isinstance(reply, bytes) else answer(reply)


def commit(endpoint: Any, script: list[bytes | dict[str, Any]], max_attempts: int = 5
           ) -> tuple[Scripted, Exception | None]:
    scripted = Scripted(script)
    ddb = loopback_client(endpoint(scripted).url, table_prefix="p_")
    tx = TransactionBuilder(ddb, load_contract(SCHEMA), max_attempts=max_attempts, base_delay=0.0)
    tx.create("Users", {"pk": {"S": "USER#u1"}, "user_id": {"S": "u1"}})
    tx.create("EmailLookup", {"pk": {"S": "EMAIL#taken"}, "user_id": {"S": "u1"}})
    try:
        tx.commit()
    except Exception as err:  # returned for the test to inspect
        return scripted, err
    return scripted, None


def test_the_request_uses_physical_names_and_asks_for_the_old_item(endpoint: Any) -> None:
    client, err = commit(endpoint, [{}])
    assert err is None
    (request,) = client.requests
    assert [list(i["Put"].keys()) for i in request["TransactItems"]] == [
        ["TableName", "Item", "ConditionExpression", "ReturnValuesOnConditionCheckFailure",
         "ExpressionAttributeNames"]] * 2
    assert request["TransactItems"][1]["Put"]["TableName"] == "p_EmailLookup"
    assert request["TransactItems"][0]["Put"]["ConditionExpression"] == "attribute_not_exists(#n0)"
    assert len(request["ClientRequestToken"]) == 36
    assert client.agents == ["mysql-dynamodb-migrate"], "sent on the fast path, not botocore"


def test_conflicts_are_retried_with_the_same_token_until_they_pass(endpoint: Any) -> None:
    client, err = commit(endpoint, [cancelled("TransactionConflict", "None"),
                          cancelled("None", "ThrottlingError"), {}])
    assert err is None
    assert len(client.requests) == 3
    assert len({r["ClientRequestToken"] for r in client.requests}) == 1


def test_conflicts_that_never_end_become_transaction_conflicted(endpoint: Any) -> None:
    client, err = commit(endpoint, [cancelled("TransactionConflict", "None")] * 3, max_attempts=3)
    assert isinstance(err, TransactionConflicted) and isinstance(err, Transient)
    assert err.attempts == 3 and len(client.requests) == 3
    assert "after 3 attempts" in str(err) and err.action.entity is None and err.action.index == 0


def test_throttling_that_never_ends(endpoint: Any) -> None:
    _, err = commit(endpoint, [cancelled("None", "ThrottlingError")] * 2, max_attempts=2)
    assert isinstance(err, TransactionThrottled) and err.action.index == 1


def test_a_failed_condition_is_not_retried_even_beside_a_conflict(endpoint: Any) -> None:
    client, err = commit(endpoint, [cancelled("TransactionConflict", "ConditionalCheckFailed")])
    assert len(client.requests) == 1
    assert isinstance(err, TransactionItemExists) and isinstance(err, TransactionConditionFailed)
    assert isinstance(err, Terminal)
    assert (err.action.index, err.action.op, err.action.table) == (1, "Put", "EmailLookup")
    assert err.action.create and err.stored_item == {"pk": {"S": "EMAIL#taken"}}
    assert [r.code for r in err.reasons] == ["TransactionConflict", "ConditionalCheckFailed"]
    assert str(err).startswith("TransactWriteItems cancelled: action 1 (Put (create) EmailLookup")
    assert isinstance(err.__cause__, Exception)


def test_validation_errors_become_transaction_invalid(endpoint: Any) -> None:
    client, err = commit(endpoint, [cancelled("ValidationError", "None")])
    assert isinstance(err, TransactionInvalid) and isinstance(err, TransactionFailed)
    assert len(client.requests) == 1 and err.reason.message == "ValidationError happened"
