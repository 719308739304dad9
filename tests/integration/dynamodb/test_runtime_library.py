"""Runtime features the MCP examples do not declare, on a contract of our own
(tests/fixtures/runtime/library.yaml) against DynamoDB Local: optimistic locking,
DeleteItem, batches, an LSI, a two-attribute GSI key, a sparse GSI that follows
updates, projections, mixed_data and the < / <= range conditions."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from migration.contract.load import load_contract
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.repository import ParameterError, Repositories, VersionConflict
from migration.dynamodb.schema import apply
from migration.errors import ConditionFailed

pytestmark = pytest.mark.dynamodb

CONTRACT = Path(__file__).parents[2] / "fixtures" / "runtime" / "library.yaml"
MEMBER = str(uuid.UUID(int=1))


def book(isbn: str, name: str, author: str = "le guin", genre: str = "sf", year: int = 1970,
         **extra: Any) -> dict[str, Any]:
    return {"isbn": isbn, "name": name, "author": author, "genre": genre, "year": year,
            "status": "AVAILABLE", **extra}


@pytest.fixture(scope="module")
def repos(module_ddb: DynamoDB) -> Repositories:
    contract = load_contract(CONTRACT)
    apply(contract, module_ddb)
    repos = Repositories(contract, module_ddb)
    books = repos["Book"]
    for b in [book("111", "The Dispossessed", year=1974, size=387, tags=["utopia"]),
              book("222", "The Left Hand of Darkness", year=1969, size=286),
              book("333", "The Lathe of Heaven", year=1971, size=184),
              book("444", "A Wizard of Earthsea", genre="fantasy", year=1968, size=205),
              book("555", "Lord of Light", author="zelazny", year=1967, size=319),
              book("666", "Always Coming Home", year=1985, size=562, status="LOST")]:
        books.run("save_book", book=b)
    repos["Member"].run("save_members", members=[
        {"member_id": MEMBER, "name": "Ann", "joined_at": "2024-01-01T00:00:00Z"}])
    for isbn, loaned, due, returned in [("111", "2024-05-01", "2024-05-15", True),
                                        ("222", "2024-05-03", "2024-05-17", False),
                                        ("333", "2024-05-05", "2024-05-10", False)]:
        repos["Loan"].put({"member_id": MEMBER, "isbn": isbn, "loaned_at": loaned, "due_date": due,
                           "returned": returned})
    return repos


def test_a_new_versioned_entity_starts_at_version_one(repos: Repositories) -> None:
    found = repos["Book"].run("get_book", isbn="111")
    assert found.version == 1 and found.tags == ["utopia"]


def test_put_checks_the_version(repos: Repositories) -> None:
    books = repos["Book"]
    first = books.run("save_book", book=book("900", "Rocannon's World", author="x"))
    assert first.version == 1
    with pytest.raises(VersionConflict) as caught:  # "new" but it exists
        books.run("save_book", book=book("900", "Planet of Exile", author="x"))
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert isinstance(caught.value, ConditionFailed)
    second = books.run("save_book", book=first.model_copy(update={"name": "Planet of Exile"}))
    assert second.version == 2
    with pytest.raises(VersionConflict) as caught:  # a stale copy loses
        books.run("save_book", book=first.model_copy(update={"name": "City of Illusions"}))
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert books.run("get_book", isbn="900").name == "Planet of Exile"


def test_update_and_delete_check_an_expected_version(repos: Repositories) -> None:
    books = repos["Book"]
    books.run("save_book", book=book("901", "The Word for World is Forest", author="x", price="7.50"))
    repriced = books.run("reprice_book", isbn="901", price="8.25", expected_version=1)
    assert (repriced.price, repriced.version) == (Decimal("8.25"), 2)
    with pytest.raises(VersionConflict) as caught:
        books.run("reprice_book", isbn="901", price="1", expected_version=1)
    assert caught.value.actual == 2
    assert books.run("reprice_book", isbn="901", price=9).version == 3  # no check, still counts
    with pytest.raises(VersionConflict):
        books.run("remove_book", isbn="901", expected_version=2)
    assert books.run("remove_book", isbn="901", expected_version=3) is True
    assert books.run("remove_book", isbn="901") is False
    with pytest.raises(VersionConflict) as caught:
        books.run("reprice_book", isbn="901", price="1", expected_version=3)
    assert caught.value.actual is None


def test_concurrent_writers_of_one_version_exactly_one_wins(repos: Repositories) -> None:
    books = repos["Book"]
    base = books.run("save_book", book=book("902", "Malafrena", author="x"))
    barrier = threading.Barrier(8)
    results: list[Any] = []
    lock = threading.Lock()

    def write(n: int) -> None:
        barrier.wait()
        try:
            outcome: Any = books.run("reprice_book", isbn="902", price=n, expected_version=base.version)
        except VersionConflict as err:
            outcome = err
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if not isinstance(r, VersionConflict)]
    assert len(winners) == 1 and len(results) == 8
    assert books.run("get_book", isbn="902").price == winners[0].price


def test_projection_returns_a_partial_model_with_key_values(repos: Repositories) -> None:
    found = repos["Book"].run("get_book_title", isbn="222")
    assert type(found).__name__ == "BookPartial"
    assert (found.isbn, found.name, found.author, found.year) == ("222", "The Left Hand of Darkness",
                                                                  None, None)


def test_two_attribute_gsi_key(repos: Repositories) -> None:
    page = repos["Book"].run("books_by_author_genre", author="le guin", genre="sf")
    assert [b.isbn for b in page] == ["222", "333", "111", "666"]  # by year; fantasy/zelazny out


def test_less_than_and_less_or_equal_on_a_partial_key(repos: Repositories) -> None:
    before = repos["Book"].run("books_before_year", author="le guin", genre="sf", before=1971)
    assert [b.isbn for b in before] == ["222"]
    upto = repos["Book"].run("books_up_to_year", author="le guin", genre="sf", until=1971)
    assert [b.isbn for b in upto] == ["222", "333"]


def test_sparse_gsi_key_follows_updates(repos: Repositories) -> None:
    books = repos["Book"]
    books.run("save_book", book=book("445", "Tales from Earthsea", author="ursula", genre="fantasy"))
    lent = books.run("lend_book", isbn="445", borrower="bob", due_date="2024-06-01")
    assert lent.borrower == "bob"
    assert [b.isbn for b in books.run("loans_of", borrower="bob")] == ["445"]
    books.update({"isbn": "445"}, {"borrower": None, "due_date": None})
    assert list(books.run("loans_of", borrower="bob")) == []
    # The two-attribute key needs both values to move the item in that index.
    with pytest.raises(ParameterError, match="author"):
        books.update({"isbn": "445"}, {"genre": "sf"})
    books.update({"isbn": "445"}, {"genre": "sf", "author": "ursula"})
    assert [b.isbn for b in books.run("books_by_author_genre", author="ursula", genre="sf")] == ["445"]
    assert list(books.run("books_by_author_genre", author="ursula", genre="fantasy")) == []


def test_batch_get_keeps_the_order_and_skips_missing(repos: Repositories) -> None:
    page = repos["Book"].run("get_books", isbns=["333", "nope", "111", "333"])
    assert [b.isbn for b in page] == ["333", "111"]


def test_scan_with_default_filters_reads_only_its_entity(repos: Repositories) -> None:
    page = repos["Book"].run("big_books")
    assert sorted(b.isbn for b in page) == ["111", "555"]  # 666 is LOST; Members/Loans never
    assert sorted(b.isbn for b in repos["Book"].run("big_books", wanted_status="LOST")) == ["666"]


def test_batch_write_and_get_in_chunks(repos: Repositories) -> None:
    members = repos["Member"]
    ids = [str(uuid.UUID(int=1000 + n)) for n in range(130)]
    assert members.run("save_members", members=[
        {"member_id": i, "name": f"m{n}", "joined_at": "2024-02-01T00:00:00Z"}
        for n, i in enumerate(ids)]) is True
    found = members.run("get_members", member_ids=ids)
    assert [m.member_id for m in found] == ids  # 130 keys: two BatchGetItem requests
    assert members.run("remove_members", member_ids=ids[:100]) is True
    assert [m.member_id for m in members.run("get_members", member_ids=ids)] == ids[100:]
    with pytest.raises(ParameterError, match=r"member_ids\[0\]"):
        members.run("get_members", member_ids=["not-a-uuid"])


def test_mixed_data_returns_each_item_as_its_entity(repos: Repositories) -> None:
    page = repos["Member"].run("member_with_loans", member_id=MEMBER)
    assert [type(m).__name__ for m in page] == ["Loan", "Loan", "Loan", "Member"]
    assert page[-1].name == "Ann" and page[-1].joined_at.year == 2024


def test_query_of_one_entity_skips_the_other_entity_of_the_partition(repos: Repositories) -> None:
    page = repos["Loan"].run("loans_of_member", member_id=MEMBER)
    assert [loan.isbn for loan in page] == ["111", "222", "333"]


def test_lsi_with_a_consistent_read(repos: Repositories) -> None:
    page = repos["Loan"].run("loans_due_before", member_id=MEMBER, due="2024-05-16")
    assert [loan.isbn for loan in page] == ["333", "111"]  # by due date


def test_boolean_filter_with_a_default(repos: Repositories) -> None:
    assert [loan.isbn for loan in repos["Loan"].run("open_loans", member_id=MEMBER)] == ["222", "333"]
    assert [loan.isbn for loan in repos["Loan"].run("open_loans", member_id=MEMBER,
                                                    is_returned=True)] == ["111"]
