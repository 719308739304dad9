"""The layout keeps its promises: the generic packages know no application, and no two
modules import each other at load time.

Read statically (the source, not a running interpreter), so a lazy import inside a
function counts for the first rule, and only module-level imports for the second.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration.contract import load_contract
from migration.shop import SHOP_CONTRACT

ROOT = Path(__file__).resolve().parents[2]
GENERIC = ("migration", "reconcile", "wrappers")
# Packages of applications built on the toolkit (each with its own contract).
APPLICATIONS = ("migration.shop", "migration.registration")


def modules() -> Iterator[tuple[str, Path]]:
    for package in GENERIC:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            yield name.removesuffix(".__init__"), path


def is_application(module: str) -> bool:
    return any(module == app or module.startswith(app + ".") for app in APPLICATIONS)


def generic_modules() -> list[tuple[str, Path]]:
    return [(name, path) for name, path in modules() if not is_application(name)]


def imported(tree: ast.AST, module: str, *, top_level_only: bool) -> set[str]:
    """Absolute module names `module` imports (relative imports resolved)."""
    found: set[str] = set()
    nodes = tree.body if top_level_only else list(ast.walk(tree))  # type: ignore[attr-defined]
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[:-node.level]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_the_generic_packages_import_no_application() -> None:
    offenders = {name: sorted(m for m in imported(ast.parse(path.read_text()), name,
                                                  top_level_only=False) if is_application(m))
                 for name, path in generic_modules()}
    assert {k: v for k, v in offenders.items() if v} == {}


def application_names() -> dict[str, set[str]]:
    """Names only an application would use, as identifiers (its entities and entry points)
    and as strings (those, and its MySQL tables: "users" is a plain word in code)."""
    contract = load_contract(SHOP_CONTRACT)
    identifiers = {e.name for e in contract.entities()} - {"User", "Order"}
    identifiers |= {"SHOP_CONTRACT", "SHOP_ENTITIES", "open_shop", "Shop", "RegistrationService"}
    strings = identifiers | {"User", "Order", "registration-system", "waitlist_entries"}
    strings |= {e.source.table for e in contract.source_entities() if e.source is not None}
    return {"identifier": identifiers, "string": strings}


def code_names(tree: ast.AST) -> Iterator[tuple[str, str]]:
    """("identifier" or "string", text) of every identifier and string constant,
    docstrings left out (they may give examples)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield "identifier", node.id
        elif isinstance(node, ast.Attribute):
            yield "identifier", node.attr
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            yield "identifier", node.name
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                id(node) not in docstrings:
            yield "string", node.value


def test_the_generic_packages_name_no_application_entity() -> None:
    names = application_names()
    found = {name: sorted({text for kind, text in code_names(ast.parse(path.read_text()))
                           if text in names[kind]})
             for name, path in generic_modules()}
    assert {k: v for k, v in found.items() if v} == {}


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    known = {name for name, _ in modules()}
    for name, path in modules():
        graph[name] = {m for m in imported(ast.parse(path.read_text()), name, top_level_only=True)
                       if m in known and m != name}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    # A package importing its own submodules (its public names) is not a cycle of concepts.
    real = [c for c in cycles if not any(b.startswith(a + ".") for a, b in zip(c, c[1:], strict=False))]
    assert real == []


@pytest.mark.parametrize("package", GENERIC)
def test_every_module_says_what_it_owns(package: str) -> None:
    missing = [name for name, path in modules() if name.split(".")[0] == package
               and ast.get_docstring(ast.parse(path.read_text())) is None
               and path.name != "__init__.py" and "generated" not in name]
    assert missing == []


def test_every_package_and_alembic_environment_is_shipped() -> None:
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    packages = {".".join(path.parent.relative_to(ROOT).parts)
                for package in GENERIC for path in (ROOT / package).rglob("__init__.py")}
    environments = {"migration.schema_migrations"} | {
        "migration.schema_migrations." + ".".join(path.relative_to(ROOT / "alembic").parts)
        for path in (ROOT / "alembic").rglob("*") if path.is_dir() and path.name != "__pycache__"}
    assert listed == packages | environments
