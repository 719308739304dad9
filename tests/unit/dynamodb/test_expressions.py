"""Expressions: placeholders for every name and value, the condition grammar, the
contract's filter expressions, updates, projections and key conditions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from migration.contract.load import load_contract
from migration.dynamodb.expressions import (
    And,
    Between,
    Compare,
    ConditionSyntaxError,
    ExpressionError,
    Function,
    In,
    Increment,
    Names,
    Not,
    Or,
    Param,
    Size,
    UnboundParameter,
    Value,
    bind,
    filter_condition,
    key_condition,
    parse_condition,
    projection_expression,
    render,
    update_expression,
)
from migration.dynamodb.expressions import (
    Path as AttrPath,
)

FOOD = Path(__file__).parents[2] / "fixtures" / "mcp-schemas" / "food_delivery_schema.json"


def a(name: str) -> AttrPath:
    return AttrPath((name,))


def rendered(text: str, **values: object) -> tuple[str, dict[str, object]]:
    names = Names()
    expression = render(bind(parse_condition(text), values), names)
    return expression, names.params()


# -- placeholders -----------------------------------------------------------------------


def test_every_name_is_a_placeholder_and_reserved_words_need_nothing_else() -> None:
    expression, params = rendered("status = :s AND size(items) > :n AND name <> :s",
                                  s="CANCELLED", n=3)
    assert expression == "#n0 = :v0 AND size(#n1) > :v1 AND #n2 <> :v2"
    assert params["ExpressionAttributeNames"] == {"#n0": "status", "#n1": "items", "#n2": "name"}
    assert params["ExpressionAttributeValues"] == {":v0": {"S": "CANCELLED"}, ":v1": {"N": "3"},
                                                   ":v2": {"S": "CANCELLED"}}


def test_values_are_never_pasted_into_the_expression() -> None:
    hostile = "x' OR attribute_exists(pk) OR 'y"
    expression, params = rendered("email = :e", e=hostile)
    assert hostile not in expression and expression == "#n0 = :v0"
    assert params["ExpressionAttributeValues"] == {":v0": {"S": hostile}}


def test_document_paths_escape_each_name() -> None:
    expression, params = rendered("address.city = :c AND items[2].size > :n", c="Lyon", n=1)
    assert expression == "#n0.#n1 = :v0 AND #n2[2].#n3 > :v1"
    assert params["ExpressionAttributeNames"] == {"#n0": "address", "#n1": "city", "#n2": "items",
                                                  "#n3": "size"}


def test_empty_maps_are_left_out() -> None:
    assert Names().params() == {}


# -- the grammar ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "tree"), [
    ("attribute_not_exists(pk)", Function("attribute_not_exists", a("pk"))),
    ("a = :x OR b = :y AND c = :z",
     Or((Compare(a("a"), "=", Param("x")), And((Compare(a("b"), "=", Param("y")),
                                                Compare(a("c"), "=", Param("z"))))))),
    ("(a = :x OR b = :y) AND c = :z",
     And((Or((Compare(a("a"), "=", Param("x")), Compare(a("b"), "=", Param("y")))),
          Compare(a("c"), "=", Param("z"))))),
    ("NOT a = :x and not attribute_exists(b)",
     And((Not(Compare(a("a"), "=", Param("x"))), Not(Function("attribute_exists", a("b")))))),
    ("fee BETWEEN :lo AND :hi AND status IN (:a, :b)",
     And((Between(a("fee"), Param("lo"), Param("hi")), In(a("status"), (Param("a"), Param("b")))))),
    ("size(items) between 2 and 5", Between(Size(a("items")), Value({"N": "2"}), Value({"N": "5"}))),
    ("begins_with(name, 'A') OR contains(tags, \"express\")",
     Or((Function("begins_with", a("name"), Value({"S": "A"})),
         Function("contains", a("tags"), Value({"S": "express"}))))),
    ("is_active = true AND total >= 50.00",
     And((Compare(a("is_active"), "=", Value({"BOOL": True})),
          Compare(a("total"), ">=", Value({"N": "50"}))))),
    ("attribute_type(x, :t)", Function("attribute_type", a("x"), Param("t"))),
    ("a <> b", Compare(a("a"), "<>", a("b"))),
])
def test_the_grammar(text: str, tree: object) -> None:
    assert parse_condition(text) == tree


@pytest.mark.parametrize("text", [
    "attribute_not_exists(pk)", "a = :x OR (b = :y AND c < :z)", "NOT (a = :x)",
    "size(items) BETWEEN :lo AND :hi", "status IN (:a, :b, :c)", "begins_with(name, :p)",
])
def test_printing_and_parsing_round_trip(text: str) -> None:
    tree = parse_condition(text)
    assert parse_condition(str(tree)) == tree


@pytest.mark.parametrize(("text", "position", "reason"), [
    ("", 0, "empty"),
    ("a =", 3, "expected an attribute"),
    ("a = = b", 4, "expected an attribute"),
    ("frobnicate(a)", 0, "unknown function"),
    ("a BETWEEN 1", 11, "expected AND"),
    ("(a = 1", 6, "expected )"),
    ("a = 1)", 5, "unexpected ')'"),
    ("a @ b", 2, "unexpected character"),
    ("begins_with(a)", 13, "second argument"),
    ("a", 1, "expected a comparator"),
    ("a IN ()", 6, "expected an attribute"),
])
def test_syntax_errors_say_where(text: str, position: int, reason: str) -> None:
    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition(text)
    assert caught.value.position == position
    assert reason in str(caught.value)


def test_unbound_parameters_are_refused() -> None:
    with pytest.raises(UnboundParameter, match=":who"):
        bind(parse_condition("a = :who"), {"other": 1})
    with pytest.raises(UnboundParameter):
        render(parse_condition("a = :who"), Names())


def test_in_takes_at_most_100_values() -> None:
    with pytest.raises(ExpressionError, match="100"):
        In(a("x"), tuple(Value({"N": str(n)}) for n in range(101)))


def test_functions_check_their_arguments() -> None:
    with pytest.raises(ExpressionError):
        Function("attribute_exists", a("x"), Value({"S": "y"}))
    with pytest.raises(ExpressionError):
        Function("contains", a("x"))


# -- the contract's filter expressions ---------------------------------------------------------


@pytest.fixture(scope="module")
def delivery_patterns() -> dict[str, object]:
    entity = load_contract(FOOD).entity("Delivery")
    return {p.name: p for p in entity.access_patterns}


DELIVERY_TYPES = {"status": "string", "total": "decimal", "delivery_fee": "decimal",
                  "tip": "decimal", "items": "array", "special_instructions": "string",
                  "cancelled_at": "string"}


@pytest.mark.parametrize(("pattern", "values", "expression", "names", "attribute_values"), [
    ("get_active_customer_deliveries", {"excluded_status": "CANCELLED", "min_total": Decimal("50")},
     "#n0 <> :v0 AND #n1 >= :v1", ["status", "total"], [{"S": "CANCELLED"}, {"N": "50"}]),
    ("get_customer_deliveries_by_fee_range", {"min_fee": Decimal("3.00"), "max_fee": Decimal("10")},
     "#n0 BETWEEN :v0 AND :v1", ["delivery_fee"], [{"N": "3"}, {"N": "10"}]),
    ("get_customer_deliveries_by_status", {"status1": "A", "status2": "B", "status3": "C"},
     "#n0 IN (:v0, :v1, :v2)", ["status"], [{"S": "A"}, {"S": "B"}, {"S": "C"}]),
    ("get_deliveries_with_special_instructions", {},
     "attribute_exists(#n0) AND attribute_not_exists(#n1)", ["special_instructions", "cancelled_at"], []),
    ("get_deliveries_with_min_items", {"min_items": 3}, "size(#n0) > :v0", ["items"], [{"N": "3"}]),
    ("get_deliveries_with_items_in_range", {"min_count": 2, "max_count": 5},
     "size(#n0) BETWEEN :v0 AND :v1", ["items"], [{"N": "2"}, {"N": "5"}]),
    ("get_high_value_active_deliveries", {"min_total": Decimal("75"), "min_tip": Decimal("10")},
     "#n0 >= :v0 OR #n1 >= :v1", ["total", "tip"], [{"N": "75"}, {"N": "10"}]),
])
def test_food_delivery_filters(delivery_patterns: dict[str, object], pattern: str,
                               values: dict[str, object], expression: str, names: list[str],
                               attribute_values: list[dict[str, str]]) -> None:
    declared = delivery_patterns[pattern]
    condition = filter_condition(declared.filter_expression, values, DELIVERY_TYPES)  # type: ignore[attr-defined]
    ph = Names()
    assert render(condition, ph) == expression
    assert list(ph.attribute_names.values()) == names
    assert list(ph.attribute_values.values()) == attribute_values


def test_a_filter_value_follows_the_field_type() -> None:
    entity = load_contract(FOOD).entity("Driver")
    pattern = entity.access_pattern("scan_drivers_by_skill")
    assert pattern is not None and pattern.filter_expression is not None
    condition = filter_condition(pattern.filter_expression, {"skill_tag": "express", "name_prefix": "A"},
                                 {"tags": "array", "name": "string"}, {"tags": "string"})
    ph = Names()
    assert render(condition, ph) == "contains(#n0, :v0) AND begins_with(#n1, :v1)"
    assert list(ph.attribute_values.values()) == [{"S": "express"}, {"S": "A"}]


# -- updates, projections, key conditions -----------------------------------------------------


def test_update_expression() -> None:
    names = Names()
    text = update_expression(names, {"status": {"S": "x"}, "version": Increment(1)}, ["tip"])
    assert text == "SET #n0 = :v0, #n1 = if_not_exists(#n1, :v1) + :v2 REMOVE #n2"
    assert names.attribute_names == {"#n0": "status", "#n1": "version", "#n2": "tip"}
    assert names.attribute_values == {":v0": {"S": "x"}, ":v1": {"N": "0"}, ":v2": {"N": "1"}}
    with pytest.raises(ExpressionError):
        update_expression(Names(), {}, [])


def test_projection_and_key_condition_share_placeholders() -> None:
    names = Names()
    key = render(key_condition("pk", {"S": "A"}, Function("begins_with", a("sk"), Value({"S": "B#"}))),
                 names)
    projection = projection_expression(names, ["name", "pk", "name"])
    assert key == "#n0 = :v0 AND begins_with(#n1, :v1)"
    assert projection == "#n2, #n0"
