"""`migrate codegen` for every example schema: deterministic, ruff-clean, importable,
complete (a method per pattern that calls the runtime, no stubs), with models equal
to the runtime's and a fingerprint that refuses a changed contract."""

from __future__ import annotations

import ast
import copy
import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migration.contract.load import load_contract, parse_contract, read_document
from migration.dynamodb.codegen import GeneratedCodeOutOfDate, contract_fingerprint, generate, render
from migration.dynamodb.models import build_model
from migration.shop import SHOP_CONTRACT

FIXTURES = Path(__file__).parents[2] / "fixtures"
SCHEMAS = sorted((FIXTURES / "mcp-schemas").glob("*.json")) + [
    FIXTURES / "mcp-schemas-extra" / "package_delivery_schema.json",
    FIXTURES / "runtime" / "library.yaml", SHOP_CONTRACT]


@pytest.fixture
def importable(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("gen_")]:
        del sys.modules[name]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda p: p.stem)
def test_generated_code_is_complete_and_importable(schema: Path, importable: Path) -> None:
    contract = load_contract(schema)
    package = f"gen_{schema.stem.replace('-', '_')}"
    written = generate(contract, importable / package)
    assert [p.name for p in written] == ["__init__.py", "entities.py", "repositories.py",
                                         "transactions.py"]
    assert render(contract) == {p.name: p.read_text() for p in written}  # deterministic

    for path in written:
        source = path.read_text()
        assert "TODO" not in source
        tree = ast.parse(source)
        for node in ast.walk(tree):
            assert not isinstance(node, ast.Pass), f"{path.name}: a `pass` stub"

    module = importlib.import_module(package)
    repositories = importlib.import_module(f"{package}.repositories")
    for entity in contract.entities():
        cls = getattr(repositories, f"{entity.name}Repository")
        for pattern in entity.access_patterns:
            method = getattr(cls, pattern.name)
            source = ast.unparse(ast.parse(_method_source(written[2], cls.__name__, pattern.name)))
            assert "self.runtime.run_with" in source and repr(pattern.name) in source, method
        model = getattr(module, entity.name)
        runtime = build_model(entity)
        assert model.__entity_name__ == entity.name
        assert _shape(model) == _shape(runtime)
        assert _shape(getattr(module, f"{entity.name}Partial")) == _shape(build_model(entity, partial=True))
    transactions = importlib.import_module(f"{package}.transactions").Transactions
    for cross in contract.cross_table_patterns:
        assert callable(getattr(transactions, cross.name))
    assert contract_fingerprint(contract) == module.FINGERPRINT
    assert module.model_set(contract).full(next(contract.entities()).name) is getattr(
        module, next(contract.entities()).name)


def _method_source(path: Path, cls: str, method: str) -> str:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    return ast.unparse(item)
    raise AssertionError(f"{cls}.{method} not generated")


def _shape(model: Any) -> dict[str, tuple[str, bool, str | None]]:
    return {name: (repr(f.annotation), f.is_required(), f.alias)
            for name, f in model.model_fields.items()}


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is not installed")
def test_generated_code_is_ruff_clean(tmp_path: Path) -> None:
    for schema in SCHEMAS:
        generate(load_contract(schema), tmp_path / f"gen_{schema.stem}")
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    config = Path(__file__).parents[3] / "pyproject.toml"
    result = subprocess.run([ruff, "check", "--no-cache", "--config", str(config), str(tmp_path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_changed_contract_is_refused_by_generated_code(importable: Path) -> None:
    schema = FIXTURES / "mcp-schemas" / "user_registration_schema.json"
    generate(load_contract(schema), importable / "gen_registration")
    module = importlib.import_module("gen_registration")
    document = copy.deepcopy(read_document(schema))
    document["tables"][0]["entities"]["User"]["fields"].append({"name": "age", "type": "integer"})
    changed = parse_contract(document)
    with pytest.raises(GeneratedCodeOutOfDate, match="regenerate"):
        module.Transactions(changed, ddb=None)
    # MySQL sources do not matter to generated code.
    shop = copy.deepcopy(read_document(SHOP_CONTRACT))
    shop["tables"][0]["entities"]["User"]["source"]["table"] = "people"
    assert contract_fingerprint(parse_contract(shop)) == contract_fingerprint(load_contract(SHOP_CONTRACT))


def test_a_key_attribute_added_to_an_index_changes_the_fingerprint() -> None:
    schema = FIXTURES / "mcp-schemas-extra" / "package_delivery_schema.json"
    document = copy.deepcopy(read_document(schema))
    table = document["tables"][0]
    table["gsi_list"][2]["partition_key"] = ["courier_id", "status"]
    table["entities"]["Parcel"]["gsi_mappings"][2]["pk_template"] = ["{courier_id}", "{status}"]
    table["entities"]["Parcel"]["access_patterns"][11]["parameters"].append(
        {"name": "status", "type": "string"})
    assert contract_fingerprint(parse_contract(document)) != contract_fingerprint(load_contract(schema))
