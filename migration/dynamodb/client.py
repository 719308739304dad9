"""The single choke point for DynamoDB calls.

Every DynamoDB request of dual-write, backfill, reconcile, repair and schema
management goes through `DynamoDB.call`, so retries with backoff, error
translation, counting and test fault injection live in one place.
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import boto3
import botocore.exceptions
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config

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


def make_client(settings: Settings, *, max_pool_connections: int = 50) -> Any:
    """A botocore DynamoDB client for the settings, with botocore's own retries off
    (the choke point retries, so attempts are counted once)."""
    config = Config(
        region_name=settings.aws_region,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=max_pool_connections,
        connect_timeout=5,
        read_timeout=30,
        tcp_keepalive=True,
    )
    session = boto3.session.Session()
    credentials = settings.aws_credentials()
    return session.client(
        "dynamodb",
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


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)
# Items come from the row-to-item function or from DynamoDB's answers: trees, never
# cycles, so their encoder skips the cycle check (a fifth of the encoding time).
_ITEM_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                                 check_circular=False, default=_json_default)


def encode_json(payload: Mapping[str, Any]) -> bytes:
    """A request body: compact JSON, binary values as base64 (DynamoDB's wire form)."""
    return _ENCODER.encode(payload).encode("utf-8")


def batch_write_body(table: str, items: Sequence[Mapping[str, Any]]) -> bytes:
    """The body of a BatchWriteItem putting `items` (at most 25) into `table`: the same
    bytes as `encode_json` gives for it, each item encoded once, in one pass."""
    return _ITEM_ENCODER.encode({"RequestItems": {table: [
        {"PutRequest": {"Item": item}} for item in items]}}).encode("utf-8")


class WireSender:
    """Signs a pre-encoded body with botocore's SigV4 signer and sends it on botocore's
    own HTTP session (connection pool, timeouts, TLS), parsing the answer as JSON."""

    def __init__(self, client: Any):
        self.url = client._endpoint.host.rstrip("/") + "/"
        self.session = client._endpoint.http_session
        self.credentials = client._request_signer._credentials
        self.region = client.meta.region_name
        self.timeout = client.meta.config.read_timeout
        self._headers: dict[str, dict[str, str]] = {}
        # The signer of the credentials last seen (refreshable ones can change).
        self._signer: tuple[Any, SigV4Auth] | None = None

    def _signer_for(self, frozen: Any) -> SigV4Auth:
        signer = self._signer
        if signer is None or signer[0] != frozen:
            signer = (frozen, SigV4Auth(frozen, "dynamodb", self.region))
            self._signer = signer
        return signer[1]

    def send(self, operation: str, body: bytes) -> dict[str, Any]:
        headers = self._headers.get(operation)
        if headers is None:
            headers = {"Content-Type": "application/x-amz-json-1.0",
                       "X-Amz-Target": f"DynamoDB_20120810.{operation}"}
            self._headers[operation] = headers
        # AWSRequest copies the headers: the shared dict is never changed.
        if self.credentials is None:
            # As botocore's own path does: an unsigned request would only be refused.
            raise botocore.exceptions.NoCredentialsError()
        request = AWSRequest(method="POST", url=self.url, data=body, headers=headers)
        self._signer_for(self.credentials.get_frozen_credentials()).add_auth(request)
        response = self.session.send(request.prepare())
        content = response.content
        answer: dict[str, Any] = json.loads(content) if content else {}
        if response.status_code >= 300:
            kind = str(answer.get("__type", "")).rsplit("#", 1)[-1] or \
                f"HTTP{response.status_code}"
            message = answer.get("message") or answer.get("Message") or ""
            error: dict[str, Any] = {"Error": {"Code": kind, "Message": message},
                                     "ResponseMetadata": {"HTTPStatusCode": response.status_code}}
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
        per-item validation and (de)serialization; signing (SigV4) and the HTTP
        session are still botocore's own. Same retries, hooks, error types and
        accounting as `call`.
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
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(0, cap)
