"""Draft a contract from a live MySQL schema and the statements its application runs.

The draft is a starting point a person edits, never a finished design. From the
schema (`migration.source.tables`) it makes one entity per table, with its
`source`, fields typed by the toolkit's type rules, key templates from the
primary key and `unique` guards for single-column unique indexes. From the
statements (`migration.source.statements.Workload`) it adds what the
application's reads ask for:

- an access pattern for each statement it can express (GetItem by the whole
  key, Query by part of it or through a GSI, BatchGetItem for a key `IN` list,
  Scan, and PutItem/UpdateItem/DeleteItem by key), with the statement and its
  frequency in the pattern's description;
- a GSI for each lookup by a non-key column (partition key the column compared
  with `=`, sort key the range or ORDER BY column);
- `lookups` for the columns a join along a foreign key copies from a parent row;
- `embeds` for the children read together with their parent (a join from the
  parent, or the children of a list of parents: `WHERE fk IN (...)`).

Two layouts. `single-table`: one DynamoDB table, keys `PK`/`SK` with entity
prefixes (`USER#{id}`, `#META`), and a table whose key starts with a foreign key
to another table's single-column key lives in its parent's partition
(`EVENT#{event_id}` / `REGISTRATION#{user_id}`); GSIs `GSI1..n` are shared
(overloaded) by the entities. `per-table`: one DynamoDB table per entity, keys
`PK`/`SK` holding the key columns, GSIs keyed by the columns themselves. Key
attributes are strings in both (unique guard items need a string key).

Everything it cannot decide is written as a note: `_notes` lists on the
document and on entities (keys starting with `_` are comments in the format),
and `Draft.notes` for the command to print.

Modules, in the order a draft uses them: `naming` (names and field types),
`design` (the key design), `plan` (what it decided), `document` (the contract
document and its YAML).
"""

from __future__ import annotations

from migration.contract.draft.design import LAYOUTS, Designer, DraftError, DraftOptions
from migration.contract.draft.document import Draft, build_document, plain
from migration.contract.draft.naming import field_type, singular
from migration.contract.load import parse_contract
from migration.source.statements import Workload
from migration.source.tables import SourceSchema

__all__ = ["LAYOUTS", "Draft", "DraftError", "DraftOptions", "draft", "field_type", "singular"]


def draft(schema: SourceSchema, workload: Workload, options: DraftOptions | None = None) -> Draft:
    """A contract drafted from `schema` and the statements of `workload`; validated by the
    contract loader before it is returned (a draft that did not load would be a bug here,
    and raises its ContractError)."""
    options = options or DraftOptions()
    designer = Designer(schema, workload, options)
    designer.make_entities(designer.choose_tables())
    if not designer.entities:
        raise DraftError("no table of the selection has a primary key: nothing to draft "
                         "(see the notes: " + "; ".join(designer.notes) + ")")
    designer.read_statements()
    designer.name_indexes()
    designer.unique_guards()
    document, counts = build_document(designer)
    contract = parse_contract(plain(document), file="<draft>")
    return Draft(document=document, contract=contract, notes=designer.all_notes(),
                 workload=designer.workload, schema=schema, layout=options.layout,
                 counts=counts)
