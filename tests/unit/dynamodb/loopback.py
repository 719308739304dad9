"""A loopback DynamoDB endpoint for unit tests of the fast path (`DynamoDB.call_json`):
an HTTP/1.1 server on 127.0.0.1 that answers each request with what a handler returns."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from migration.dynamodb.client import DynamoDB
from migration.settings import Settings

Request = tuple[int, int, dict[str, str], bytes]  # connection, request on it, headers, body
Handler = Callable[[Request], bytes | None]  # None: close the connection without answering


def answer(payload: dict[str, Any], status: int = 200, extra: str = "") -> bytes:
    body = json.dumps(payload).encode()
    return (f"HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.0\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class Endpoint:
    """A loopback HTTP/1.1 server running `handler` for each request (one thread per
    connection); records every request it read."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.requests: list[Request] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections),
                             daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buffer, index = b"", 0
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:])}
                length = int(headers.get("content-length", 0))
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                index += 1
                request = (number, index, headers, body)
                self.requests.append(request)
                response = self.handler(request)
                if response is None:
                    return
                conn.sendall(response)

    def close(self) -> None:
        self.listener.close()


def client(url: str, *, table_prefix: str = "", **kwargs: Any) -> DynamoDB:
    """The choke point, sending to `url` with test credentials."""
    settings = Settings(dynamodb_endpoint=url, aws_region="eu-west-1", table_prefix=table_prefix,
                        aws_access_key_id=SecretStr("AKIDTEST"),
                        aws_secret_access_key=SecretStr("secret/key"))
    return DynamoDB(settings, base_delay=0.001, **kwargs)
