"""The fast path's HTTP link (`WireSender`): what goes on the wire is signed as botocore
signs it, answers in any HTTP/1.1 framing are read whole, and a connection the endpoint
drops or closes is replaced, its failure translated and retried by the choke point like
botocore's own."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from migration.errors import ConditionFailed, DynamoDBUnavailable
from tests.unit.dynamodb.loopback import answer, client


def test_the_request_on_the_wire_is_signed_as_botocore_signs_it(endpoint: Any) -> None:
    server = endpoint(lambda r: answer({"Count": 0}))
    body = {"TableName": "T", "Limit": 5, "S": "é"}
    assert client(server.url).call_json("Scan", body) == {"Count": 0}
    (_, _, headers, sent), = server.requests
    assert sent == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert headers["host"] == server.url.removeprefix("http://")
    assert headers["x-amz-target"] == "DynamoDB_20120810.Scan"
    when = dt.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    request = AWSRequest(method="POST", url=server.url + "/", data=sent, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.Scan"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(Credentials("AKIDTEST", "secret/key"), "dynamodb", "eu-west-1").add_auth(request)
    assert headers["authorization"] == request.headers["Authorization"]


def test_answers_in_chunks_and_after_a_continue_are_read_whole(endpoint: Any) -> None:
    payload = json.dumps({"Items": [{"a": {"S": "x" * 5000}}], "Count": 1}).encode()
    chunked = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(payload[i:i + 999]), payload[i:i + 999])
                       for i in range(0, len(payload), 999))
    server = endpoint(lambda r: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\nX-T: 1\r\n\r\n")
    ddb = client(server.url)
    for _ in range(3):
        assert ddb.call_json("Scan", {"TableName": "T"})["Items"][0]["a"]["S"] == "x" * 5000
    assert server.connections == 1  # kept alive across the three


def test_a_connection_the_endpoint_closes_is_replaced(endpoint: Any) -> None:
    server = endpoint(lambda r: answer({"n": r[1]}, extra="Connection: close\r\n"))
    ddb = client(server.url)
    assert [ddb.call_json("GetItem", {})["n"] for _ in range(3)] == [1, 1, 1]
    assert server.connections == 3 and ddb.retries["GetItem"] == 0


def test_a_dropped_connection_is_translated_and_retried(endpoint: Any) -> None:
    # The endpoint drops its idle keep-alive connection: the next request on it fails,
    # and the choke point retries it on a new one.
    server = endpoint(lambda r: answer({"n": r[0]}) if r[1] == 1 else None)
    ddb = client(server.url)
    assert ddb.call_json("PutItem", {}) == {"n": 1}
    assert ddb.call_json("PutItem", {}) == {"n": 2}
    assert ddb.retries["PutItem"] == 1 and server.connections == 2


def test_an_endpoint_that_never_answers_ends_in_unavailable(endpoint: Any) -> None:
    server = endpoint(lambda r: None)
    ddb = client(server.url, max_attempts=3)
    with pytest.raises(DynamoDBUnavailable):
        ddb.call_json("Scan", {})
    assert ddb.calls["Scan"] == 3


def test_errors_carry_their_evidence(endpoint: Any) -> None:
    stored = {"PK": {"S": "a"}, "_owner": {"S": "User#1"}}
    errors = iter([
        answer({"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                "message": "The conditional request failed", "Item": stored}, 400),
        answer({"__type": "InternalServerError", "message": "boom"}, 500),
        answer({"Attributes": {}}),
    ])
    server = endpoint(lambda r: next(errors))
    ddb = client(server.url)
    with pytest.raises(ConditionFailed) as failed:
        ddb.call_json("PutItem", {})
    assert failed.value.item == stored
    assert ddb.call_json("PutItem", {}) == {"Attributes": {}}  # the 500 was retried
    assert ddb.retries["PutItem"] == 1 and len(server.requests) == 3


def test_hooks_see_fast_path_calls_and_can_fail_them(endpoint: Any) -> None:
    server = endpoint(lambda r: answer({}))
    ddb = client(server.url)
    seen: list[str] = []
    ddb.before.append(lambda operation, params: seen.append(operation))
    ddb.call_json("BatchWriteItem", b"{}")
    assert seen == ["BatchWriteItem"] and len(server.requests) == 1


def test_connections_are_per_thread(endpoint: Any) -> None:
    server = endpoint(lambda r: answer({}))
    ddb = client(server.url)
    threads = [threading.Thread(target=lambda: [ddb.call_json("Scan", {}) for _ in range(5)])
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(server.requests) == 20 and server.connections == 4
