"""Reading the statements a server recorded in a log file: MariaDB's general and slow
query logs (recorded while one workload ran against `registration` and the same one
against `other_app`), MySQL 8's general log format; only the target database counts."""

from __future__ import annotations

from pathlib import Path

from migration.source.query_log import LogSettings, read_log_file
from migration.source.statements import Workload

LOGS = Path(__file__).parents[2] / "fixtures" / "query-logs"
TABLES = ["users", "events", "registrations", "waitlist_entries"]
# What the workload ran against each database (tests/integration/contract/workloads.py).
EXPECTED = {
    "SELECT * FROM events WHERE event_id = ?": 30,
    "SELECT user_id, name FROM users WHERE user_id = ?": 20,
    "SELECT event_id, registered_at FROM registrations WHERE user_id = ?": 15,
    "SELECT user_id FROM registrations WHERE event_id = ?": 10,
    "SELECT user_id, position FROM waitlist_entries WHERE event_id = ? ORDER BY position LIMIT ?": 6,
    "UPDATE events SET registered_count = registered_count + ? WHERE event_id = ?": 5,
    "INSERT INTO registrations (event_id, user_id) VALUES (...)": 4,
    "DELETE FROM registrations WHERE event_id = ? AND user_id = ?": 4,
    "SELECT * FROM events WHERE status = ? OR capacity > ?": 3,
}


def counts(workload: Workload) -> dict[str, int]:
    return {text: entry.count for text, entry in workload.statements.items()}


def test_a_general_log_gives_the_statements_of_its_database_only() -> None:
    for database in ("registration", "other_app"):
        workload = read_log_file(LOGS / "mariadb-general.log", database, TABLES)
        assert counts(workload) == EXPECTED
        assert workload.ignored["statements of connections to other databases"] > 90
    assert read_log_file(LOGS / "mariadb-general.log", "nowhere", TABLES).statements == {}


def test_a_slow_log_gives_the_same_statements() -> None:
    workload = read_log_file(LOGS / "mariadb-slow.log", "registration", TABLES)
    assert counts(workload) == EXPECTED
    assert "mariadb-slow.log" in workload.source


def test_mysql_8_general_log_format_and_connections_of_unknown_database(tmp_path: Path) -> None:
    log = tmp_path / "mysql8.log"
    log.write_text(
        "/usr/sbin/mysqld, Version: 8.0.36 (MySQL Community Server - GPL). started with:\n"
        "Tcp port: 3306  Unix socket: /var/run/mysqld/mysqld.sock\n"
        "Time                 Id Command    Argument\n"
        "2024-05-01T12:00:00.000100Z\t   12 Connect\tapp@localhost on shop using Socket\n"
        "2024-05-01T12:00:00.000200Z\t   12 Query\tSELECT *\nFROM users\nWHERE id = 5\n"
        "2024-05-01T12:00:00.000300Z\t   13 Connect\tapp@localhost on  using Socket\n"
        "2024-05-01T12:00:00.000400Z\t   13 Init DB\tshop\n"
        "2024-05-01T12:00:00.000500Z\t   13 Query\tSELECT * FROM users WHERE id = 6\n"
        "2024-05-01T12:00:00.000600Z\t   14 Query\tSELECT * FROM users WHERE email = 'x'\n"
        "2024-05-01T12:00:00.000700Z\t   14 Query\tSELECT * FROM mailboxes WHERE id = 1\n"
        "2024-05-01T12:00:00.000800Z\t   15 Connect\tapp@localhost on crm using Socket\n"
        "2024-05-01T12:00:00.000900Z\t   15 Query\tSELECT * FROM users WHERE id = 7\n"
        "2024-05-01T12:00:00.001000Z\t   15 Query\tuse shop\n"
        "2024-05-01T12:00:00.001100Z\t   15 Query\tSELECT * FROM users WHERE id = 8\n",
        encoding="utf-8")
    workload = read_log_file(log, "shop", ["users", "orders"])
    # 12 and 13 are on shop; 14 connected before the log began: its statement on a shop
    # table counts, the one on a table shop lacks does not; 15 counts after its USE.
    assert counts(workload) == {"SELECT * FROM users WHERE id = ?": 3,
                                "SELECT * FROM users WHERE email = ?": 1}
    assert workload.ignored == {"statements of connections to other databases": 1,
                                "statements of connections to unknown databases": 1}


def test_log_settings_gain_the_table_output_and_give_it_back() -> None:
    off = LogSettings(False, "FILE")
    assert not off.logs_to_table
    assert off.with_table() == LogSettings(True, "FILE,TABLE")
    assert LogSettings(False, "NONE").with_table() == LogSettings(True, "TABLE")
    assert LogSettings(True, "TABLE,FILE").logs_to_table
    assert not LogSettings(True, "TABLE,NONE").logs_to_table
    assert off.statements() == ["SET GLOBAL general_log = OFF", "SET GLOBAL log_output = 'FILE'"]
