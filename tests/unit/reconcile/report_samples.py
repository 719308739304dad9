"""A reconcile result with every kind of drift, built in memory for the report tests, and
a check that a page fetches nothing."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from reconcile.result import EntityResult, ReconcileResult, RepairResult, Sample

HOSTILE = '<script>alert("x")</script> & <img src="https://evil.example/x.png">'


def drifted_result(run_id: str = "20240501T120000Z") -> ReconcileResult:
    user = EntityResult("User", "Users", rows=30, expected_items=60, actual_items=59,
                        missing_in_dynamodb=1, mismatched=1, cleared=2, samples=[
                            Sample("missing_in_dynamodb", "User", "Users",
                                   {"PK": "zoë@example.org", "SK": "#META"}, [{"id": 2}]),
                            Sample("mismatched", "User", "Users",
                                   {"PK": "ann@example.org", "SK": "#META"}, [{"id": 3}],
                                   fields={"first_name": {"expected": HOSTILE,
                                                          "actual": "Ann"},
                                           "age": {"expected": 41, "actual": None}})])
    cart = EntityResult("CartItem", "Users", rows=36, expected_items=36, actual_items=36,
                        mismatched=6, samples=[
                            Sample("mismatched", "CartItem", "Users",
                                   {"PK": "ann@example.org", "SK": "CART#3"},
                                   [{"user_id": 3, "product_id": 3}],
                                   fields={"product_price": {"expected": 268.94,
                                                             "actual": 267.69}})])
    product = EntityResult("Product", "Products", rows=9, expected_items=9, actual_items=10,
                           extra_in_dynamodb=1, samples=[
                               Sample("extra_in_dynamodb", "Product", "Products",
                                      {"PK": "999999", "SK": "#META"}, [{"id": 999999}],
                                      reason='stored item: {"name": "Ghost"}')])
    category = EntityResult("Category", "Categories", rows=86, expected_items=86,
                            actual_items=86, collisions=1, unmappable=1, samples=[
                                Sample("collisions", "Category", "Categories",
                                       {"PK": "Phones", "SK": "Accessories"},
                                       [{"id": 4}, {"id": 9}],
                                       reason="2 source rows map to this key"),
                                Sample("unmappable", "Category", "Categories", {},
                                       [{"id": 11}], reason="SK: an empty value")])
    return ReconcileResult(
        run_id=run_id, started_at="2024-05-01T12:00:00+00:00",
        finished_at="2024-05-01T12:00:03+00:00", seconds=3.2,
        mysql="mysql+pymysql://shop:***@db.internal:3306/shop",
        dynamodb="http://127.0.0.1:8000", table_prefix="staging_", contract="contract.yaml",
        segment="0/1", entities=[user, cart, product, category], candidates=12,
        repair=RepairResult(applied=False, roots={"User": 2, "CartItem": 6}, deletes=1,
                            collisions_skipped=1, unmappable_skipped=1,
                            plan=["re-sync User id=2 from MySQL (missing_in_dynamodb ...)"]))


# Attributes and tags that make a browser fetch something; CSS that does.
_FETCHING_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "action", "poster", "data",
                        "background", "formaction", "manifest"}
_FETCHING_TAGS = {"script", "link", "iframe", "object", "embed", "img", "image", "use",
                  "video", "audio", "source", "base", "frame"}
_FETCHING_CSS = re.compile(r"url\s*\(|@import", re.IGNORECASE)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _FETCHING_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name in _FETCHING_ATTRIBUTES or (name == "style" and value
                                                 and _FETCHING_CSS.search(value)):
                self.found.append(f"{tag} {name}={value!r}")
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and _FETCHING_CSS.search(data):
            self.found.append(f"style: {data[:60]!r}")


def external_references(page: str) -> list[str]:
    """Everything in an HTML page that would make a browser load another resource."""
    parser = _References()
    parser.feed(page)
    parser.close()
    return parser.found
