"""The phases through OpenFeature, both ways: read through the standard API from the
toolkit's provider, and driven from a team's own flag service through the gates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

from migration.ops.feature_flags import PhaseProvider, follow
from migration.ops.records import phase_history
from tests.integration.ops.conftest import NotesApp
from tests.integration.ops.test_status_and_gates import collector

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


@pytest.fixture(autouse=True)
def _providers() -> Iterator[None]:
    yield
    api.clear_providers()


def test_the_phases_read_through_the_standard_api(app: NotesApp) -> None:
    api.set_provider(PhaseProvider(app.flags), domain="migration")
    client = api.get_client("migration")
    app.flags.set_phase("note", "dynamodb_read", 30)
    assert client.get_string_value("note", "?") == "dynamodb_read"
    assert client.get_integer_value("note.percent", 0) == 30
    assert client.get_boolean_value("note.writes_dynamodb", False) is True
    routed = [client.get_boolean_value("note.reads_dynamodb", False,
                                       EvaluationContext(targeting_key=str(k)))
              for k in range(400)]
    assert routed == [app.flags.reads_dynamodb("note", (str(k),)) for k in range(400)]
    assert 0.2 < sum(routed) / len(routed) < 0.4
    keyless = client.get_boolean_details("note.reads_dynamodb", False)
    assert keyless.error_code == ErrorCode.TARGETING_KEY_MISSING
    missing = client.get_string_details("basket", "mysql_only")
    assert missing.value == "mysql_only" and missing.error_code == ErrorCode.FLAG_NOT_FOUND
    assert client.get_string_value("author", "?") == "mysql_only"


def test_a_teams_flag_service_drives_the_phases_through_the_gates(app: NotesApp) -> None:
    service = InMemoryProvider({
        "migrate.author": InMemoryFlag("on", {"on": "dual_write"}),
        "migrate.note": InMemoryFlag("on", {"on": "shadow_read"}),
    })
    api.set_provider(service, domain="team")
    followed = {f.flag: f for f in follow(api.get_client("team"), collector(app),
                                          app.settings)}
    assert followed["author"].outcome == "moved"
    # note may not jump to shadow_read: the gate to it does not hold (no backfill yet).
    assert followed["note"].outcome == "refused"
    assert "backfill not complete" in followed["note"].detail
    assert app.flags.flag("note").phase.value == "mysql_only"
    (change,) = phase_history(app.engine, "author")
    assert (change.to_phase, change.changed_by, change.forced) == ("dual_write", "openfeature",
                                                                   False)
    again = follow(api.get_client("team"), collector(app), app.settings, only=["author"])
    assert [f.outcome for f in again] == ["unchanged"]
