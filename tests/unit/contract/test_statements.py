"""The statement reader: one normalized text per statement whatever its literals, the
shapes a key design needs, and a reason for what it cannot read. Texts as MariaDB's
general log records them (SQLAlchemy's spelling) and as performance_schema digests
them."""

from __future__ import annotations

import pytest

from migration.source.statements import ColumnRef, Predicate, Workload, parse


def one(sql: str):  # type: ignore[no-untyped-def]
    statement, = parse(sql)
    return statement


def where(sql: str) -> list[tuple[str | None, str, str]]:
    return [(p.column.qualifier, p.column.name, p.operator) for p in one(sql).where]


def test_literals_become_placeholders_and_one_statement_counts_once() -> None:
    workload = Workload()
    workload.add("SELECT users.id, users.email \nFROM users \nWHERE users.email = 'a@b.c'")
    workload.add("SELECT users.id, users.email FROM users WHERE users.email = 'O\\'Brien'")
    workload.add("select users.id, users.email from users where users.email = \"x\"")
    assert {text: entry.count for text, entry in workload.statements.items()} == {
        "SELECT users.id, users.email FROM users WHERE users.email = ?": 3}


def test_a_digest_spells_the_same_statement_the_same_way() -> None:
    logged = one("SELECT users.id FROM users WHERE users.id = 1")
    digest = one("SELECT `users` . `id` FROM `users` WHERE `users` . `id` = ? ")
    assert logged.text == digest.text == "SELECT users.id FROM users WHERE users.id = ?"


def test_in_lists_and_values_rows_collapse() -> None:
    assert one("SELECT * FROM t WHERE a IN (1, 2, 3)").text == "SELECT * FROM t WHERE a IN (...)"
    assert one("SELECT * FROM t WHERE a IN (1)").text == "SELECT * FROM t WHERE a IN (...)"
    insert = one("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')")
    assert insert.text == "INSERT INTO t (a, b) VALUES (...)"
    assert one("INSERT INTO `t` ( `a` , `b` ) VALUES (...) /* , ... */ ").text == insert.text
    assert one("SELECT * FROM t WHERE a = -5 AND b > - 2.5e3").text == \
        "SELECT * FROM t WHERE a = ? AND b > ?"


def test_a_select_by_columns_with_order_and_limit() -> None:
    statement = one("SELECT orders.id FROM orders WHERE orders.user_id = 7 AND "
                    "orders.created_at >= '2024-01-01' ORDER BY orders.created_at DESC LIMIT 5")
    assert statement.kind == "select" and statement.problem is None
    assert statement.table is not None and statement.table.name == "orders"
    assert where(statement.text) == [("orders", "user_id", "="), ("orders", "created_at", ">=")]
    assert statement.order_by == ((ColumnRef("created_at", "orders"), True),)
    assert statement.limit == 5


def test_column_names_that_are_keywords_are_columns() -> None:
    assert where("SELECT `date`, position FROM waitlist_entries WHERE event_id = ? AND "
                 "position > ? AND name = ? AND status = ?") == [
        (None, "event_id", "="), (None, "position", ">"), (None, "name", "="),
        (None, "status", "=")]
    assert one("SELECT * FROM categories WHERE categories.parent_id IS NULL ORDER BY "
               "categories.name COLLATE utf8mb4_bin, categories.id").order_by == (
        (ColumnRef("name", "categories"), False), (ColumnRef("id", "categories"), False))


def test_between_like_in_and_null() -> None:
    statement = one("SELECT * FROM p WHERE a BETWEEN 1 AND 5 AND name LIKE 'ab%' AND c IN (1,2) "
                    "AND d IS NOT NULL AND e <> 3 AND f = NOW() - INTERVAL 1 DAY")
    assert [(p.column.name, p.operator, p.values, p.pattern) for p in statement.where] == [
        ("a", "between", 2, None), ("name", "like", 1, "ab%"), ("c", "in", 2, None),
        ("d", "is_not_null", 1, None), ("e", "<>", 1, None), ("f", "=", 1, None)]
    assert one("SELECT * FROM t WHERE (a = 1 AND b = 2)").where == (
        Predicate(ColumnRef("a"), "="), Predicate(ColumnRef("b"), "="))
    assert one("SELECT * FROM t WHERE 5 < a").where == (Predicate(ColumnRef("a"), ">"),)


