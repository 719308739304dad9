"""The `reconcile` command line end to end: credentials never reach a report or the
terminal, and a run that fails exits 2 with its reason on standard error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.reconcile.harness import last_report, run_cli
from wrappers.shop import Shop

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

HOSTS = ("%", "localhost", "127.0.0.1")


@pytest.fixture
def password_url(backfilled: Shop) -> Iterator[tuple[str, str]]:
    """A MySQL account with a password, allowed on the test's database: (URL, password)."""
    user, password = f"rc_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
    url = backfilled.engine.url
    with backfilled.engine.begin() as conn:
        for host in HOSTS:
            conn.execute(sa.text(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'"))
            conn.execute(sa.text(f"GRANT ALL ON `{url.database}`.* TO '{user}'@'{host}'"))
    try:
        yield url.set(username=user, password=password).render_as_string(
            hide_password=False), password
    finally:
        with backfilled.engine.begin() as conn:
            for host in HOSTS:
                conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'{host}'"))


def test_credentials_never_appear_in_reports_or_output(backfilled: Shop, tmp_path: Path,
                                                       password_url: tuple[str, str]) -> None:
    url, password = password_url
    secret_key = f"Secret-{uuid.uuid4().hex}"
    with backfilled.engine.begin() as conn:
        conn.execute(sa.text("UPDATE products SET name = 'Renamed behind' WHERE id = 1"))
    result = run_cli(backfilled.settings, tmp_path, "--repair", mysql_url=url, env={
        "MIGRATE_AWS_ACCESS_KEY_ID": "local", "MIGRATE_AWS_SECRET_ACCESS_KEY": secret_key})
    assert result.exit_code == 0, result.output
    report = last_report(tmp_path)
    assert report["entities"]["Product"]["mismatched"] == 1  # it did connect and compare
    assert report["run"]["mysql"].startswith(f"mysql+pymysql://{url.split('//')[1][:11]}")
    assert "***" in report["run"]["mysql"]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"reconcile.json", "summary.md", "report.html",
                                       "history.json"}
    written = [p.read_text(encoding="utf-8") for p in files]
    for text in [*written, result.stdout, result.stderr]:
        assert password not in text and secret_key not in text


def test_a_run_that_fails_exits_2_with_the_reason(backfilled: Shop, tmp_path: Path) -> None:
    settings = backfilled.settings.model_copy(update={"table_prefix": "no_such_prefix_"})
    result = run_cli(settings, tmp_path, "--fail-on-drift")
    assert result.exit_code == 2
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: reconcile failed: the DynamoDB table "
                                "no_such_prefix_Users does not exist"), result.stderr
    assert "`migrate schema apply`" in last_line
    assert not (tmp_path / "history.json").exists()

    unknown = run_cli(backfilled.settings, tmp_path, "--entity", "Invoice")
    assert unknown.exit_code == 2 and "unknown entity 'Invoice'" in unknown.stderr


def product_name_in_dynamodb(shop: Shop, product_id: int) -> str:
    item = shop.ddb.call("GetItem", TableName=shop.ddb.table_name("Products"), ConsistentRead=True,
                         Key={"PK": {"S": str(product_id)}, "SK": {"S": "#META"}})["Item"]
    return str(item["name"]["S"])


def test_an_unwritable_report_dir_is_refused_before_anything_runs(backfilled: Shop,
                                                                   tmp_path: Path) -> None:
    with backfilled.engine.begin() as conn:
        conn.execute(sa.text("UPDATE products SET name = 'Renamed behind' WHERE id = 1"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    result = run_cli(backfilled.settings, blocker / "reports", "--repair", "--yes")
    assert result.exit_code == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: reconcile failed: cannot write reports to {blocker}/reports")
    assert "give a writable --report-dir; nothing was read or changed" in line
    assert "Traceback" not in result.output
    assert product_name_in_dynamodb(backfilled, 1) != "Renamed behind", "repaired unrecorded"


def test_a_repair_leaves_its_record_when_the_html_cannot_be_written(
        backfilled: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with backfilled.engine.begin() as conn:
        conn.execute(sa.text("UPDATE products SET name = 'Renamed behind' WHERE id = 1"))

    def broken(*args: object, **kwargs: object) -> str:
        raise OSError("No space left on device")

    monkeypatch.setattr("reconcile.report.render_html", broken)
    result = run_cli(backfilled.settings, tmp_path, "--repair", "--yes")
    assert result.exit_code == 2
    assert product_name_in_dynamodb(backfilled, 1) == "Renamed behind"  # it did repair
    assert "repair applied:" in result.stdout  # shown before the reports were written
    line = result.stderr.strip().splitlines()[-1]
    assert "the run's record is in" in line and "report.html (OSError: No space left" in line
    record = last_report(tmp_path)
    assert record["repair"]["applied"] and record["repair"]["actions"] >= 1
    assert record["entities"]["Product"]["mismatched"] == 1
