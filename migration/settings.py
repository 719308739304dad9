"""Settings: one object, read from `MIGRATE_*` environment variables (nested with `__`).

CLI options map onto the same object, so every knob has one source of truth.
Secrets are `SecretStr` and never printed: use `Settings.safe_dict()` or
`redacted_mysql_url()` to show them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from migration.errors import ConfigError


class GateSettings(BaseModel):
    """What must hold before an entity moves forward (see `migration.ops.gates`).

    The defaults are AWS's stated ones: under 1% dual-write failures over 24 h
    before shadow reads, under 0.1% shadow mismatches over 24 h before DynamoDB
    answers reads, 48 h stable before DynamoDB alone. Tests use short windows."""

    window_seconds: float = Field(default=86400.0, gt=0, description=(
        "Window over which dual-write failures and shadow mismatches are counted."))
    max_failure_rate: float = Field(default=0.01, ge=0, le=1, description=(
        "Dual-write failures / dual-writes must stay under this (to shadow_read and on)."))
    min_dual_writes: int = Field(default=1, ge=0, description=(
        "Dual-writes the window must hold for its failure rate to count as evidence."))
    outbox_max_age_seconds: float = Field(default=60.0, ge=0, description=(
        "No outbox row may be older than this."))
    max_mismatch_rate: float = Field(default=0.001, ge=0, le=1, description=(
        "Shadow mismatches / comparisons must stay under this (to dynamodb_read and on)."))
    min_comparisons: int = Field(default=1, ge=0, description=(
        "Shadow comparisons the window must hold (to dynamodb_read)."))
    clean_reconciles: int = Field(default=3, ge=1, description=(
        "Consecutive clean reconciles needed (to dynamodb_read and dynamodb_only); "
        "to shadow_read, one clean reconcile after the backfill."))
    final_window_seconds: float = Field(default=172800.0, gt=0, description=(
        "To dynamodb_only: time in dynamodb_read, and the window of the same checks."))


class Settings(BaseSettings):
    """Every setting of the toolkit; environment variables are `MIGRATE_<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix="MIGRATE_", env_nested_delimiter="__", extra="ignore"
    )

    mysql_url: SecretStr = Field(
        default=SecretStr("mysql+pymysql://root@127.0.0.1:3306/app"),
        description="SQLAlchemy URL of the source MySQL/MariaDB database.",
    )
    mysql_password: SecretStr | None = Field(
        default=None, description="Overrides the password in mysql_url when set."
    )
    dynamodb_endpoint: str = Field(
        default="", description="DynamoDB endpoint URL; empty means AWS."
    )
    aws_region: str = "us-east-1"
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    table_prefix: str = Field(
        default="", description="Prepended to every DynamoDB table name."
    )
    contract: Path | None = Field(
        default=None, description="Path to the contract file (every command that reads one).")
    schema_wait_seconds: float = Field(
        default=300.0, description="How long schema apply waits for a table or index."
    )
    price_per_million_wru: float = Field(
        default=0.625, description="On-demand price (USD) per million write request units."
    )
    flags: dict[str, str] = Field(
        default_factory=dict,
        description="Phase overrides per entity, e.g. MIGRATE_FLAGS__USER=dynamodb_read:25; "
                    "they win over the flags table.",
    )
    failure_policy: dict[str, str] = Field(
        default_factory=dict,
        description="Per entity: rollback (default) or outbox, e.g. MIGRATE_FAILURE_POLICY__CART=outbox.",
    )
    flag_cache_seconds: float = Field(
        default=2.0, description="How long a process trusts the flags it read from MySQL."
    )
    fence_wait_seconds: float = Field(
        default=30.0, gt=0,
        description="How long a dynamodb_only write waits at a closed write fence (a "
                    "catch-up switching the application back) before it gives up.")
    gates: GateSettings = Field(
        default_factory=GateSettings,
        description="Gates between phases, e.g. MIGRATE_GATES__MAX_FAILURE_RATE=0.01.")
    entity_gates: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per entity (flag name), gate settings over `gates`, e.g. "
                    "MIGRATE_ENTITY_GATES__USER__CLEAN_RECONCILES=5.")
    outcome_flush_seconds: float = Field(
        default=2.0, gt=0,
        description="How often a process adds its dual-write and shadow-read counts to MySQL.")
    outcome_retention_days: float = Field(
        default=14.0, gt=0,
        description="How long dual-write and shadow-read counts are kept (longer than any "
                    "gate window).")
    json_logs: bool = Field(
        default=False, description="Log one JSON object per line (migration.ops.logs).")

    def gates_for(self, flag: str) -> GateSettings:
        """The gate settings of one entity (its flag name): `gates`, overridden per entity."""
        extra = {n.lower(): o for n, o in self.entity_gates.items()}.get(flag.lower(), {})
        return GateSettings.model_validate(
            {**self.gates.model_dump(), **{k.lower(): v for k, v in extra.items()}})

    def sqlalchemy_url(self) -> URL:
        """The MySQL URL as a SQLAlchemy URL object, password applied; a URL that does not
        parse is a ConfigError naming it masked."""
        try:
            url = make_url(self.mysql_url.get_secret_value())
        except Exception as err:  # noqa: BLE001 - SQLAlchemy raises ValueError or ArgumentError
            raise ConfigError(
                f"the MySQL URL {self.redacted_mysql_url()} cannot be parsed ({err}): write it as "
                "mysql+pymysql://USER:PASSWORD@HOST:PORT/DATABASE in MIGRATE_MYSQL_URL "
                "(or --mysql-url)") from err
        if self.mysql_password is not None:
            url = url.set(password=self.mysql_password.get_secret_value())
        return url

    def redacted_mysql_url(self) -> str:
        """The MySQL URL with any password masked, safe for logs and reports; never fails
        (a URL that does not parse has everything between `://` and its last `@` masked)."""
        raw = self.mysql_url.get_secret_value()
        try:
            url = make_url(raw)
        except Exception:  # noqa: BLE001 - masking must work on any text
            return mask_url_credentials(raw)
        return url.render_as_string(hide_password=True)

    def table_name(self, logical: str) -> str:
        """The physical DynamoDB table name for a contract table name."""
        return f"{self.table_prefix}{logical}"

    def aws_credentials(self) -> dict[str, str]:
        """Explicit credentials for boto3, or placeholders for a local endpoint.

        DynamoDB Local keeps one database per access key and region, so every
        process of a local run must use the same pair: we pin it here.
        """
        if self.aws_access_key_id and self.aws_secret_access_key:
            return {
                "aws_access_key_id": self.aws_access_key_id.get_secret_value(),
                "aws_secret_access_key": self.aws_secret_access_key.get_secret_value(),
            }
        if self.dynamodb_endpoint:
            return {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
        return {}

    def safe_dict(self) -> dict[str, Any]:
        """Settings for display: secrets masked, the URL's password hidden."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "mysql_url":
                value = self.redacted_mysql_url()
            elif isinstance(value, SecretStr):
                value = "**********"
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


def mask_url_credentials(text: str) -> str:
    """`text` with whatever stands between a URL's `://` and its last `@` replaced by `***`
    (the user too: a URL that does not parse cannot say where the password ends)."""
    return re.sub(r"://\S*@", "://***@", text)


class Overrides:
    """Settings from the environment with some fields replaced (a command line's options);
    built once, on first use."""

    def __init__(self, values: dict[str, Any] | None = None):
        self.values = {k: v for k, v in (values or {}).items() if v is not None}
        self._settings: Settings | None = None

    def merged(self, values: dict[str, Any]) -> Overrides:
        """These overrides with `values` (those not None) on top."""
        return Overrides({**self.values, **{k: v for k, v in values.items() if v is not None}})

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings().model_copy(update=self.values)
        return self._settings