def test_joins_keep_their_columns_and_aliases() -> None:
    statement = one("SELECT c.quantity, p.name, p.price FROM shopping_carts c JOIN products p "
                    "ON p.id = c.product_id WHERE c.user_id = 3")
    assert statement.table is not None and statement.table.alias == "c"
    join, = statement.joins
    assert (join.table.name, join.table.alias) == ("products", "p")
    assert join.on == (Predicate(ColumnRef("id", "p"), "=", other=ColumnRef("product_id", "c")),)
    assert statement.columns == (ColumnRef("quantity", "c"), ColumnRef("name", "p"),
                                 ColumnRef("price", "p"))
    comma = one("SELECT e.* FROM events e, registrations r WHERE r.event_id = e.event_id "
                "AND r.user_id = 'u'")
    assert comma.stars == ("e",) and [j.table.name for j in comma.joins] == ["registrations"]
    using = one("SELECT * FROM a JOIN b USING (k) WHERE a.x = 1")
    assert using.joins[0].on == (Predicate(ColumnRef("k", "b"), "=", other=ColumnRef("k")),)


def test_writes() -> None:
    upsert = one("INSERT INTO shopping_carts (user_id, product_id, quantity) VALUES (2, 1, 3) "
                 "ON DUPLICATE KEY UPDATE quantity = (shopping_carts.quantity + 3)")
    assert upsert.kind == "insert" and upsert.upsert and upsert.problem is None
    assert [c.name for c in upsert.columns] == ["user_id", "product_id", "quantity"]
    update = one("UPDATE events SET registered_count = registered_count + 1, status = 'full' "
                 "WHERE event_id = 'e'")
    assert update.kind == "update" and [c.name for c in update.columns] == \
        ["registered_count", "status"]
    assert update.computed == ("registered_count",)
    delete = one("DELETE FROM registrations WHERE event_id = 'e' AND user_id = 'u'")
    assert delete.kind == "delete" and len(delete.where) == 2
    assert one("REPLACE INTO t (a) VALUES (1)").upsert


@pytest.mark.parametrize(("sql", "problem"), [
    ("SELECT * FROM events WHERE status = 'x' OR capacity > 3", "OR between conditions"),
    ("SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)", "subquery"),
    ("SELECT * FROM users WHERE LOWER(email) = 'x'", "function or expression of a column"),
    ("SELECT user_id, COUNT(*) FROM orders GROUP BY user_id", "GROUP BY"),
    ("SELECT a FROM t UNION SELECT a FROM u", "UNION"),
    ("SELECT DISTINCT a FROM t", "DISTINCT"),
    ("SELECT * FROM (SELECT * FROM t) x", "derived table"),
    ("INSERT INTO t SELECT * FROM u", "INSERT ... SELECT"),
    ("UPDATE a JOIN b ON a.id = b.id SET a.x = 1", "several tables"),
    ("SELECT * FROM t WHERE NOT a = 1", "NOT"),
    ("SELECT `products` . `id` , `products` . `seller_id` , `products` . `category_id` , ...",
     "cut short"),
])
def test_what_it_cannot_read_says_why(sql: str, problem: str) -> None:
    statement = one(sql)
    assert statement.problem is not None and problem in statement.problem


def test_session_and_transaction_statements_are_counted_apart() -> None:
    workload = Workload()
    for sql in ("SET NAMES utf8mb4", "COMMIT", "ROLLBACK", "SELECT 1", "SELECT @@sql_mode",
                "SELECT VERSION()", "SHOW TABLES", "BEGIN", "CREATE TABLE x (a INT)"):
        workload.add(sql)
    workload.add("CALL refresh_totals(3)")
    assert not workload.statements
    assert workload.ignored == {"session, transaction and schema statements": 9,
                                "CALL statements": 1}


def test_several_statements_in_one_text_and_comments() -> None:
    statements = parse("/* app:42 */ SELECT * FROM t WHERE a = 1; -- done\nDELETE FROM t WHERE a = 2")
    assert [s.kind for s in statements] == ["select", "delete"]
    assert statements[0].text == "SELECT * FROM t WHERE a = ?"
