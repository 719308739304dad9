"""Constant fields (`value:`): every item of the entity holds the value, no column is
read; a value of the wrong kind, or a value with a column, is a contract error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from migration.contract import load_contract
from migration.errors import ContractError
from migration.mapping.item import ItemMapper
from migration.registration import REGISTRATION_CONTRACT
from migration.source.records import RecordReader

CONTRACT = load_contract(REGISTRATION_CONTRACT)


def test_the_seeds_registration_and_waitlist_items() -> None:
    registration = ItemMapper(CONTRACT, CONTRACT.entity("Registration"))
    item = registration.to_item({"event_id": "event456", "user_id": "user123",
                                 "registered_at": "ignored"})
    assert {k: v for k, v in item.items() if not k.startswith("_")} == {
        "PK": {"S": "EVENT#event456"}, "SK": {"S": "REG#user123"},
        "GSI1PK": {"S": "USER#user123"}, "GSI1SK": {"S": "REGISTERED"},
        "entity_type": {"S": "registration"}, "user_id": {"S": "user123"},
        "event_id": {"S": "event456"}, "status": {"S": "registered"}}
    waitlist = ItemMapper(CONTRACT, CONTRACT.entity("Waitlist"))
    item = waitlist.to_item({"event_id": "event456", "user_id": "user789", "position": 5})
    assert {k: v for k, v in item.items() if not k.startswith("_")} == {
        "PK": {"S": "EVENT#event456"}, "SK": {"S": "WAIT#00005#user789"},
        "GSI1PK": {"S": "USER#user789"}, "GSI1SK": {"S": "WAITLISTED"},
        "entity_type": {"S": "waitlist"}, "user_id": {"S": "user789"},
        "event_id": {"S": "event456"}, "position": {"N": "5"}, "status": {"S": "waitlisted"}}
    # No column is read for a constant.
    assert "status" not in RecordReader(CONTRACT, CONTRACT.entity("Registration")).columns


def _with_status(tmp_path: Path, status: dict[str, Any]) -> Path:
    data = yaml.safe_load(REGISTRATION_CONTRACT.read_text())
    fields = data["tables"][0]["entities"]["Registration"]["fields"]
    fields[-1] = {"name": "status", **status}
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("status, message", [
    ({"type": "string", "value": 3}, "must be of type string, got"),
    ({"type": "integer", "value": True}, "must be of type integer"),
    ({"type": "array", "item_type": "string", "value": "x"}, "cannot be a constant"),
    ({"type": "string", "value": "x", "column": "user_id"}, "not both")])
def test_a_bad_constant_is_a_contract_error(tmp_path: Path, status: dict[str, Any],
                                            message: str) -> None:
    path = _with_status(tmp_path, status)
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    [issue] = caught.value.issues
    assert (issue.file, issue.path) == (str(path), "$.tables[0].entities.Registration"
                                        ".fields[2].value")
    assert message in issue.message
