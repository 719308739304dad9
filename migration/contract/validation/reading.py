"""Reading a contract file: YAML 1.2 (on/yes/no are words), duplicate keys refused with
their line, text that is not UTF-8 refused with its byte, and the likely misspelling of
a missing key named."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from migration.contract.validation.checker import key_path
from migration.errors import ContractError, ContractIssue


class _Yaml12Loader(yaml.SafeLoader):
    """A safe YAML loader with YAML 1.2 booleans: only true/false are booleans.

    YAML 1.1 reads `on`, `off`, `yes` and `no` as booleans, which would turn the
    contract's `on:` join keys into `True`.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def read_document(path: str | Path) -> Any:
    """Parse a YAML or JSON file. A file that is not UTF-8 text, a syntax error, or a
    YAML mapping holding one key twice becomes a ContractError naming the file (and
    where in it), never a traceback."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ContractError([ContractIssue(str(path), "$", f"cannot read file: {err}")]) from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ContractError([ContractIssue(
            str(path), "$", f"not UTF-8 text at byte {err.start} (line {line}): save the file "
            "as UTF-8")]) from err
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return _load_yaml(text, str(path))
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        kind = path.suffix[1:] or "YAML"
        raise ContractError([ContractIssue(str(path), "$", f"not valid {kind}: {err}")]) from err


def _load_yaml(text: str, file: str) -> Any:
    """YAML 1.2 booleans, and no key twice in one mapping: YAML itself would keep the
    last value without a word, and the first would be lost."""
    loader = _Yaml12Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        duplicates = [ContractIssue(file, where, message)
                      for where, message in _duplicate_keys(loader, node, "$", set())]
        if duplicates:
            raise ContractError(duplicates)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _duplicate_keys(loader: _Yaml12Loader, node: yaml.Node, path: str,
                    seen: set[int]) -> Iterator[tuple[str, str]]:
    """(JSON path, message) for every key given twice in one mapping, at any depth."""
    if id(node) in seen:  # an alias of a node already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(loader, item, f"{path}[{i}]", seen)
    elif isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges keys on purpose; later ones win
            key = loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) \
                else None
            where = key_path(path, str(key))
            line = key_node.start_mark.line + 1
            if key is not None and key in first:
                yield where, (f"duplicate key {key!r} at line {line} (first at line "
                              f"{first[key]}): YAML would keep only the last value; remove "
                              "one or rename it")
            elif key is not None:
                first[key] = line
            yield from _duplicate_keys(loader, value_node, where, seen)
























