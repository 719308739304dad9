"""The registration service's migration through the toolkit's own commands: its schema
exactly as agreed, its contract accepted (and against MySQL), the seed's table created,
and dual-write keeping the seed's items current (counts and zero-padded waitlist
positions included): backfill of earlier rows, reconcile without drift, shadow reads
without mismatches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL

from migration.cli import cli
from migration.dynamodb.client import DynamoDB
from migration.ops.status import Collector
from migration.registration import REGISTRATION_CONTRACT
from migration.registration.dual_write import REGISTRATION_ENTITIES, RegistrationApp
from migration.settings import Settings
from migration.source.mysql import create_engine, server_url
from tests.conftest import FIXTURES, fresh_database
from tests.integration.registration.harness import client_for, set_phase

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


def migrate(settings: Settings, *args: str) -> Any:
    env = {"MIGRATE_CONTRACT": str(REGISTRATION_CONTRACT),
           "MIGRATE_MYSQL_URL": settings.sqlalchemy_url().render_as_string(hide_password=False),
           "MIGRATE_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
           "MIGRATE_TABLE_PREFIX": settings.table_prefix}
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, (args, result.output)
    return result


def _tables(url: URL) -> dict[str, str]:
    engine = create_engine(url, pool_size=1)
    with engine.connect() as conn:
        names = [n for n in conn.execute(sa.text("SHOW TABLES")).scalars()
                 if not n.startswith("alembic_version")]
        shown = {n: conn.execute(sa.text(f"SHOW CREATE TABLE `{n}`")).one()[1] for n in names}
    engine.dispose()
    return shown


def test_schema_is_the_agreed_one_and_the_contract_fits_it(live_settings: Settings,
                                                           mysql_url: URL) -> None:
    assert "at head" in migrate(live_settings, "registration", "db", "upgrade").output
    with fresh_database(server_url(mysql_url)) as agreed:
        engine = create_engine(agreed, pool_size=1)
        with engine.begin() as conn:
            for statement in (FIXTURES / "registration" / "schema.sql").read_text().split(";"):
                lines = [ln for ln in statement.splitlines() if not ln.startswith("--")]
                if "".join(lines).strip():
                    conn.execute(sa.text("\n".join(lines)))
        engine.dispose()
        assert _tables(mysql_url) == _tables(agreed)
    migrate(live_settings, "contract", "validate", str(REGISTRATION_CONTRACT))
    migrate(live_settings, "contract", "validate", "--mysql", str(REGISTRATION_CONTRACT))
    migrate(live_settings, "schema", "apply")
    table = DynamoDB(live_settings).call(
        "DescribeTable", TableName=live_settings.table_name("registration-system"))["Table"]
    assert table["KeySchema"] == [{"AttributeName": "PK", "KeyType": "HASH"},
                                  {"AttributeName": "SK", "KeyType": "RANGE"}]
    [gsi] = table["GlobalSecondaryIndexes"]
    assert (gsi["IndexName"], gsi["KeySchema"]) == ("GSI1", [
        {"AttributeName": "GSI1PK", "KeyType": "HASH"},
        {"AttributeName": "GSI1SK", "KeyType": "RANGE"}])


def _items(app: RegistrationApp, event_id: str) -> dict[str, dict[str, Any]]:
    answer = app.ddb.call("Query", TableName=app.ddb.table_name("registration-system"),
                          KeyConditionExpression="PK = :pk",
                          ExpressionAttributeValues={":pk": {"S": f"EVENT#{event_id}"}})
    return {i["SK"]["S"]: i for i in answer["Items"]}


def test_dual_write_backfill_reconcile_and_shadow_reads(
        open_app: Callable[[str], RegistrationApp], registration_settings: Settings,
        tmp_path: Path) -> None:
    settings = registration_settings
    app = open_app("mysql_only")
    client = client_for(app)
    for n in range(8):
        client.post("/users", json={"userId": f"u{n}", "name": f"User {n}"})
    event = {"title": "Meetup", "capacity": 2, "waitlistEnabled": True}
    client.post("/events", json={"eventId": "before", **event})
    for user in ("u0", "u1", "u2", "u3"):  # two registered, two waitlisted, before the switch
        client.post("/events/before/registrations", json={"userId": user})

    set_phase(app, "dual_write")
    client.post("/events", json={"eventId": "after", **event})
    for user in ("u4", "u5", "u6", "u7", "u0"):
        client.post("/events/after/registrations", json={"userId": user})
    assert client.delete("/events/after/registrations/u4").status_code == 204  # u6 promoted
    assert client.delete("/events/after/registrations/u7").status_code == 204  # leaves the line
    assert client.delete("/events/before/registrations/u0").status_code == 204  # u2 promoted

    items = _items(app, "after")
    # Positions 1 (u6, promoted) and 2 (u7, left) are gone; u0 came third.
    assert set(items) == {"METADATA", "REG#u5", "REG#u6", "WAIT#00003#u0"}
    assert items["WAIT#00003#u0"]["GSI1PK"] == {"S": "USER#u0"}
    assert items["WAIT#00003#u0"]["GSI1SK"] == {"S": "WAITLISTED"}
    assert items["WAIT#00003#u0"]["position"] == {"N": "3"}
    assert items["REG#u6"]["GSI1SK"] == {"S": "REGISTERED"}
    assert (items["REG#u6"]["status"], items["WAIT#00003#u0"]["status"]) == \
        ({"S": "registered"}, {"S": "waitlisted"})
    meta = items["METADATA"]
    assert (meta["registered_count"], meta["waitlist_count"]) == ({"N": "2"}, {"N": "1"})
    assert (meta["name"], meta["title"], meta["entity_type"]) == \
        ({"S": "Meetup"}, {"S": "Meetup"}, {"S": "event"})
    # Rows from before the switch reach DynamoDB by backfill; then nothing differs.
    migrate(settings, "backfill", "--progress", "plain")
    assert set(_items(app, "before")) == {"METADATA", "REG#u1", "REG#u2", "WAIT#00002#u3"}
    reconciled = migrate(settings, "reconcile", "--quiet", "--fail-on-drift",
                         "--report-dir", str(tmp_path))
    assert "no drift" in reconciled.output

    set_phase(app, "shadow_read")
    reads = ["/events/before", "/events/after", "/events/before/registrations",
             "/events/after/registrations", "/users/u0/waitlists", "/users/u2/registrations",
             "/users/u3"]
    shadow = [client.get(path).json() for path in reads]
    assert app.shadow_mismatches == 0
    # Each entity's reads are compared and counted for its own gate to dynamodb_read.
    app.ledger.flush()
    collector = Collector(app.contract, app.engine, app.ddb, app.flags)
    compared = {e: collector.shadow(e, 3600).comparisons for e in REGISTRATION_ENTITIES.values()}
    assert all(compared.values()), compared
    set_phase(app, "dynamodb_read")
    assert [client.get(path).json() for path in reads] == shadow
