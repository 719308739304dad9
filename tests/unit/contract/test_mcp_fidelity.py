"""`contract validate` accepts what AWS's DynamoDB MCP server accepts and rejects what it
rejects, on the two rules where the two once differed: which entities a parameter may
name, and a table key attribute declared as a field and passed as a raw parameter."""

from __future__ import annotations

from typing import Any

import pytest

from migration.contract import parse_contract
from migration.contract.model import Contract
from migration.errors import ContractError
from migration.mapping.item import ItemMapper


def table(name: str, entities: dict[str, Any], sort_key: str | None = "sk",
          **extra: Any) -> dict[str, Any]:
    config = {"table_name": name, "partition_key": "pk"}
    if sort_key:
        config["sort_key"] = sort_key
    return {"table_config": config, "entities": entities, **extra}


def entity(prefix: str, patterns: tuple[dict[str, Any], ...] | list[dict[str, Any]] = (),
           **extra: Any) -> dict[str, Any]:
    return {"entity_type": prefix.upper(), "pk_template": "{id}", "sk_template": prefix.upper(),
            "fields": [{"name": "id", "type": "string", "required": True}],
            "access_patterns": list(patterns), **extra}


def put_with(entity_type: str, pattern_id: int = 1) -> dict[str, Any]:
    return {"pattern_id": pattern_id, "name": f"create_with_{entity_type.lower()}",
            "operation": "PutItem", "return_type": "single_entity",
            "parameters": [{"name": "thing", "type": "entity", "entity_type": entity_type}]}


def problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        parse_contract(document)
    return [(i.path, i.message) for i in caught.value.issues]


def test_a_parameter_may_name_an_entity_of_its_table_or_of_one_before_it() -> None:
    # The MCP validator reads the tables in order and knows the entities it has met:
    # the ecommerce example's OrderItem takes a Product of an earlier table.
    contract = parse_contract({"tables": [
        table("Table1", {"User": entity("user")}),
        table("Table2", {"Post": entity("post", [put_with("User", 1), put_with("Post", 2)])})]})
    assert len(contract.entity("Post").access_patterns) == 2


def test_a_parameter_naming_an_entity_of_a_later_table_is_refused() -> None:
    found = problems({"tables": [
        table("Table1", {"User": entity("user", [put_with("Post")])}),
        table("Table2", {"Post": entity("post")})]})
    assert found == [("$.tables[0].entities.User.access_patterns[0].parameters[0].entity_type",
                      "entity_type 'Post' is an entity of table Table2, which comes after this "
                      "pattern's table Table1: an access pattern's entity parameters must be "
                      "entities of its own table or of a table before it (as AWS's MCP validator "
                      "reads a schema); move the table up")]


def test_a_cross_table_pattern_may_name_an_entity_of_any_table() -> None:
    contract = parse_contract({"tables": [
        table("Table1", {"User": entity("user")}), table("Table2", {"Post": entity("post")})],
        "cross_table_access_patterns": [{
            "pattern_id": 9, "name": "create_both", "operation": "TransactWrite",
            "return_type": "boolean",
            "entities_involved": [{"table": "Table1", "entity": "User", "action": "Put"},
                                  {"table": "Table2", "entity": "Post", "action": "Put"}],
            "parameters": [{"name": "user", "type": "entity", "entity_type": "User"},
                           {"name": "post", "type": "entity", "entity_type": "Post"}]}]})
    assert contract.cross_table_pattern("create_both") is not None


