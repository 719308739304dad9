"""The registration service's journey (`migrate registration journey`), small: 4 HTTP
clients through uvicorn while every entity moves mysql_only → dual_write → backfill →
reconcile → shadow_read → dynamodb_read → dynamodb_only through the measured gates, 3 s
of traffic per phase, against MariaDB and DynamoDB Local. Then the check it ends with
is shown to fail on a lost registration and on a count that differs from the items.

Longer: MIGRATE_REGISTRATION_JOURNEY_SECONDS (seconds of traffic per phase) and
MIGRATE_REGISTRATION_JOURNEY_CLIENTS.
"""

from __future__ import annotations

import os

import pytest

from migration.dynamodb.client import DynamoDB
from migration.registration.acknowledged import REGISTERED, check_dynamodb
from migration.registration.journey import TABLE, JourneyOptions, run_journey
from migration.settings import Settings

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]

SECONDS = float(os.environ.get("MIGRATE_REGISTRATION_JOURNEY_SECONDS", "3"))
CLIENTS = int(os.environ.get("MIGRATE_REGISTRATION_JOURNEY_CLIENTS", "4"))
PHASES = ["mysql_only", "dual_write", "shadow_read", "dynamodb_read", "dynamodb_only"]


def test_the_journey_under_load_loses_nothing(live_settings: Settings) -> None:
    lines: list[str] = []
    report = run_journey(live_settings, JourneyOptions(clients=CLIENTS, seconds_per_phase=SECONDS,
                                                       seed=7), echo=lines.append)
    summary = report.summary()
    assert report.passed, "\n".join([*lines, summary])
    answers, checks = report.answers, report.checks
    assert checks is not None
    # Every phase served requests, and the mix met its domain errors.
    assert [p for p in PHASES if answers.per_phase[p] > 0] == PHASES, answers.per_phase
    assert set(answers.domain_errors) >= {"EventFullError", "NotRegisteredError"}
    assert answers.statuses[500] == 0 and answers.failed == 0
    # The gates were passed on evidence: reconciles (after the backfill, in shadow_read and
    # in dynamodb_read) without drift, shadow reads compared without a mismatch.
    assert len(report.reconciles) >= 3 and all(r["drift"] == 0 for r in report.reconciles)
    assert report.shadow_comparisons >= 4 * 5 and report.shadow_mismatches == 0
    assert [s.name for s in report.steps if s.name in PHASES] == PHASES
    assert checks.registered and checks.waitlisted and checks.gone and checks.events
    assert summary.endswith("result: PASS")

    # The check is no formality: a registration lost from DynamoDB, and an event whose
    # count differs from its items, are found.
    ddb = DynamoDB(live_settings)
    table = live_settings.table_name(TABLE)
    event, user = next(pair for pair, m in answers.members.items() if m.state == REGISTERED
                       and m.certain)
    ddb.call("DeleteItem", TableName=table,
             Key={"PK": {"S": f"EVENT#{event}"}, "SK": {"S": f"REG#{user}"}})
    problems = check_dynamodb(answers, ddb, table).problems
    assert any(p.startswith(f"{user} at {event}: acknowledged registered") for p in problems)
    assert any(p.startswith(f"event {event}: registered_count") for p in problems), problems
