"""What a command works with, built in one place: the contract, the MySQL engine, the
DynamoDB client.

Every command of `migration.commands` (and `reconcile`) opens its `Resources` from
its settings and closes them when it is done; each part is built on first use, so
a command that never touches DynamoDB never builds a client, and one that needs
no contract never asks for one.
"""

from __future__ import annotations

from functools import cached_property
from typing import Self

from sqlalchemy.engine import Engine

from migration.contract import load_contract
from migration.contract.model import Contract
from migration.dynamodb.client import DynamoDB
from migration.errors import ConfigError
from migration.settings import Settings
from migration.source.mysql import create_engine


class NoContract(ConfigError):
    """A command that reads a contract was given none."""


class Resources:
    """The contract, engine and client of one command run (see the module docstring)."""

    def __init__(self, settings: Settings, *, pool_size: int = 4):
        self.settings = settings
        self.pool_size = pool_size

    @cached_property
    def contract(self) -> Contract:
        path = self.settings.contract
        if path is None:
            raise NoContract("no contract given: pass --contract PATH (or set MIGRATE_CONTRACT) "
                             "to the contract of your application")
        return load_contract(path)

    @cached_property
    def engine(self) -> Engine:
        return create_engine(self.settings, pool_size=self.pool_size)

    @cached_property
    def ddb(self) -> DynamoDB:
        return DynamoDB(self.settings)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
