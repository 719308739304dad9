"""The statement reader takes whatever a log holds: any text is read without an error
(what it cannot read keeps a reason), and a statement's normalized text is the same
whatever literals it ran with."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from migration.source.statements import Workload, parse

SQL_WORDS = ["SELECT", "*", "FROM", "t", "u", "WHERE", "a", "b", "=", "<", ">=", "AND", "OR",
             "IN", "(", ")", ",", "?", "'x'", "1", "-", "JOIN", "ON", ".", "ORDER", "BY", "DESC",
             "LIMIT", "BETWEEN", "LIKE", "IS", "NOT", "NULL", "INSERT", "INTO", "VALUES",
             "UPDATE", "SET", "DELETE", "GROUP", "`c d`", ";", "/*", "*/", "--", "\n", "#", "\"",
             "COUNT", "UNION", "AS", "LEFT", "USING", "FOR", "SHARE", "...", "@@x", "%s"]


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_read_without_an_error(text: str) -> None:
    for statement in parse(text):
        assert statement.kind in ("select", "insert", "update", "delete", "other")
    Workload().add(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(SQL_WORDS), max_size=40))
def test_any_sequence_of_sql_words_is_read_without_an_error(words: list[str]) -> None:
    for statement in parse(" ".join(words)):
        assert statement.text == statement.text.strip()


@given(st.integers(), st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
       st.decimals(allow_nan=False, allow_infinity=False, places=3))
def test_literals_never_change_the_normalized_text(number: int, text: str, amount: object) -> None:
    quoted = "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    statement, = parse(f"SELECT * FROM orders WHERE user_id = {number} AND note = {quoted} "
                       f"AND total >= {amount}")
    assert statement.text == "SELECT * FROM orders WHERE user_id = ? AND note = ? AND total >= ?"
    assert statement.problem is None
