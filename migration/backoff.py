"""Exponential backoff with full jitter: the one formula every retry loop of the toolkit
waits by (DynamoDB throttling and unprocessed items, transaction conflicts, MySQL
deadlocks and lock wait timeouts).

Full jitter (a uniform draw between 0 and the capped exponential) spreads retries of
many workers apart, which a fixed exponential would keep in step.
"""

from __future__ import annotations

import random
import time


def jittered(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait before retry `attempt` (1-based): uniform in [0, min(cap, base·2^(attempt-1))]."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def pause(attempt: int, *, base: float, cap: float) -> None:
    """Wait `jittered(attempt)` seconds."""
    time.sleep(jittered(attempt, base=base, cap=cap))
