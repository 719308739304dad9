"""Key templates' zero-padded integers (`{position:05d}`): formatting, parsing back, the
order they keep, and the contract errors a bad spec or a misfit value gives."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from migration.contract import load_contract
from migration.contract.keys import KeyTemplate
from migration.errors import ContractError, KeyTemplateError
from migration.registration import REGISTRATION_CONTRACT

WAIT = KeyTemplate("WAIT#{position:05d}#{user_id}")


def test_the_seeds_waitlist_key() -> None:
    assert WAIT.format({"position": 5, "user_id": "user789"}) == "WAIT#00005#user789"
    assert WAIT.parse("WAIT#00005#user789") == {"position": "5", "user_id": "user789"}
    assert WAIT.fields == ("position", "user_id")
    assert WAIT.prefix({"position": 42}) == "WAIT#00042#"
    # A MySQL DECIMAL or text of digits is the same number.
    assert WAIT.format({"position": Decimal("7"), "user_id": "u"}) == "WAIT#00007#u"
    assert WAIT.format({"position": "12", "user_id": "u"}) == "WAIT#00012#u"


@given(st.integers(min_value=0, max_value=99_999), st.integers(min_value=0, max_value=99_999))
def test_text_order_is_number_order_and_round_trips(a: int, b: int) -> None:
    ka, kb = (WAIT.format({"position": n, "user_id": "u"}) for n in (a, b))
    assert (ka < kb) == (a < b)
    assert int(WAIT.parse(ka)["position"] or "") == a


@pytest.mark.parametrize("value, reason", [
    (100_000, "more than 5 digits"), (-1, "negative"), (Decimal("1.5"), "not a whole number"),
    ("12a", "not a whole number"), (True, "cannot be a zero-padded number"),
    (None, "NULL")])
def test_values_that_would_break_the_order_are_refused(value: object, reason: str) -> None:
    with pytest.raises(KeyTemplateError, match=reason):
        WAIT.format({"position": value, "user_id": "u"})


def test_keys_not_made_by_the_template_do_not_parse() -> None:
    for key in ("WAIT#5#u", "WAIT#0000x#u", "WAIT#000005#u"):
        assert not WAIT.matches(key)


@pytest.mark.parametrize("spec", ["5d", "05x", "0d", ">5", "05d ", "s"])
def test_a_bad_spec_is_a_contract_error_naming_file_path_and_reason(
        tmp_path: Path, spec: str) -> None:
    data = yaml.safe_load(REGISTRATION_CONTRACT.read_text())
    data["tables"][0]["entities"]["Waitlist"]["sk_template"] = \
        f"WAIT#{{position:{spec}}}#{{user_id}}"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    [issue] = caught.value.issues
    assert issue.file == str(path)
    assert issue.path == "$.tables[0].entities.Waitlist.sk_template"
    assert "0Nd" in issue.message and "zero-padded" in issue.message
