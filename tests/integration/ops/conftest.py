"""A small application for the operations tests: the notes contract of the adopting
guide (authors, notes with the author's name), its wrappers with a shadow-read `get`,
on real MariaDB and DynamoDB Local, with gates on short windows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration.dynamodb.client import DynamoDB
from migration.dynamodb.schema import apply
from migration.settings import GateSettings, Settings
from migration.source.mysql import create_engine
from migration.sync.engine import Touch
from wrappers.base import DualWriteWrapper
from wrappers.dual_write import DualWrite

CONTRACT = Path(__file__).parents[1] / "adopting" / "notes_contract.yaml"
# A body may be longer here than a DynamoDB item may be: such a row is a dead letter.
SCHEMA = """
CREATE TABLE authors (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL,
                      email VARCHAR(200) NOT NULL UNIQUE);
CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, author_id INT NOT NULL,
                    title VARCHAR(200) NOT NULL, body MEDIUMTEXT NULL,
                    FOREIGN KEY (author_id) REFERENCES authors (id) ON DELETE CASCADE);
"""
GATES = GateSettings(window_seconds=300, max_failure_rate=0.01, min_dual_writes=1,
                     outbox_max_age_seconds=60, max_mismatch_rate=0.001, min_comparisons=1,
                     clean_reconciles=2, final_window_seconds=2)


@dataclass
class Note:
    id: int
    author_id: int
    title: str | None
    body: str | None


class Notes(DualWriteWrapper):
    flag = "note"

    def create(self, author_id: int, title: str, body: str = "") -> int:
        row = {"author_id": author_id, "title": title, "body": body}

        def insert(conn: Connection) -> int:
            result = conn.execute(sa.text("INSERT INTO notes (author_id, title, body) "
                                          "VALUES (:author_id, :title, :body)"), row)
            return int(result.lastrowid)

        return self._write("notes.create", [Touch("notes", values=row)], insert,
                           created=lambda note_id: [("notes", (note_id,))])

    def get(self, note_id: int, author_id: int) -> Note | None:
        def from_mysql() -> Note | None:
            row = self._mysql(lambda c: c.execute(sa.text(
                "SELECT id, author_id, title, body FROM notes WHERE id = :i"),
                {"i": note_id}).first())
            return None if row is None else Note(*row)

        def from_dynamodb() -> Note | None:
            table = self.app.ddb.table_name("Notes")
            item = self.app.ddb.call("GetItem", TableName=table, Key={
                "PK": {"S": f"AUTHOR#{author_id}"}, "SK": {"S": f"NOTE#{note_id}"}}).get("Item")
            if item is None:
                return None
            return Note(int(item["id"]["N"]), int(item["author_id"]["N"]),
                        item.get("title", {}).get("S"), item.get("body", {}).get("S"))

        return self._read("notes.get", [note_id], from_mysql, from_dynamodb)


class NotesApp(DualWrite):
    def __init__(self, settings: Settings, **kwargs: Any):
        super().__init__(settings, settings.contract, **kwargs)
        self.notes = Notes(self)


@pytest.fixture
def ops_settings(live_settings: Settings) -> Iterator[Settings]:
    settings = live_settings.model_copy(update={"contract": CONTRACT, "gates": GATES,
                                                "outcome_flush_seconds": 0.05})
    engine = create_engine(settings)
    with engine.begin() as conn:
        for statement in filter(str.strip, SCHEMA.split(";")):
            conn.execute(sa.text(statement))
        for n in range(3):
            conn.execute(sa.text("INSERT INTO authors (name, email) VALUES (:n, :e)"),
                         {"n": f"author {n}", "e": f"a{n}@example.org"})
        for n in range(12):
            conn.execute(sa.text("INSERT INTO notes (author_id, title, body) VALUES (:a, :t, :b)"),
                         {"a": n % 3 + 1, "t": f"note {n}", "b": "text"})
    engine.dispose()
    from migration.contract import load_contract

    apply(load_contract(CONTRACT), DynamoDB(settings))
    yield settings


@pytest.fixture
def app(ops_settings: Settings) -> Iterator[NotesApp]:
    opened = NotesApp(ops_settings)
    yield opened
    opened.close()
