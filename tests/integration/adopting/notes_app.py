"""The notes application's dual-write: one wrapper per entity, public names only."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration.settings import Settings
from migration.sync.engine import Touch
from wrappers.base import DualWriteWrapper
from wrappers.dual_write import DualWrite


class Authors(DualWriteWrapper):
    flag = "author"  # the contract's entity_type, in lower case

    def create(self, name: str, email: str) -> int:
        row = {"name": name, "email": email}

        def insert(conn: Connection) -> int:
            result = conn.execute(sa.text("INSERT INTO authors (name, email) VALUES (:name, :email)"),
                                  row)
            return int(result.lastrowid)

        return self._write("authors.create", [Touch("authors", values=row)], insert,
                           created=lambda author_id: [("authors", (author_id,))])

    def rename(self, author_id: int, name: str) -> None:
        # Every note of the author carries the name: the toolkit rewrites them too.
        self._write("authors.rename", [Touch("authors", (author_id,), {"name": name})],
                    lambda conn: conn.execute(sa.text("UPDATE authors SET name = :n WHERE id = :i"),
                                              {"n": name, "i": author_id}))


class Notes(DualWriteWrapper):
    flag = "note"

    def create(self, author_id: int, title: str, body: str) -> int:
        row = {"author_id": author_id, "title": title, "body": body}

        def insert(conn: Connection) -> int:
            result = conn.execute(sa.text("INSERT INTO notes (author_id, title, body) "
                                          "VALUES (:author_id, :title, :body)"), row)
            return int(result.lastrowid)

        return self._write("notes.create", [Touch("notes", values=row)], insert,
                           created=lambda note_id: [("notes", (note_id,))])

    def delete(self, note_id: int) -> None:
        self._write("notes.delete", [Touch("notes", (note_id,), delete=True)],
                    lambda conn: conn.execute(sa.text("DELETE FROM notes WHERE id = :i"),
                                              {"i": note_id}))


class NotesApp(DualWrite):
    def __init__(self, settings: Settings, **kwargs: Any):
        super().__init__(settings, settings.contract, **kwargs)
        self.authors = Authors(self)
        self.notes = Notes(self)
