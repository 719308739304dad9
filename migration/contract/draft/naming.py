"""How MySQL's names and types become the contract's.

Entity names are the singular of the table's in PascalCase (`waitlist_entries` →
`WaitlistEntry`, entity type `WAITLIST_ENTRY`); field types follow the toolkit's type
rules (`migration.mapping.values`). A column whose type has no exact DynamoDB form, or
whose values may not fit an item, gets a note saying what was chosen and why.
"""

from __future__ import annotations

import re

from migration.source.tables import Column

DYNAMODB_MAX_DIGITS = 38
# What the contract accepts as a MySQL table or column name (`migration.contract.load`).
SQL_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_INTEGERS = ("tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year")
_DECIMALS = ("decimal", "numeric", "dec", "fixed")
_FLOATS = ("float", "double", "real", "double precision")
_TEXTS = ("char", "varchar", "tinytext", "text", "enum", "set", "inet4", "inet6", "nchar",
          "nvarchar")
_LARGE = ("mediumtext", "longtext", "mediumblob", "longblob")
_BINARIES = ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob")
_SPATIAL = ("geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
            "multipolygon", "geometrycollection", "geomcollection")


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def singular(word: str) -> str:
    """`categories` → `category`, `addresses` → `address`, `users` → `user`."""
    lower = word.lower()
    if lower.endswith("ies") and len(word) > 4:
        return word[:-3] + ("Y" if word[-1].isupper() else "y")
    if lower.endswith(("sses", "shes", "ches", "xes", "zes", "uses")):
        return word[:-2]
    if lower.endswith(("ss", "us", "is")) or not lower.endswith("s") or len(word) < 3:
        return word
    return word[:-1]


def plain(*names: str) -> bool:
    """True when every name is one the contract can hold as a MySQL table or column."""
    return all(SQL_NAME.match(name) for name in names)


def pascal(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in _words(name))


def snake(name: str) -> str:
    return "_".join(w.lower() for w in _words(name))


def entity_words(table: str) -> list[str]:
    words = _words(table) or ["table"]
    return words[:-1] + [singular(words[-1])]


def identifier(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return text if re.match(r"^[A-Za-z_]", text) else f"t_{text}"


def unique_name(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate.lower() in used:
        candidate, n = f"{name}_{n}" if name[-1:].isdigit() else f"{name}{n}", n + 1
    used.add(candidate.lower())
    return candidate


def table_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "", pascal(text)) or "Table"
    return name if len(name) >= 3 else name + "Table"


def field_type(column: Column) -> tuple[str, str | None]:
    """The contract field type for a MySQL column, and a note when it has no exact
    DynamoDB form or may not fit an item."""
    kind, full = column.data_type, column.column_type
    where = f"{column.name} {full.upper()}"
    if kind in ("bool", "boolean") or (kind == "tinyint" and full.startswith("tinyint(1)")):
        return "boolean", None
    if kind in _INTEGERS:
        return "integer", None
    if kind in _DECIMALS:
        if (column.precision or 0) > DYNAMODB_MAX_DIGITS:
            return "string", (f"{where}: DynamoDB numbers hold {DYNAMODB_MAX_DIGITS} significant "
                              f"digits, this column up to {column.precision}; drafted as a string "
                              "to stay exact (make it decimal if its values fit)")
        return "decimal", None
    if kind in _FLOATS:
        return "decimal", None
    if kind in ("datetime", "timestamp"):
        return "datetime", None
    if kind in ("date", "time"):
        return "string", None
    if kind == "json":
        return "object", (f"{where}: JSON; drafted as an object (a map): make it `array` "
                          "(with an item_type) if it holds lists")
    if kind == "uuid":
        return "uuid", None
    if kind in _TEXTS or kind in ("tinytext", "text", "mediumtext", "longtext"):
        note = (f"{where}: can exceed DynamoDB's 400 KB item limit; keep large values "
                "elsewhere (S3) if they do") if kind in _LARGE else None
        return "string", note
    if kind in _BINARIES:
        note = (f"{where}: can exceed DynamoDB's 400 KB item limit; keep large values "
                "elsewhere (S3) if they do") if kind in _LARGE else None
        return "binary", note
    if kind == "bit":
        return "binary", (f"{where}: BIT has no DynamoDB form; drafted as binary (the raw "
                          "bytes): a boolean or an integer may suit its values better")
    if kind in _SPATIAL:
        return "binary", (f"{where}: spatial types have no DynamoDB form; drafted as binary "
                          "(MySQL's internal WKB bytes): consider a geohash or coordinates")
    return "string", f"{where}: no rule for this type; drafted as a string"
