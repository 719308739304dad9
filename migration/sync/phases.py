"""The phases of an entity's migration, in order, and what each means for its writes and reads.

| phase | writes | reads |
|---|---|---|
| `mysql_only` | MySQL | MySQL |
| `dual_write` | MySQL first, then DynamoDB | MySQL |
| `shadow_read` | as dual_write | MySQL answers; DynamoDB is compared |
| `dynamodb_read` | as dual_write | DynamoDB answers (a percentage of keys) |
| `dynamodb_only` | DynamoDB alone | DynamoDB |

The sync engine keeps DynamoDB following MySQL for the three middle phases only: in
`dynamodb_only` MySQL is no longer written, so an item of such an entity must never be
recomputed from MySQL (it would be stale).
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    MYSQL_ONLY = "mysql_only"
    DUAL_WRITE = "dual_write"
    SHADOW_READ = "shadow_read"
    DYNAMODB_READ = "dynamodb_read"
    DYNAMODB_ONLY = "dynamodb_only"

    @property
    def writes_dynamodb(self) -> bool:
        return self is not Phase.MYSQL_ONLY

    @property
    def writes_mysql(self) -> bool:
        return self is not Phase.DYNAMODB_ONLY

    @property
    def follows_mysql(self) -> bool:
        """DynamoDB's items are kept in step with MySQL's rows by dual-write."""
        return self.writes_dynamodb and self.writes_mysql

    @property
    def position(self) -> int:
        return list(Phase).index(self)

    def next(self) -> Phase | None:
        """The phase after this one (None after the last)."""
        phases = list(Phase)
        return phases[self.position + 1] if self.position + 1 < len(phases) else None