RAW = {"tables": [table("Warehouses", {
    "Product": {
        "entity_type": "PRODUCT", "pk_template": "{pk}", "sk_template": "P#{category}#{sku}",
        "gsi_mappings": [{"name": "ByCategory", "pk_template": "{city}",
                          "sk_template": ["{category}", "{sk}"]}],
        "fields": [{"name": "pk", "type": "string"}, {"name": "sk", "type": "string"},
                   {"name": "category", "type": "string"}, {"name": "sku", "type": "string"},
                   {"name": "city", "type": "string"}],
        "access_patterns": [
            {"pattern_id": 1, "name": "delete_product", "operation": "DeleteItem",
             "return_type": "success_flag", "parameters": [
                 {"name": "pk", "type": "string"}, {"name": "sk", "type": "string"}]},
            {"pattern_id": 2, "name": "get_product", "operation": "GetItem",
             "return_type": "single_entity", "parameters": [
                 {"name": "pk", "type": "string"}, {"name": "category", "type": "string"},
                 {"name": "sku", "type": "string"}]}]},
    "Profile": {"entity_type": "PROFILE", "pk_template": "{pk}", "sk_template": "PROFILE",
                "fields": [{"name": "pk", "type": "string"}, {"name": "sk", "type": "string"}]}},
    gsi_list=[{"name": "ByCategory", "partition_key": "city",
               "sort_key": ["category", "sk"]}])]}


def test_a_table_key_attribute_may_be_a_field_and_a_raw_parameter() -> None:
    contract = parse_contract(RAW, "raw.json")
    assert contract.warnings == (
        "raw.json: $.tables[0].entities.Product.access_patterns[0].parameters: DeleteItem takes "
        "'sk', the table's sort key, as given: the part(s) {category}, {sku} of "
        "'P#{category}#{sku}' cannot be rebuilt from the parameters (the runtime uses the value "
        "as the key, and on a table of several entities acts only on an item of Product)",)


def test_the_item_holds_the_key_in_the_field_and_the_index_reads_it() -> None:
    contract: Contract = parse_contract(RAW)
    mapper = ItemMapper(contract, contract.entity("Product"))
    item = mapper.to_item({"pk": "w1", "category": "books", "sku": "b7", "city": "Lyon"})
    assert item["sk"] == {"S": "P#books#b7"} and item["city"] == {"S": "Lyon"}
    assert mapper.values(item)["sk"] == "P#books#b7"
    assert mapper.to_item({**mapper.values(item), "pk": "w1"}) == item


def test_without_the_parts_or_the_raw_key_a_single_item_pattern_is_refused() -> None:
    document = {"tables": [dict(RAW["tables"][0])]}
    product = dict(document["tables"][0]["entities"]["Product"])
    product["access_patterns"] = [{"pattern_id": 1, "name": "delete_product",
                                   "operation": "DeleteItem", "return_type": "success_flag",
                                   "parameters": [{"name": "pk", "type": "string"}]}]
    document["tables"][0]["entities"] = {**document["tables"][0]["entities"], "Product": product}
    assert ("$.tables[0].entities.Product.access_patterns[0].parameters",
            "DeleteItem needs a parameter for key placeholder {category} (or for the key "
            "attribute 'sk' itself)") in problems(document)


def test_an_index_keyed_on_the_table_key_must_read_it_bare() -> None:
    document = {"tables": [dict(RAW["tables"][0])]}
    product = dict(document["tables"][0]["entities"]["Product"])
    product["gsi_mappings"] = [{"name": "ByCategory", "pk_template": "{city}",
                                "sk_template": ["{category}", "X#{sku}"]}]
    product["access_patterns"] = []
    document["tables"][0]["entities"] = {**document["tables"][0]["entities"], "Product": product}
    assert ("$.tables[0].entities.Product.gsi_mappings",
            "index ByCategory's key attribute 'sk' is the table's own key attribute: its "
            "template must be {sk}, not 'X#{sku}' (an item holds one sk)") in problems(document)


def test_an_index_attribute_that_is_a_field_must_still_be_that_field() -> None:
    document = {"tables": [table("Things", {"Thing": {
        "pk_template": "{id}", "sk_template": "T",
        "gsi_mappings": [{"name": "ByCity", "pk_template": "CITY#{id}"}],
        "fields": [{"name": "id", "type": "string"}, {"name": "city", "type": "string"}]}},
        gsi_list=[{"name": "ByCity", "partition_key": "city"}])]}
    assert ("$.tables[0].entities.Thing.fields.city",
            "field 'city' has the name of a key attribute whose template 'CITY#{id}' is not "
            "{city}: the item cannot hold both") in problems(document)
