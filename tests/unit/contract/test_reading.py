"""Reading a contract file: a YAML key given twice, a misspelled key, a file that is not
UTF-8 each become a ContractError (or a warning) naming the file and where in it,
never a value silently lost or a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migration.contract import load_contract, read_document
from migration.errors import ContractError

USERS = """\
tables:
  - table_config: {table_name: Users, partition_key: PK}
    entities:
      User:
        pk_template: "{id}"
        fields:
          - {name: id, type: integer}
"""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def issues(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    assert all(issue.file == str(path) for issue in caught.value.issues)
    return [(issue.path, issue.message) for issue in caught.value.issues]


def test_a_yaml_key_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, USERS + """\
        pk_template: "USER#{id}"
""")
    assert issues(path) == [("$.tables[0].entities.User.pk_template",
                             "duplicate key 'pk_template' at line 8 (first at line 5): YAML "
                             "would keep only the last value; remove one or rename it")]


def test_duplicates_are_found_at_any_depth_and_all_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, """\
tables:
  - table_config: {table_name: Users, partition_key: PK, partition_key: ID}
    entities:
      User:
        pk_template: "{id}"
        fields:
          - {name: id, type: integer, type: string}
      User:
        pk_template: "{id}"
        fields: []
""")
    found = issues(path)
    assert [p for p, _ in found] == ["$.tables[0].table_config.partition_key",
                                     "$.tables[0].entities.User.fields[0].type",
                                     "$.tables[0].entities.User"]
    assert "at line 2 (first at line 2)" in found[0][1]
    assert "duplicate key 'User' at line 8 (first at line 4)" in found[2][1]


def test_merge_keys_and_aliases_are_not_duplicates(tmp_path: Path) -> None:
    path = write(tmp_path, """\
base: &base {name: id, type: integer}
tables:
  - table_config: {table_name: Users, partition_key: PK}
    entities:
      User:
        pk_template: "{id}"
        fields:
          - {<<: *base, type: integer}
          - *base
""")
    assert read_document(path)["tables"][0]["entities"]["User"]["fields"][1]["name"] == "id"


def test_json_keeps_the_mcp_servers_reading_of_a_repeated_key(tmp_path: Path) -> None:
    # AWS's MCP server reads schemas with json.load, which keeps the last value: a
    # schema it accepts must load here too.
    path = write(tmp_path, '{"tables": [], "tables": [1]}', "c.json")
    assert read_document(path) == json.loads('{"tables": [1]}')


def test_a_misspelled_required_key_is_named_with_the_key_meant(tmp_path: Path) -> None:
    path = write(tmp_path, USERS.replace("pk_template", "pk_tempate"))
    assert issues(path) == [("$.tables[0].entities.User.pk_template",
                             "missing required field 'pk_template'; found unknown key "
                             "'pk_tempate': did you mean 'pk_template'?")]
    path = write(tmp_path, USERS.replace("fields:", "feilds:"))
    assert ("$.tables[0].entities.User.fields", "missing required field 'fields'; found unknown "
            "key 'feilds': did you mean 'fields'?") in issues(path)
    path = write(tmp_path, USERS.replace("table_config", "table_cofig"))
    assert issues(path)[0] == ("$.tables[0].table_config", "missing required field "
                               "'table_config'; found unknown key 'table_cofig': did you mean "
                               "'table_config'?")


def test_a_key_the_format_knows_elsewhere_is_not_taken_for_a_misspelling(tmp_path: Path) -> None:
    # `sk_template` is a real key (on a table with a sort key): not a misspelled pk_template.
    path = write(tmp_path, USERS.replace('pk_template: "{id}"', 'sk_template: "{id}"'))
    assert ("$.tables[0].entities.User.pk_template", "missing required field 'pk_template'") \
        in issues(path)


def test_unknown_keys_stay_warnings_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, USERS.replace("type: integer}", "type: integer, requird: true}")
                 + "        version_feild: v\n        colour: red\n")
    warnings = load_contract(path).warnings
    assert f"{path}: $.tables[0].entities.User.fields[0].requird: unknown key 'requird' is " \
           "ignored; did you mean 'required'?" in warnings
    assert f"{path}: $.tables[0].entities.User.version_feild: unknown key 'version_feild' is " \
           "ignored; did you mean 'version_field'?" in warnings
    assert f"{path}: $.tables[0].entities.User.colour: unknown key 'colour' is ignored" in warnings


@pytest.mark.parametrize("name", ["c.yaml", "c.json"])
def test_a_file_that_is_not_utf8_names_the_byte(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    text = '{"tables": [{"table_config": {"table_name": "Café"}}]}\n'
    path.write_bytes(text.encode("latin-1"))  # é is one byte, 0xE9, at offset 48
    assert text.index("é") == 48
    with pytest.raises(ContractError) as caught:
        read_document(path)
    issue, = caught.value.issues
    assert (issue.file, issue.path) == (str(path), "$")
    assert issue.message == "not UTF-8 text at byte 48 (line 1): save the file as UTF-8"
    assert str(caught.value) == f"1 problem in the contract: {path}: $: {issue.message}"
