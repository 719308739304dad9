"""Read a contract (or a plain schema in AWS's DynamoDB MCP format) from YAML/JSON and
validate it.

Every problem is collected, not just the first: a `ContractError` lists each
one with the file, the JSON path inside it (``$.tables[0].entities.User...``)
and the reason. A file that loads is safe for every later stage to trust. The
validator lives in `migration.contract.validation`, by the sections of the
contract it checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migration.contract.model import Contract
from migration.contract.validation.checker import key_path
from migration.contract.validation.reading import read_document
from migration.contract.validation.tables import ContractChecks

__all__ = ["key_path", "load_contract", "parse_contract", "read_document"]


def load_contract(path: str | Path) -> Contract:
    """Read and validate a contract file; raises ContractError listing every problem."""
    return parse_contract(read_document(path), str(path), Path(path))


def parse_contract(data: Any, file: str = "<contract>", path: Path | None = None) -> Contract:
    """Validate an already-parsed contract document."""
    return ContractChecks(file).contract(data, path)
