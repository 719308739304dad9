"""An instant DynamoDB endpoint on 127.0.0.1, so that a benchmark measures our process alone.

It answers the calls the backfill and reconcile make (and the schema's `apply`) at once
and correctly, holding the items in dicts: BatchWriteItem, PutItem and DeleteItem with
their condition expressions, UpdateItem (plain SET assignments: the version mark),
GetItem, BatchGetItem, Scan (parallel segments, Limit, ExclusiveStartKey over the items
it holds), TransactWriteItems (Put, Delete,
ConditionCheck), CreateTable, DescribeTable, DeleteTable, ListTables and
DescribeTimeToLive. Anything else answers UnknownOperationException, as DynamoDB Local
does for what it lacks. Requests are SigV4-signed by the client and taken without
checking the signature (it is a benchmark's stand-in, listening on loopback only).

It runs in a process of its own (its CPU is never ours), one thread per connection
(HTTP/1.1 keep-alive, parsed by hand: `http.server` would cost more than the work), and
it stops by itself: after `--max-seconds`, or when its parent closes its stdin.

    python bench/instant_dynamodb.py [--port 0] [--max-seconds 600]

prints `listening on http://127.0.0.1:PORT` on its first line of standard output.
`start()` does that from Python and yields the endpoint URL.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import orjson

Item = dict[str, Any]
PREFIX = "com.amazonaws.dynamodb.v20120810#"


class Failure(Exception):
    """An error answer: its DynamoDB type, message and extra fields (status 400)."""

    def __init__(self, kind: str, message: str = "", **extra: Any):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.extra = extra


# -- condition expressions ---------------------------------------------------------------

_TOKEN = re.compile(r"\s*(attribute_not_exists|attribute_exists|begins_with|AND|OR|NOT|"
                    r"<>|<=|>=|=|<|>|\(|\)|,|#[A-Za-z0-9_]+|:[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_.]*)",
                    re.IGNORECASE)


def _tokens(text: str) -> list[str]:
    out, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position:].strip():
                raise Failure("ValidationException", f"cannot parse condition at {text[position:]!r}")
            break
        out.append(match.group(1))
        position = match.end()
    return out


def _number_or_text(value: Item) -> Any:
    (kind, inner), = value.items()
    if kind == "N":
        return float(inner) if any(c in inner for c in ".eE") else int(inner)
    return inner


class Condition:
    """A condition expression over one item (or its absence): the grammar the toolkit
    writes (comparisons, attribute_(not_)exists, begins_with, AND, OR, NOT, brackets)."""

    def __init__(self, text: str, names: dict[str, str], values: dict[str, Item]):
        self.tokens = _tokens(text)
        self.names = names
        self.values = values

    def holds(self, item: Item | None) -> bool:
        self.item = item or {}
        self.at = 0
        result = self._or()
        if self.at != len(self.tokens):
            raise Failure("ValidationException", "trailing tokens in condition")
        return result

    def _peek(self) -> str:
        return self.tokens[self.at] if self.at < len(self.tokens) else ""

    def _take(self) -> str:
        token = self._peek()
        self.at += 1
        return token

    def _or(self) -> bool:
        result = self._and()
        while self._peek().upper() == "OR":
            self._take()
            right = self._and()
            result = result or right
        return result

    def _and(self) -> bool:
        result = self._not()
        while self._peek().upper() == "AND":
            self._take()
            right = self._not()
            result = result and right
        return result

    def _not(self) -> bool:
        if self._peek().upper() == "NOT":
            self._take()
            return not self._not()
        return self._primary()

    def _operand(self) -> Item | None:
        token = self._take()
        if token.startswith(":"):
            return self.values[token]
        name = self.names.get(token, token) if token.startswith("#") else token
        return self.item.get(name)

    def _primary(self) -> bool:
        token = self._peek()
        if token == "(":
            self._take()
            result = self._or()
            self._take()  # ")"
            return result
        function = token.lower()
        if function in ("attribute_exists", "attribute_not_exists", "begins_with"):
            self._take()
            self._take()  # "("
            value = self._operand()
            prefix = None
            if function == "begins_with":
                self._take()  # ","
                prefix = self._operand()
            self._take()  # ")"
            if function == "attribute_exists":
                return value is not None
            if function == "attribute_not_exists":
                return value is None
            return value is not None and prefix is not None and \
                str(_number_or_text(value)).startswith(str(_number_or_text(prefix)))
        left = self._operand()
        operator = self._take()
        right = self._operand()
        if operator == "=":
            return left is not None and left == right
        if operator == "<>":
            return left != right
        if left is None or right is None or left.keys() != right.keys():
            return False
        a, b = _number_or_text(left), _number_or_text(right)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[operator]


# -- the tables ----------------------------------------------------------------------------

class Table:
    def __init__(self, description: dict[str, Any]):
        self.description = description
        schema = {k["KeyType"]: k["AttributeName"] for k in description["KeySchema"]}
        self.partition = schema["HASH"]
        self.sort = schema.get("RANGE")
        self.items: dict[tuple[str, str], Item] = {}
        self._order: dict[int, list[tuple[str, str]]] | None = None  # segment count's pages

    def key(self, item: Item) -> tuple[str, str]:
        try:
            pk = orjson.dumps(item[self.partition]).decode()
            sk = orjson.dumps(item[self.sort]).decode() if self.sort else ""
        except KeyError as err:
            raise Failure("ValidationException",
                          f"the key element {err.args[0]} is missing") from None
        return pk, sk

    def key_of(self, item: Item) -> Item:
        out = {self.partition: item[self.partition]}
        if self.sort:
            out[self.sort] = item[self.sort]
        return out

    def put(self, item: Item) -> Item | None:
        self._order = None
        key = self.key(item)
        old = self.items.get(key)
        self.items[key] = item
        return old

    def delete(self, key: Item) -> Item | None:
        self._order = None
        return self.items.pop(self.key(key), None)

    def segment_keys(self, segment: int, total: int) -> list[tuple[str, str]]:
        """The keys of one scan segment, in a stable order (pages follow it)."""
        if self._order is None or total not in self._order:
            buckets: list[list[tuple[str, str]]] = [[] for _ in range(total)]
            for key in self.items:
                buckets[zlib.crc32(key[0].encode()) % total].append(key)
            self._order = {total: [k for bucket in buckets for k in sorted(bucket)]}
            self._bounds = [0]
            for bucket in buckets:
                self._bounds.append(self._bounds[-1] + len(bucket))
        start, end = self._bounds[segment], self._bounds[segment + 1]
        return self._order[total][start:end]


class Store:
    """Every table, behind one lock (the answers are instant; the lock is never held long)."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self.lock = threading.Lock()

    def table(self, name: str) -> Table:
        table = self.tables.get(name)
        if table is None:
            raise Failure("ResourceNotFoundException", f"Requested resource not found: {name}")
        return table

    @staticmethod
    def _check(request: dict[str, Any], old: Item | None) -> None:
        text = request.get("ConditionExpression")
        if not text:
            return
        condition = Condition(text, request.get("ExpressionAttributeNames") or {},
                              request.get("ExpressionAttributeValues") or {})
        if not condition.holds(old):
            extra = {"Item": old} if old is not None and \
                request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else {}
            raise Failure("ConditionalCheckFailedException", "The conditional request failed",
                          **extra)

    # operations: each takes the request and gives the answer
    def CreateTable(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        name = r["TableName"]
        if name in self.tables:
            raise Failure("ResourceInUseException", f"Table already exists: {name}")
        description = {**{k: v for k, v in r.items() if k != "TableName"}, "TableName": name,
                       "TableStatus": "ACTIVE", "ItemCount": 0, "TableSizeBytes": 0,
                       "CreationDateTime": time.time(),
                       "TableArn": f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}"}
        if "BillingMode" in r:
            description["BillingModeSummary"] = {"BillingMode": r["BillingMode"]}
        for index in description.get("GlobalSecondaryIndexes", []):
            index["IndexStatus"] = "ACTIVE"
        self.tables[name] = Table(description)
        return {"TableDescription": description}

    def DescribeTable(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        table = self.table(r["TableName"])
        return {"Table": {**table.description, "ItemCount": len(table.items)}}

    def DeleteTable(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        table = self.table(r["TableName"])
        del self.tables[r["TableName"]]
        return {"TableDescription": {**table.description, "TableStatus": "DELETING"}}

    def ListTables(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        return {"TableNames": sorted(self.tables)}

    def DescribeTimeToLive(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        self.table(r["TableName"])
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}

    def GetItem(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        table = self.table(r["TableName"])
        item = table.items.get(table.key(r["Key"]))
        return {"Item": item} if item is not None else {}

    def PutItem(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        table = self.table(r["TableName"])
        item = r["Item"]
        self._check(r, table.items.get(table.key(item)))
        old = table.put(item)
        return {"Attributes": old} if old is not None and r.get("ReturnValues") == "ALL_OLD" \
            else {}

    def DeleteItem(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        table = self.table(r["TableName"])
        self._check(r, table.items.get(table.key(r["Key"])))
        old = table.delete(r["Key"])
        return {"Attributes": old} if old is not None and r.get("ReturnValues") == "ALL_OLD" \
            else {}

    def UpdateItem(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        """`SET a = :v, #b = :w` (plain assignments: what the toolkit's marks use), with
        its condition expression."""
        table = self.table(r["TableName"])
        old = table.items.get(table.key(r["Key"]))
        self._check(r, old)
        text = (r.get("UpdateExpression") or "").strip()
        if not text.upper().startswith("SET "):
            raise Failure("ValidationException", f"only SET updates are served: {text!r}")
        names, values = r.get("ExpressionAttributeNames") or {}, \
            r.get("ExpressionAttributeValues") or {}
        item = dict(old) if old is not None else dict(r["Key"])
        for assignment in text[4:].split(","):
            name, _, value = (part.strip() for part in assignment.partition("="))
            if not value.startswith(":") or value not in values:
                raise Failure("ValidationException", f"only NAME = :value is served: "
                              f"{assignment.strip()!r}")
            item[names.get(name, name)] = values[value]
        table.put(item)
        wanted = r.get("ReturnValues")
        if wanted in ("ALL_NEW", "UPDATED_NEW"):
            return {"Attributes": item}
        return {"Attributes": old} if old is not None and wanted == "ALL_OLD" else {}

    def BatchWriteItem(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        requests = r["RequestItems"]
        if sum(len(v) for v in requests.values()) > 25:
            raise Failure("ValidationException", "Too many items requested for the "
                          "BatchWriteItem call")
        for name, writes in requests.items():
            table = self.table(name)
            for write in writes:
                if "PutRequest" in write:
                    table.put(write["PutRequest"]["Item"])
                else:
                    table.delete(write["DeleteRequest"]["Key"])
        return {"UnprocessedItems": {}}

    def BatchGetItem(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        responses: dict[str, list[Item]] = {}
        for name, wanted in r["RequestItems"].items():
            table = self.table(name)
            found = responses.setdefault(name, [])
            for key in wanted["Keys"]:
                item = table.items.get(table.key(key))
                if item is not None:
                    found.append(item)
        return {"Responses": responses, "UnprocessedKeys": {}}

    def Scan(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        table = self.table(r["TableName"])
        keys = table.segment_keys(int(r.get("Segment", 0)), int(r.get("TotalSegments", 1)))
        start = 0
        if r.get("ExclusiveStartKey"):
            start = bisect.bisect_right(keys, table.key(r["ExclusiveStartKey"]))
        limit = int(r.get("Limit") or 0)
        # DynamoDB stops a page at 1 MB; items here are small, so a page is at most
        # `Limit` items, else 1,000.
        page = keys[start:start + (limit or 1000)]
        items = [table.items[k] for k in page]
        answer: dict[str, Any] = {"Items": items, "Count": len(items),
                                  "ScannedCount": len(items)}
        if start + len(page) < len(keys):
            answer["LastEvaluatedKey"] = table.key_of(items[-1])
        return answer

    def TransactWriteItems(self, r: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        actions = r["TransactItems"]
        reasons, failed = [], False
        for action in actions:
            (kind, request), = action.items()
            table = self.table(request["TableName"])
            key = request.get("Key") or table.key_of(request["Item"])
            try:
                self._check(request, table.items.get(table.key(key)))
                reasons.append({"Code": "None"})
            except Failure as err:
                failed = True
                reason = {"Code": "ConditionalCheckFailed", "Message": err.message}
                if "Item" in err.extra:
                    reason["Item"] = err.extra["Item"]
                reasons.append(reason)
            if kind not in ("Put", "Delete", "ConditionCheck"):
                raise Failure("ValidationException", f"{kind} is not supported here")
        if failed:
            raise Failure("TransactionCanceledException", "Transaction cancelled",
                          CancellationReasons=reasons)
        for action in actions:
            (kind, request), = action.items()
            table = self.table(request["TableName"])
            if kind == "Put":
                table.put(request["Item"])
            elif kind == "Delete":
                table.delete(request["Key"])
        return {}

    def answer(self, operation: str, body: bytes) -> tuple[int, bytes]:
        try:
            handler: Callable[[dict[str, Any]], dict[str, Any]] | None = \
                getattr(self, operation, None) if operation[:1].isupper() else None
            if handler is None:
                raise Failure("UnknownOperationException", f"{operation} is not supported")
            request = orjson.loads(body) if body else {}
            with self.lock:
                return 200, orjson.dumps(handler(request))
        except Failure as err:
            return 400, orjson.dumps({"__type": PREFIX + err.kind, "message": err.message,
                                      **err.extra})
        except (KeyError, TypeError, ValueError, IndexError) as err:
            return 400, orjson.dumps({"__type": PREFIX + "ValidationException",
                                      "message": f"{type(err).__name__}: {err}"})


# -- HTTP ----------------------------------------------------------------------------------

def _serve_connection(conn: socket.socket, store: Store) -> None:
    buffer = b""
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                data = conn.recv(262144)
                if not data:
                    return
                buffer += data
                end = buffer.find(b"\r\n\r\n")
            head, buffer = buffer[:end].decode("latin-1"), buffer[end + 4:]
            length, operation, close = 0, "", False
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "x-amz-target":
                    operation = value.strip().rpartition(".")[2]
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            while len(buffer) < length:
                data = conn.recv(max(262144, length - len(buffer)))
                if not data:
                    return
                buffer += data
            body, buffer = buffer[:length], buffer[length:]
            status, answer = store.answer(operation, body)
            conn.sendall((f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}\r\n"
                          "Content-Type: application/x-amz-json-1.0\r\n"
                          f"x-amzn-RequestId: instant\r\nContent-Length: {len(answer)}\r\n\r\n")
                         .encode("latin-1") + answer)
            if close:
                return


def serve(port: int, max_seconds: float, out: Any = sys.stdout) -> None:
    """Listen on 127.0.0.1:`port` (0: any free port) until `max_seconds` pass or stdin closes."""
    store = Store()
    listener = socket.create_server(("127.0.0.1", port), backlog=128)
    out.write(f"listening on http://127.0.0.1:{listener.getsockname()[1]}\n")
    out.flush()

    def stop_when_orphaned() -> None:
        with contextlib.suppress(OSError):
            while sys.stdin.buffer.read(65536):
                pass
        os._exit(0)

    threading.Thread(target=stop_when_orphaned, daemon=True).start()
    signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
    signal.alarm(max(1, int(max_seconds)))
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_connection, args=(conn, store), daemon=True).start()


@contextlib.contextmanager
def start(max_seconds: float = 600) -> Iterator[tuple[str, int]]:
    """Run the endpoint in a child process; yields (endpoint URL, its pid); stops it after."""
    process = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                "--max-seconds", str(max_seconds)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the instant endpoint did not start: {line!r}")
        yield line.removeprefix("listening on "), process.pid
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args(argv)
    serve(args.port, args.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
