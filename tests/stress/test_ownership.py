"""Keys that move between rows, against MariaDB and DynamoDB Local.

Every item names the row it was made from (`_owner`) and every write is conditional on
it and on the version: a repair of an old failed change never deletes what another row
holds now, a stale username guard never blocks repair forever, two rows never share one
key silently, and an older version never overwrites (or deletes) a newer one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migration.cli import cli
from migration.mapping.item import GUARD_PREFIX, OWNER_ATTRIBUTE
from migration.shop import SHOP_CONTRACT
from migration.shop.dual_write import Shop, open_shop
from migration.sync.compare import compare_all
from migration.sync.engine import DualWriteFailed, Policy
from migration.sync.writer import AtMost, Delete, KeyCollision, Put, VersionRegression
from wrappers.flags import Phase

pytestmark = [pytest.mark.mysql, pytest.mark.dynamodb]


@pytest.fixture
def fast(shop: Shop) -> Iterator[Shop]:
    shop.ddb.max_attempts = 2
    shop.ddb.base_delay = 0.001
    yield shop
    shop.ddb.before.clear()


def dynamodb_down(shop: Shop) -> None:
    def hook(operation: str, params: dict[str, Any]) -> None:
        raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://down.invalid")

    shop.ddb.before.append(hook)


def users_item(shop: Shop, pk: str, sk: str) -> dict[str, Any] | None:
    answer = shop.ddb.call("GetItem", TableName=shop.ddb.table_name("Users"),
                           Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True)
    item: dict[str, Any] | None = answer.get("Item")
    return item


def new_user(shop: Shop, name: str, email: str) -> int:
    return shop.users.create({"username": name, "email": email, "password_hash": "x"})


def assert_agree(shop: Shop) -> None:
    result = compare_all(shop.contract, shop.engine, shop.ddb)
    assert result.clean, result.summary()


def test_repair_of_a_failed_email_change_keeps_the_item_another_user_took_since(
        fast: Shop) -> None:
    shop = fast
    first = new_user(shop, "first", "first@example.org")
    dynamodb_down(shop)
    with pytest.raises(DualWriteFailed) as caught:
        shop.users.update(first, {"email": "wanted@example.org"})
    assert not caught.value.repaired  # DynamoDB is down: the outbox row stays for repair
    shop.ddb.before.clear()
    assert shop.sync.outbox.count() == 1

    # The address the failed change wanted is free in MySQL: another user takes it.
    second = new_user(shop, "second", "wanted@example.org")
    assert users_item(shop, "wanted@example.org", "#META")[OWNER_ATTRIBUTE] == \
        {"S": f"User#{second}"}

    # Repairing the old change deletes the keys it no longer maps to, but not one another
    # row holds now.
    assert shop.repair() == (1, 0)
    item = users_item(shop, "wanted@example.org", "#META")
    assert item is not None and item["id"] == {"N": str(second)}
    assert users_item(shop, "first@example.org", "#META") is not None
    assert shop.sync.outbox.count() == 0
    assert_agree(shop)


def test_a_stale_username_guard_does_not_block_repair(fast: Shop) -> None:
    shop = fast
    first = new_user(shop, "carol", "carol@example.org")
    dynamodb_down(shop)
    with pytest.raises(DualWriteFailed):
        shop.users.update(first, {"username": "bob"})
    shop.ddb.before.clear()

    second = new_user(shop, "bob", "bob@example.org")
    guard = users_item(shop, f"{GUARD_PREFIX}USER#username#bob", "UNIQUE")
    assert guard is not None and guard[OWNER_ATTRIBUTE] == {"S": f"User#{second}"}

    assert shop.repair() == (1, 0)
    guard = users_item(shop, f"{GUARD_PREFIX}USER#username#bob", "UNIQUE")
    assert guard is not None and guard[OWNER_ATTRIBUTE] == {"S": f"User#{second}"}
    assert shop.sync.outbox.count() == 0
    assert_agree(shop)


def sibling_categories(shop: Shop) -> tuple[int, int, str, str]:
    with shop.engine.connect() as conn:
        first, second, name, old_name = conn.execute(sa.text(
            "SELECT a.id, b.id, a.name, b.name FROM categories a JOIN categories b "
            "ON a.parent_id = b.parent_id AND a.id < b.id "
            "WHERE NOT EXISTS (SELECT 1 FROM categories c WHERE c.parent_id = b.id) "
            "ORDER BY a.id, b.id LIMIT 1")).one()
    return int(first), int(second), str(name), str(old_name)


def category_name(shop: Shop, category: int) -> str:
    with shop.engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT name FROM categories WHERE id = :c"),
                                {"c": category}).scalar_one())


@pytest.mark.parametrize("policy", ["rollback", "outbox"])
def test_a_rename_onto_a_siblings_key_is_refused_not_silently_overwritten(
        fast: Shop, policy: str) -> None:
    shop = fast
    shop.policies["Category"] = Policy(policy)
    first, second, name, old_name = sibling_categories(shop)
    with pytest.raises(DualWriteFailed) as caught:
        shop.categories.update(second, {"name": name})
    assert isinstance(caught.value.__cause__, KeyCollision)
    assert f"Category#{first}" in str(caught.value)
    # MySQL rolled back; DynamoDB still holds both categories, each its own.
    assert category_name(shop, second) == old_name
    assert_agree(shop)
    assert shop.sync.outbox.count() == 0


def test_a_new_category_under_a_taken_name_is_refused(fast: Shop) -> None:
    shop = fast
    first, _, name, _ = sibling_categories(shop)
    with shop.engine.connect() as conn:
        parent = conn.execute(sa.text("SELECT parent_id FROM categories WHERE id = :c"),
                              {"c": first}).scalar_one()
        before = conn.execute(sa.text("SELECT COUNT(*) FROM categories")).scalar_one()
    with pytest.raises(DualWriteFailed) as caught:
        shop.categories.create({"name": name, "parent_id": parent})
    assert isinstance(caught.value.__cause__, KeyCollision)
    with shop.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM categories")).scalar_one() == before
    assert_agree(shop)


def test_an_older_version_never_overwrites_or_deletes_a_newer_one(shop: Shop) -> None:
    """The version guard itself, with no row lock to hide behind. Under the locks no writer
    ever finds a version above its own, so one that does is an alarm (versions went
    backwards), raised, with nothing overwritten; an equal version is the same change
    sent again, and harmless. A repair's delete names what it may remove and leaves a
    newer item alone, quietly."""
    user = new_user(shop, "dora", "dora@example.org")
    current = users_item(shop, "dora@example.org", "#META")
    assert current is not None
    version = int(current["_version"]["N"])
    table = shop.ddb.table_name("Users")
    key = {"PK": {"S": "dora@example.org"}, "SK": {"S": "#META"}}
    owner = f"User#{user}"
    stale = dict(current, first_name={"S": "Stale"})
    stale.pop("_version")

    with pytest.raises(VersionRegression) as raised:
        shop.sync.writer.write([Put(table, stale, key, owner)], version - 1)
    assert (raised.value.stored, raised.value.own) == (version, version - 1)
    with pytest.raises(VersionRegression):
        shop.sync.writer.write([Delete(table, key, owner)], version - 1)
    assert users_item(shop, "dora@example.org", "#META") == current

    # In a transaction too: nothing of it lands.
    other = {"PK": {"S": "other@example.org"}, "SK": {"S": "#META"}}
    with pytest.raises(VersionRegression):
        shop.sync.writer.write(
            [Put(table, stale, key, owner), Put(table, dict(other, _type={"S": "USER"}), other,
                                                "User#999999")], version - 1)
    assert users_item(shop, "dora@example.org", "#META") == current
    assert users_item(shop, "other@example.org", "#META") is None

    # The same version again (a retry whose answer was lost) is harmless.
    same = dict(current)
    same.pop("_version")
    assert shop.sync.writer.write([Put(table, same, key, owner)], version).written == 1
    assert users_item(shop, "dora@example.org", "#META") == current

    # A repair of an older change deletes only what that change could have left.
    outcome = shop.sync.writer.write([Delete(table, key, owner, AtMost(version - 1))],
                                     version + 5)
    assert outcome.written == 0 and len(outcome.superseded) == 1
    assert users_item(shop, "dora@example.org", "#META") == current

    # A newer version does land.
    outcome = shop.sync.writer.write([Put(table, stale, key, owner)], version + 1)
    assert outcome.written == 1
    assert users_item(shop, "dora@example.org", "#META")["first_name"] == {"S": "Stale"}


def cli_env(shop: Shop, **extra: str) -> dict[str, str]:
    settings = shop.settings
    return {"MIGRATE_CONTRACT": str(SHOP_CONTRACT),
            "MIGRATE_MYSQL_URL": settings.sqlalchemy_url().render_as_string(hide_password=False),
            "MIGRATE_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
            "MIGRATE_TABLE_PREFIX": settings.table_prefix, **extra}


def test_migrate_repair_on_the_command_line_catches_up(fast: Shop) -> None:
    shop = fast
    shop.policies["User"] = Policy.OUTBOX
    user = new_user(shop, "erin", "erin@example.org")
    # The create's own outbox row is cleared in the background (`clear_later`): clear it
    # now, so that the failed update's row is the only one left for repair to find.
    shop.sync.outbox.flush()
    dynamodb_down(shop)
    shop.users.update(user, {"email": "erin@new.example"})  # MySQL commits; outbox keeps it
    shop.ddb.before.clear()
    assert users_item(shop, "erin@new.example", "#META") is None

    runner = CliRunner()
    young = runner.invoke(cli, ["repair"], env=cli_env(shop))  # --older-than 5 s by default
    assert young.exit_code == 0 and "repaired 0 outbox row(s)" in young.output
    result = runner.invoke(cli, ["repair", "--older-than", "0"], env=cli_env(shop))
    assert result.exit_code == 0, result.output
    assert "repaired 1 outbox row(s); 0 failed" in result.output
    assert users_item(shop, "erin@new.example", "#META") is not None
    assert users_item(shop, "erin@example.org", "#META") is None
    assert shop.sync.outbox.count() == 0
    assert_agree(shop)


def test_environment_pins_phases_and_policies(shop: Shop) -> None:
    """MIGRATE_FLAGS__* wins over the flags table, MIGRATE_FAILURE_POLICY__* picks the
    policy: here the cart stays MySQL-only while users dual-write under `outbox`."""
    settings = shop.settings.model_copy(update={
        "flags": {"CART": "mysql_only"}, "failure_policy": {"USER": "outbox"}})
    with open_shop(settings) as pinned:
        pinned.flags.set_phase("cart", "dual_write")  # the table says so; the environment wins
        assert pinned.flags.flag("cart").phase is Phase.MYSQL_ONLY
        assert pinned.policies["User"] is Policy.OUTBOX
        with shop.engine.connect() as conn:
            user, product = conn.execute(sa.text(
                "SELECT u.id, p.id FROM users u, products p WHERE NOT EXISTS (SELECT 1 FROM "
                "shopping_carts c WHERE c.user_id = u.id AND c.product_id = p.id) "
                "ORDER BY u.id, p.id LIMIT 1")).one()
        found = pinned.users.get(user)
        assert found is not None
        email = found.email
        pinned.cart.add_item(user, product, 1)
        assert users_item(pinned, email, f"CART#{product}") is None  # not dual-written

        dynamodb_down(pinned)
        pinned.ddb.max_attempts = 1
        pinned.users.update(user, {"first_name": "Pinned"})  # outbox: MySQL commits
        pinned.ddb.before.clear()
        assert getattr(pinned.users.get(user), "first_name", None) == "Pinned"
        assert pinned.sync.outbox.count() == 1
        assert pinned.repair() == (1, 0)
        assert users_item(pinned, email, "#META")["first_name"] == {"S": "Pinned"}
