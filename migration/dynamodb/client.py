"""The single choke point for DynamoDB calls.

Every DynamoDB request of dual-write, backfill, reconcile, repair and schema
management goes through `DynamoDB.call`, so retries with backoff, error
translation, counting and test fault injection live in one place.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import orjson
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.httpsession import get_cert_path

from migration.backoff import jittered
from migration.dynamodb.sigv4 import SigV4Signer
from migration.errors import (
    CancellationReason,
    ConditionFailed,
    DynamoDBError,
    DynamoDBUnavailable,
    InvalidRequest,
    NoCredentials,
    ResourceInUse,
    TableNotFound,
    Throttled,
    TransactionCancelled,
    TransactionConflict,
    Transient,
    UnsupportedByEndpoint,
)
from migration.settings import Settings

# A hook sees (operation, params) before a call, or (operation, params, response)
# after it; raising from it simulates a fault at exactly that point.
BeforeHook = Callable[[str, dict[str, Any]], None]
AfterHook = Callable[[str, dict[str, Any], dict[str, Any]], None]

_THROTTLE_CODES = {"ProvisionedThroughputExceededException", "ThrottlingException",
                   "RequestLimitExceeded", "Throttling", "TooManyRequestsException"}
_UNAVAILABLE_CODES = {"InternalServerError", "InternalFailure", "ServiceUnavailable",
                      "ServiceUnavailableException"}


def _snake(operation: str) -> str:
    out = []
    for i, ch in enumerate(operation):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def make_client(settings: Settings, *, max_pool_connections: int = 50,
                service: str = "dynamodb") -> Any:
    """A botocore DynamoDB client for the settings, with botocore's own retries off
    (the choke point retries, so attempts are counted once); `service="dynamodbstreams"`
    gives the DynamoDB Streams client of the same endpoint and credentials."""
    config = Config(
        region_name=settings.aws_region,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=max_pool_connections,
        connect_timeout=5,
        read_timeout=30,
        tcp_keepalive=True,
    )
    session: Any = boto3.session.Session()  # `service` is any of boto3's names
    credentials = settings.aws_credentials()
    return session.client(
        service,
        endpoint_url=settings.dynamodb_endpoint or None,
        region_name=settings.aws_region,
        config=config,
        aws_access_key_id=credentials.get("aws_access_key_id"),
        aws_secret_access_key=credentials.get("aws_secret_access_key"),
    )


def translate(operation: str, err: Exception, *, table: str | None = None) -> DynamoDBError:
    """Turn a botocore exception into the project's typed error (keep it as the cause);
    `table` is the table the request named, for a TableNotFound to say which."""
    if isinstance(err, botocore.exceptions.ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "ConditionalCheckFailedException":
            stored = err.response.get("Item")
            return ConditionFailed(operation, code, message,
                                   stored if isinstance(stored, dict) else None)
        if code == "TransactionCanceledException":
            reasons = [
                CancellationReason(index=i, code=r.get("Code"), message=r.get("Message", ""),
                                   item=r.get("Item"))
                for i, r in enumerate(err.response.get("CancellationReasons", []))
            ]
            return TransactionCancelled(operation, message, reasons)
        if code == "TransactionConflictException" or code == "TransactionInProgressException":
            return TransactionConflict(operation, code, message)
        if code in _THROTTLE_CODES:
            return Throttled(operation, code, message)
        if code in _UNAVAILABLE_CODES or (isinstance(status, int) and status >= 500):
            return DynamoDBUnavailable(operation, code, message)
        if code == "ResourceNotFoundException":
            return TableNotFound(operation, code, message, table)
        if code == "ResourceInUseException":
            return ResourceInUse(operation, code, message)
        if "UnknownOperation" in code:
            return UnsupportedByEndpoint(operation, code, message)
        if code == "ValidationException":
            return InvalidRequest(operation, code, message)
        return DynamoDBError(operation, code, message)
    if isinstance(err, botocore.exceptions.EndpointConnectionError | \
                  botocore.exceptions.ConnectionClosedError | \
                  botocore.exceptions.ReadTimeoutError | \
                  botocore.exceptions.ConnectTimeoutError):
        return DynamoDBUnavailable(operation, type(err).__name__, str(err))
    if isinstance(err, botocore.exceptions.HTTPClientError):
        return DynamoDBUnavailable(operation, type(err).__name__, str(err))
    if isinstance(err, botocore.exceptions.NoCredentialsError):
        return NoCredentials(operation, type(err).__name__, str(err))
    return DynamoDBError(operation, type(err).__name__, str(err))


_FIRST_TABLE = re.compile(rb'^\{"RequestItems":\{"([^"]+)"')


def _table_named(params: Mapping[str, Any]) -> str | None:
    """The table a request names (for the fast path, inside its JSON payload)."""
    payload = params.get("_json", params)
    if isinstance(payload, bytes):  # a pre-encoded BatchWriteItem (`batch_write_body`)
        found = _FIRST_TABLE.match(payload)
        return found.group(1).decode() if found else None
    if not isinstance(payload, Mapping):
        return None
    table = payload.get("TableName")
    if table is None and isinstance(payload.get("RequestItems"), Mapping):
        table = next(iter(payload["RequestItems"]), None)
    return str(table) if table is not None else None


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# The reference encoding: compact JSON, UTF-8 as is, binary values as base64 text.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)


def reference_json(payload: Any) -> bytes:
    """A request body as the standard library encodes it: the reference the fast
    encoder (`encode_json`) is held to, byte for byte."""
    return _ENCODER.encode(payload).encode("utf-8")


def encode_json(payload: Any) -> bytes:
    """A request body: compact JSON, binary values as base64 (DynamoDB's wire form).

    orjson writes the same bytes as `reference_json` for what requests hold (strings,
    integers, booleans, lists, maps with text keys, binary values) about ten times
    faster; whatever it refuses (a map with non-text keys, an integer over 64 bits)
    goes through the reference encoder, which then gives the same answer or error."""
    try:
        return orjson.dumps(payload, default=_json_default)
    except orjson.JSONEncodeError:
        return reference_json(payload)


def batch_write_body(table: str, items: Sequence[Mapping[str, Any]]) -> bytes:
    """The body of a BatchWriteItem putting `items` (at most 25) into `table`: the same
    bytes as `encode_json` gives for it, each item encoded once, in one pass."""
    return encode_json({"RequestItems": {table: [
        {"PutRequest": {"Item": item}} for item in items]}})


def decode_json(content: bytes) -> Any:
    """An answer's JSON (orjson: the same values as `json.loads` for DynamoDB's answers,
    which hold no floats)."""
    return orjson.loads(content)


class ConnectionLost(Exception):
    """The endpoint closed the connection before its answer was whole."""


class _Link:
    """One keep-alive HTTP/1.1 connection: a request goes out in one `sendall` (head and
    body together: a second write would cost a second round of the kernel's work), and
    its answer is read by `Content-Length` (or chunks) without http.client's header
    parsing, which costs more than the rest of a request's handling."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionLost("the endpoint closed the connection")
        self.buffer += data

    def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Send one request; returns (status, body, whether the server closes after it)."""
        self.sock.sendall(request)
        buffer = self.buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                self._fill()
                end = buffer.find(b"\r\n\r\n")
            lines = bytes(buffer[:end]).split(b"\r\n")
            del buffer[:end + 4]
            status = int(lines[0].split(None, 2)[1])
            if status >= 200:
                break  # 1xx answers (100 Continue) are followed by the real one
        length, chunked, close = -1, False, lines[0].startswith(b"HTTP/1.0")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if chunked:
            return status, self._chunks(), close
        if length < 0:  # the body runs to the end of the connection
            try:
                while True:
                    self._fill()
            except ConnectionLost:
                pass
            body = bytes(buffer)
            buffer.clear()
            return status, body, True
        while len(buffer) < length:
            self._fill()
        body = bytes(buffer[:length])
        del buffer[:length]
        return status, body, close

    def _chunks(self) -> bytes:
        buffer, body = self.buffer, bytearray()
        while True:
            end = buffer.find(b"\r\n")
            while end < 0:
                self._fill()
                end = buffer.find(b"\r\n")
            size = int(bytes(buffer[:end]).split(b";")[0], 16)
            del buffer[:end + 2]
            if size == 0:
                while (end := buffer.find(b"\r\n")) != 0:  # trailers, then the blank line
                    if end < 0:
                        self._fill()
                    else:
                        del buffer[:end + 2]
                del buffer[:2]
                return bytes(body)
            while len(buffer) < size + 2:
                self._fill()
            body += buffer[:size]
            del buffer[:size + 2]

    def close(self) -> None:
        self.sock.close()


class _Links(threading.local):
    """The calling thread's connection to the endpoint (one per thread: no pool lock,
    no hand-over between threads)."""

    link: _Link | None = None


class WireSender:
    """Signs a pre-encoded body (`sigv4.SigV4Signer`: the signing key and the constant
    parts of the canonical request kept) and sends it on a keep-alive connection per
    thread (`_Link`; TLS verified as botocore's session verifies it: its CA bundle,
    or its `verify=False`), parsing the answer as JSON.

    Connection failures are raised as botocore's `HTTPClientError`, so the choke point
    translates and retries them as it does botocore's own (the connection is dropped,
    the retry opens a new one). Behind a proxy (botocore's proxy settings or the
    environment's) requests go through botocore's own HTTP session instead."""

    def __init__(self, client: Any):
        self.url = client._endpoint.host.rstrip("/") + "/"
        self.session = client._endpoint.http_session
        self.credentials = client._request_signer._credentials
        self.region = client.meta.region_name
        self.timeout = client.meta.config.read_timeout
        self.connect_timeout = client.meta.config.connect_timeout
        self.signer = SigV4Signer(self.url, self.region)
        parts = urlsplit(self.url)
        self.https = parts.scheme == "https"
        self.address = (parts.hostname or "", parts.port or (443 if self.https else 80))
        self._request_line = (f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {self.signer.host}"
                              "\r\nUser-Agent: mysql-dynamodb-migrate\r\n"
                              "Accept-Encoding: identity\r\n")
        proxies = getattr(getattr(self.session, "_proxy_config", None), "proxy_url_for", None)
        self.proxied = bool(proxies(self.url)) if proxies is not None else False
        self._ssl: ssl.SSLContext | None = None
        if self.https:
            verify = getattr(self.session, "_verify", True)
            if verify is False:
                self._ssl = ssl._create_unverified_context()
            else:
                self._ssl = ssl.create_default_context(cafile=get_cert_path(verify))
        self._links = _Links()

    def _signed(self, operation: str, body: bytes) -> dict[str, str]:
        if self.credentials is None:
            # As botocore's own path does: an unsigned request would only be refused.
            raise botocore.exceptions.NoCredentialsError()
        return self.signer.headers(operation, body, self.credentials.get_frozen_credentials())

    def _connect(self) -> _Link:
        sock = socket.create_connection(self.address, timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=self.address[0])
            sock.settimeout(self.timeout)
        except BaseException:
            sock.close()
            raise
        return _Link(sock)

    def send(self, operation: str, body: bytes) -> dict[str, Any]:
        if self.proxied:
            return self._send_botocore(operation, body)
        head = self._request_line + "".join(
            f"{name}: {value}\r\n" for name, value in self._signed(operation, body).items())
        request = (head + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
        links = self._links
        try:
            link = links.link
            if link is None:
                link = links.link = self._connect()
            status, content, close = link.exchange(request)
            if close:
                link.close()
                links.link = None
        except (OSError, ValueError, IndexError, ConnectionLost) as err:
            # ValueError/IndexError: an answer that is not HTTP. The connection is in an
            # unknown state: drop it; the retry opens a new one.
            if links.link is not None:
                links.link.close()
                links.link = None
            raise botocore.exceptions.HTTPClientError(error=err) from err
        return self._answer(operation, status, content)

    def _send_botocore(self, operation: str, body: bytes) -> dict[str, Any]:
        request = AWSRequest(method="POST", url=self.url, data=body,
                             headers=self._signed(operation, body))
        response = self.session.send(request.prepare())
        return self._answer(operation, response.status_code, response.content)

    @staticmethod
    def _answer(operation: str, status: int, content: bytes) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = decode_json(content) if content else {}
        except orjson.JSONDecodeError:
            if status < 300:
                raise
            answer = {}
        if status >= 300:
            kind = str(answer.get("__type", "")).rsplit("#", 1)[-1] or f"HTTP{status}"
            message = answer.get("message") or answer.get("Message") or ""
            error: dict[str, Any] = {"Error": {"Code": kind, "Message": message},
                                     "ResponseMetadata": {"HTTPStatusCode": status}}
            for extra in ("CancellationReasons", "Item"):
                if extra in answer:
                    error[extra] = answer[extra]
            raise botocore.exceptions.ClientError(error, operation)  # type: ignore[arg-type]
        return answer


class DynamoDB:
    """The one DynamoDB client wrapper of the toolkit (thread-safe).

    `call("PutItem", TableName=..., Item=...)` sends one request. Transient
    failures (throttling, server errors, connection errors) are retried with
    exponential backoff and full jitter up to `max_attempts`; every other error
    is raised at once as a typed `DynamoDBError` with the botocore error as its
    cause. `before`/`after` hooks let tests inject faults at this single point.
    """

    def __init__(self, settings: Settings, *, client: Any = None, max_attempts: int = 8,
                 base_delay: float = 0.05, max_delay: float = 5.0):
        self.settings = settings
        self.client = client if client is not None else make_client(settings)
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.before: list[BeforeHook] = []
        self.after: list[AfterHook] = []
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        # Wall-clock seconds spent in requests (retries and backoff included), per
        # operation: what a caller's latency owes to DynamoDB.
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._methods: dict[str, Callable[..., dict[str, Any]]] = {}
        self._wire: WireSender | None = None

    @property
    def endpoint(self) -> str:
        return self.settings.dynamodb_endpoint or "AWS"

    def table_name(self, logical: str) -> str:
        """The physical table name for a contract table name (prefix applied)."""
        return self.settings.table_name(logical)

    def _method(self, operation: str) -> Callable[..., dict[str, Any]]:
        method = self._methods.get(operation)
        if method is None:
            method = getattr(self.client, _snake(operation))
            self._methods[operation] = method
        return method

    def call(self, operation: str, *, retry: bool = True, **params: Any) -> dict[str, Any]:
        """Send one DynamoDB request by API name; see the class docstring."""
        method = self._method(operation)
        started = time.perf_counter()
        try:
            return self._call(operation, method, retry, params)
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self.seconds[operation] += elapsed

    def _call(self, operation: str, method: Callable[..., dict[str, Any]], retry: bool,
              params: dict[str, Any]) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self.calls[operation] += 1
            try:
                try:
                    # Hooks run where the real request does, so an injected botocore
                    # fault is translated and retried exactly like a real one.
                    for hook in self.before:
                        hook(operation, params)
                    response = method(**params)
                except botocore.exceptions.BotoCoreError as err:
                    raise translate(operation, err) from err
                except botocore.exceptions.ClientError as err:
                    raise translate(operation, err, table=_table_named(params)) from err
                for after in self.after:
                    after(operation, params, response)
                return response
            except DynamoDBError as err:
                if not (retry and isinstance(err, Transient)) or attempt >= self.max_attempts:
                    raise
                with self._lock:
                    self.retries[operation] += 1
                time.sleep(self.backoff(attempt))

    # -- the fast path ------------------------------------------------------------------
    def call_json(self, operation: str, payload: Mapping[str, Any] | bytes, *,
                  retry: bool = True) -> dict[str, Any]:
        """Send one request whose body we encode ourselves, and parse the answer ourselves.

        Items stay in DynamoDB's JSON wire form both ways (binary values as base64
        text in answers), so the hot paths of backfill and reconcile skip botocore's
        per-item validation and (de)serialization, and are signed and sent by
        `WireSender` (a kept signing key, a keep-alive connection per thread).
        Same retries, hooks, error types and accounting as `call`.
        """
        wire = self._wire or WireSender(self.client)
        self._wire = wire
        body = payload if isinstance(payload, bytes) else encode_json(payload)
        started = time.perf_counter()
        try:
            return self._call(operation, lambda **_: wire.send(operation, body), retry,
                              {"_json": payload})
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self.seconds[operation] += elapsed

    def longest_call_seconds(self) -> float:
        """The longest one `call`/`call_json` can take, retries included: after that long,
        no request it sent can still reach DynamoDB."""
        config = self.client.meta.config
        timeouts = float(config.connect_timeout or 60) + float(config.read_timeout or 60)
        return self.max_attempts * (timeouts + self.max_delay)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter for the given attempt (1-based)."""
        return jittered(attempt, base=self.base_delay, cap=self.max_delay)
