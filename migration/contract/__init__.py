"""The contract: one declarative file that drives all mapping from MySQL rows to DynamoDB items."""

from migration.contract.keys import KeyTemplate
from migration.contract.load import load_contract, parse_contract, read_document
from migration.contract.model import Contract, Entity, Table

__all__ = ["Contract", "Entity", "KeyTemplate", "Table", "load_contract", "parse_contract",
           "read_document"]
