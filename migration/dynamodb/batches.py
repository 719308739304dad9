"""Batch requests sent until DynamoDB has taken all of them: one loop for BatchWriteItem's
`UnprocessedItems` and BatchGetItem's `UnprocessedKeys`, with backoff, for every caller
(backfill, reconcile's re-reads, the access-pattern runtime).

DynamoDB may take part of a batch and hand the rest back (throttling, partition load);
that is not an error until it keeps happening. After `attempts` sends with something
still left, `Unprocessed` is raised: the caller's run fails instead of counting the
leftovers as done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from migration.backoff import pause
from migration.errors import MigrateError, Transient

Answer = dict[str, Any]


class Unprocessed(MigrateError, Transient):
    """DynamoDB kept leaving part of a batch unprocessed after every retry."""

    def __init__(self, operation: str, left: int, attempts: int):
        self.operation = operation
        self.left = left
        self.attempts = attempts
        super().__init__(f"{operation} left {left} request(s) unprocessed after {attempts} "
                         "attempts")


def _count(remaining: dict[str, Any]) -> int:
    return sum(len(value["Keys"]) if isinstance(value, dict) else len(value)
               for value in remaining.values())


def until_processed(operation: str, send: Callable[[Any], Answer], first: Any,
                    next_request: Callable[[dict[str, Any]], Any], *, attempts: int = 12,
                    base: float = 0.05, cap: float = 5.0,
                    before_send: Callable[[], None] | None = None) -> Iterator[Answer]:
    """Send `first`, then whatever each answer leaves unprocessed (`next_request` turns the
    leftovers into the next request), yielding every answer; `before_send` runs before
    each send (a deadline check). Raises `Unprocessed` after `attempts` sends."""
    leftover_key = "UnprocessedItems" if operation == "BatchWriteItem" else "UnprocessedKeys"
    request = first
    attempt = 0
    while True:
        if before_send is not None:
            before_send()
        answer = send(request)
        attempt += 1
        yield answer
        remaining = answer.get(leftover_key)
        if not remaining:
            return
        if attempt >= attempts:
            raise Unprocessed(operation, _count(remaining), attempt)
        pause(attempt, base=base, cap=cap)
        request = next_request(remaining)
