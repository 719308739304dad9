"""Contract loading and validation: the MCP examples, the invalid ones, and our extensions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from migration.contract import load_contract, parse_contract
from migration.errors import ContractError
from migration.shop import SHOP_CONTRACT

FIXTURES = Path(__file__).parents[2] / "fixtures" / "mcp-schemas"
VALID = sorted(FIXTURES.glob("*.json"))
INVALID = sorted((FIXTURES / "invalid").glob("*.json"))


def issues_of(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    for issue in caught.value.issues:
        assert issue.file == str(path)
        assert issue.path.startswith("$")
    return [(i.path, i.message) for i in caught.value.issues]


def test_fixtures_are_present() -> None:
    assert len(VALID) >= 5 and len(INVALID) >= 4


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_every_mcp_example_validates(path: Path) -> None:
    contract = load_contract(path)
    raw = json.loads(path.read_text())
    assert [t.name for t in contract.tables] == [t["table_config"]["table_name"]
                                                 for t in raw["tables"]]
    # The only warnings are about declared parameters the request never uses
    # (ecommerce's get_user_recent_orders declares a date range it has no place for),
    # and about a key attribute taken as given (package delivery's delete_product
    # passes the raw `sort_key`: the template's parts cannot be rebuilt from it).
    expected = {"ecommerce_schema.json": "are not used by the request",
                "package_delivery_app_schema.json": "DeleteItem takes 'sort_key', the table's "
                                                    "sort key, as given"}
    assert bool(contract.warnings) == (path.name in expected)
    assert all(expected[path.name] in w for w in contract.warnings)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_every_invalid_example_is_rejected(path: Path) -> None:
    assert issues_of(path)


def has(issues: list[tuple[str, str]], path: str, words: str) -> bool:
    return any(p == path and words in m for p, m in issues)


def test_invalid_gsi_schema_names_each_problem() -> None:
    issues = issues_of(FIXTURES / "invalid" / "invalid_gsi_schema.json")
    ent = "$.tables[0].entities"
    assert has(issues, "$.tables[0].gsi_list[1].name", "duplicate index name 'DuplicateIndex'")
    assert has(issues, f"{ent}.AnotherTestEntity.gsi_mappings[0].pk_template", "empty placeholder")
    assert has(issues, f"{ent}.AnotherTestEntity.gsi_mappings[1].name", "duplicate mapping")
    assert has(issues, f"{ent}.AnotherTestEntity.access_patterns[0].operation",
               "'InvalidOperation'")
    assert has(issues, f"{ent}.TestEntity.gsi_mappings[0].name", "'NonExistentIndex' is not in")
    assert has(issues, f"{ent}.TestEntity.gsi_mappings[1].pk_template", "{missing_field}")
    assert has(issues, f"{ent}.TestEntity.access_patterns[2].range_condition",
               "'invalid_condition'")


def test_invalid_filter_expressions_each_rejected_where_they_are() -> None:
    issues = issues_of(FIXTURES / "invalid" / "invalid_filter_expression_schema.json")
    base = "$.tables[0].entities.TestEntity.access_patterns"
    # Fifteen patterns, each wrong in one way: each must be reported at its own path.
    for i in range(15):
        assert any(p.startswith(f"{base}[{i}]") for p, _ in issues), f"pattern {i} not reported"
    assert has(issues, f"{base}[1].filter_expression.conditions[0].field", "key attribute 'test_id'")
    assert has(issues, f"{base}[5].filter_expression.logical_operator", "'XOR'")
    assert has(issues, f"{base}[12].filter_expression", "only to Query and Scan, not GetItem")


def test_invalid_cross_table_patterns_each_rejected() -> None:
    issues = issues_of(FIXTURES / "invalid" / "invalid_cross_table_patterns.json")
    base = "$.cross_table_access_patterns"
    for i in range(21):
        assert any(p.startswith(f"{base}[{i}]") for p, _ in issues), f"pattern {i} not reported"
    assert has(issues, f"{base}[0].pattern_id", "duplicate pattern_id 100")
    assert has(issues, f"{base}[20].parameters[1].type", "is a string but field Balance.amount")


def test_duplicate_entity_names_across_tables() -> None:
    issues = issues_of(FIXTURES / "invalid" / "test_duplicate_entity_names.json")
    assert issues == [("$.tables[1].entities.User",
                       "duplicate entity name 'User': already defined at "
                       "$.tables[0].entities.User; entity names must be unique across all tables")]


def test_shop_contract_matches_seed_003_key_design() -> None:
    contract = load_contract(SHOP_CONTRACT)
    users, products, categories = contract.tables
    assert (users.name, products.name, categories.name) == ("Users", "Products", "Categories")
    for table in contract.tables:
        assert (table.partition_key, table.sort_key) == ("PK", "SK")
        assert set(table.attribute_types().values()) == {"S"}
    assert [g.name for g in users.gsis] == ["GSI1", "GSI2", "GSI3"]
    assert [g.name for g in products.gsis] == ["GSI1", "GSI2"]
    assert [g.name for g in categories.gsis] == ["GSI1"]
    templates = {
        e.name: (e.pk.source, e.sk.source if e.sk else None,
                 {k.index: (k.pk[0].source if k.pk else None, k.sk[0].source if k.sk else None)
                  for k in e.index_keys})
        for e in contract.entities()
    }
    assert templates == {
        "User": ("{email}", "#META", {"GSI1": ("{id}", "{id}"),
                                      "GSI2": ("{username}", "{username}")}),
        "Order": ("{user_email}", "ORDER#{created_at}#{id}", {"GSI3": ("{id}", "{id}")}),
        "CartItem": ("{user_email}", "CART#{product_id}", {}),
        "Product": ("{id}", "#META", {"GSI1": ("{category_id}", "{name}"),
                                      "GSI2": ("{seller_id}", "{name}")}),
        "Category": ("{parent_name|ROOT}", "{name}", {"GSI1": ("{id}", "{id}")}),
    }
    order = contract.entity("Order")
    assert order.source is not None
    assert order.source.embeds[0].name == "order_items"
    assert contract.entity("User").source.unique == ("username",)  # type: ignore[union-attr]


def test_natural_numeric_keys_keep_their_type() -> None:
    contract = load_contract(FIXTURES / "gaming_leaderboard_schema.json")
    leaderboard = contract.table("LeaderboardTable")
    assert leaderboard.attribute_types() == {"game_id": "S", "score": "N", "player_id": "S"}


def minimal(**entity: Any) -> dict[str, Any]:
    body = {"pk_template": "{id}", "fields": [{"name": "id", "type": "integer"}]}
    body.update(entity)
    return {"tables": [{"table_config": {"table_name": "Things", "partition_key": "PK"},
                        "entities": {"Thing": body}}]}


def test_yaml_on_key_is_not_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "tables:\n"
        "  - table_config: {table_name: Orders, partition_key: PK}\n"
        "    entities:\n"
        "      Order:\n"
        "        source:\n"
        "          table: orders\n"
        "          primary_key: [id]\n"
        "          lookups:\n"
        "            user_email: {table: users, on: {id: user_id}, column: email}\n"
        "        pk_template: '{user_email}#{id}'\n"
        "        fields: [{name: id, type: integer}]\n")
    contract = load_contract(path)
    lookup = contract.entity("Order").source.lookups[0]  # type: ignore[union-attr]
    assert lookup.on == (("id", "user_id"),)


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"tables": [')
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    assert caught.value.issues[0].file == str(path)
    assert "not valid json" in caught.value.issues[0].message


@pytest.mark.parametrize(
    ("entity", "path", "words"),
    [
        ({"sk_template": "X"}, "$.tables[0].entities.Thing.sk_template", "has no sort key"),
        ({"pk_template": "A{id"}, "$.tables[0].entities.Thing.pk_template", "unclosed"),
        ({"pk_template": "{id}{id}"}, "$.tables[0].entities.Thing.pk_template", "adjacent"),
        ({"source": {"table": "things"}}, "$.tables[0].entities.Thing.source.primary_key",
         "missing required field"),
        ({"source": {"table": "things", "primary_key": ["id"], "unique": ["nope"]}},
         "$.tables[0].entities.Thing.source.unique[0]", "not a field"),
        ({"fields": [{"name": "id", "type": "int"}]},
         "$.tables[0].entities.Thing.fields[0].type", "invalid value 'int'"),
    ],
)
def test_contract_errors_name_path_and_reason(entity: dict[str, Any], path: str,
                                              words: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_contract(minimal(**entity), file="inline.yaml")
    found = [(i.path, i.message) for i in caught.value.issues]
    assert any(p == path and words in m for p, m in found), found
    assert all(i.file == "inline.yaml" for i in caught.value.issues)


def test_consistent_read_on_a_gsi_is_refused() -> None:
    doc = minimal(gsi_mappings=[{"name": "ByX", "pk_template": "{id}"}], access_patterns=[
        {"pattern_id": 1, "name": "by_x", "operation": "Query", "index_name": "ByX",
         "consistent_read": True, "parameters": [{"name": "id", "type": "integer"}],
         "return_type": "entity_list"}])
    doc["tables"][0]["gsi_list"] = [{"name": "ByX", "partition_key": "XPK"}]
    with pytest.raises(ContractError) as caught:
        parse_contract(doc)
    assert "strongly consistent" in str(caught.value)


def test_unknown_keys_are_warnings_not_errors() -> None:
    doc = minimal(colour="blue")
    contract = parse_contract(doc, file="c.yaml")
    assert any("colour" in w for w in contract.warnings)
