"""The shop's writes in `dynamodb_only`: DynamoDB alone, its guarantees kept by transactions.

Once the shop is `dynamodb_only` MySQL is no longer written, so what MySQL's
constraints, row locks and the sync engine did, DynamoDB transactions do here:

- Ids of new users, products, categories, orders and order items come from
  `migration.dynamodb.ids` (a counter started above MySQL's ids, in blocks).
- Uniqueness: a user's email is the key of their item and their username a guard
  item (`UNIQUE#USER#username#...`), both created with `attribute_not_exists`; a
  taken one is `Conflict`, as MySQL's unique keys said it.
- Optimistic locking: every item carries `_version`; every write replaces an item
  only at the version it read (and writes version + 1), creates only where no item
  is, and checks every item whose values it copies. A writer that lost a race has
  its transaction cancelled and starts again from fresh reads, so concurrent
  writers never leave a stale copy behind.
- Denormalized values stay current. An email change moves the user's item, orders
  and cart lines to the new partition in one transaction. A product's name or price
  change rewrites every cart line (name, price) and order (name) holding it, in the
  same transaction as the product: the holders are found through *holder links*,
  items `HELD#CART#<user id>` / `HELD#ORDER#<order id>` in the product's own
  partition of the Products table (read with a consistent query). A new holder
  (a cart line, an order item) writes its link and moves the product's `_version`,
  and a new order or cart line moves its user's `_version`, so a product or email
  change that read the holders before cannot commit after it.
- Limits: one transaction holds 100 actions. A write that would need more (an email
  change of a user with more than ~48 orders and cart lines, a product change
  rewriting more than ~98 holders) is refused before anything is written
  (`TooManyItems`); `clear_cart` alone is split into several transactions, each line
  removal being valid on its own.
- MySQL's cascades are followed: deleting a user takes their products (and every
  cart line holding one), orders, cart lines and username guard (InUse when one of
  their products was ordered); a category rename moves its children (keyed by its
  name), a deleted category's children become roots (InUse while it holds products).
  Creating a product or a child category moves its seller's / category's / parent's
  `_version`, so a delete or rename that listed them before cannot commit after it.

The shop enters the phase as one unit: its entities share denormalized values and
foreign keys, so a mix (carts in DynamoDB alone, products still in MySQL) would leave
copies no writer keeps current. Its contract couples them (`coupled_entities`), so the
gated switch (`migrate flags set user dynamodb_only`) moves all five flags in one
transaction; `enter_dynamodb_only` does the same without gates. Then the holder links
of the lines and orders MySQL holds are written and the shop is marked ready: by
`enter_dynamodb_only`, or by the first native write that finds every flag there (one
process at a time, under a lease). Native writes refuse (`ShopNotReady`, transient)
until the mark is there.

Every transaction carries the check of the shop's write fence (`migration.dynamodb.fence`,
one fence item for its three tables): `migrate shop catch-up` closes it to go back
(`migration.shop.catch_up`), and a write it refuses (`FenceClosed`) waits in its wrapper,
then takes the MySQL path. The catch-up drops the mark once the flags are back, so that
entering again later writes the holder links afresh.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.backoff import pause
from migration.contract.model import Contract
from migration.dynamodb.batches import until_processed
from migration.dynamodb.client import DynamoDB
from migration.dynamodb.fence import FenceClosed, WriteFence
from migration.dynamodb.ids import IdAllocator
from migration.dynamodb.limits import BATCH_GET_KEYS, BATCH_WRITE_ITEMS, TRANSACTION_ACTIONS
from migration.dynamodb.toolkit_table import ToolkitTable
from migration.dynamodb.transactions import (
    DuplicateItemInTransaction,
    TransactionBuilder,
    TransactionConditionFailed,
    TransactionConflicted,
    TransactionItemExists,
)
from migration.errors import ConditionFailed, Terminal, Transient
from migration.mapping.item import ItemMapper, mappers
from migration.mapping.values import Item
from migration.shop.repositories import (
    CARTS,
    CATEGORIES,
    CATEGORY_REQUIRED,
    CATEGORY_WRITABLE,
    ORDER_ITEMS,
    ORDERS,
    PRODUCT_REQUIRED,
    PRODUCT_WRITABLE,
    PRODUCTS,
    USER_REQUIRED,
    USER_WRITABLE,
    USERS,
    Conflict,
    InUse,
    InvalidInput,
    NotFound,
    NotOwner,
    ShopError,
    _checked,
    _checked_int,
    _checked_quantity,
    _checked_value,
)

T = TypeVar("T")

HELD_PREFIX = "HELD#"
HELD_TYPE = "_held"
VERSION = "_version"
# Tables whose ids the allocator hands out, and ids taken per counter update.
ID_TABLES = ("users", "products", "categories", "orders", "order_items")
ID_BLOCK = 100
# Actions a shop transaction may take: one of DynamoDB's 100 is the write fence's check.
ACTIONS = TRANSACTION_ACTIONS - 1


class ShopNotReady(ShopError, Transient):
    """The shop's flags say dynamodb_only but its entry has not finished: retry shortly."""


class TooManyItems(ShopError, Terminal):
    """A write would need more actions than one DynamoDB transaction takes."""

    def __init__(self, operation: str, needed: int):
        self.operation = operation
        self.needed = needed
        super().__init__(f"{operation} would change {needed} items at once; one DynamoDB "
                         f"transaction takes {TRANSACTION_ACTIONS} (one of them the write "
                         "fence's check), and the shop does not split "
                         "a change whose copies must move together: nothing was written")


class Contended(ShopError, Transient):
    """Other writers kept changing the same items: the write gave up after every attempt."""


class _Retry(Exception):
    """What was read is out of date (an index behind its table): read again."""


def _now() -> datetime:
    # MySQL's TIMESTAMP keeps seconds; the shop's items have the same precision.
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _version(item: Mapping[str, Any]) -> int:
    return int(item.get(VERSION, {}).get("N", "0"))


def _with_version(item: Item, version: int) -> Item:
    return {**item, VERSION: {"N": str(version)}}


def _text(item: Mapping[str, Any], name: str) -> str:
    return str(next(iter(item[name].values())))


def _moved(link: Mapping[str, Any], held: Mapping[str, Any]) -> bool:
    """Whether a holder link's hint no longer says where its holder is."""
    return link.get("at") != held["PK"] or \
        (link["SK"]["S"].startswith(f"{HELD_PREFIX}ORDER#") and link.get("sk") != held["SK"])


@contextlib.contextmanager
def _one_key_each(entity: str, value: Any) -> Iterator[None]:
    """Two categories a change would key alike (a parent and a child both named as the
    other's parent): the shop's `Conflict`, not a malformed transaction."""
    try:
        yield
    except DuplicateItemInTransaction as err:
        raise Conflict(entity, "name", value) from err


class ShopWrites:
    """The shop's sixteen writes against DynamoDB alone (see the module docstring)."""

    # How long one process may take to enter before another may take over.
    lease_seconds = 600.0

    def __init__(self, contract: Contract, ddb: DynamoDB, engine: Engine, *,
                 attempts: int = 60, id_block: int = ID_BLOCK,
                 entered: Callable[[], bool] | None = None):
        self.contract = contract
        self.ddb = ddb
        self.engine = engine
        self.attempts = attempts
        self.mappers: dict[str, ItemMapper] = mappers(contract)
        self.ids = {table: IdAllocator(ddb, table, engine=engine, block=id_block)
                    for table in ID_TABLES}
        self._ready = False
        self.entered = entered  # whether the shop's flags all say dynamodb_only
        self._preparing = threading.Lock()
        self._toolkit = ToolkitTable(ddb)
        # Every transaction carries the check of the shop's one write fence (all its
        # tables): the catch-up going back closes it (`migration.shop.catch_up`).
        self.fence = WriteFence(ddb, fence_name(contract, ddb))
        self.retries = 0  # transactions started again after losing a race

    # -- entering the phase -------------------------------------------------------
    def _ready_key(self, what: str = "dynamodb_only") -> dict[str, Any]:
        return {"id": {"S": f"shop#{what}#{self.ids['users'].counter_id}"}}

    def _marked(self) -> bool:
        self._toolkit.ensure()
        return "Item" in self.ddb.call("GetItem", TableName=self._toolkit.name,
                                       Key=self._ready_key(), ConsistentRead=True)

    def is_ready(self) -> bool:
        """Whether the shop has entered `dynamodb_only`. Not yet, but its flags all say it
        has (`entered`): the first writer of the process runs `prepare`, under a lease
        so that one process does (the others are `ShopNotReady` meanwhile)."""
        if self._ready:
            return True
        if self._marked():
            self._ready = True
        elif self.entered is not None and self.entered():
            with self._preparing:
                if not self._ready:
                    self._prepare_leased()
        return self._ready

    def _prepare_leased(self) -> None:
        lease = self._ready_key("entering")
        now = datetime.now(UTC).timestamp()
        try:
            self.ddb.call("PutItem", TableName=self._toolkit.name,
                          Item={**lease, "until": {"N": str(now + self.lease_seconds)}},
                          ConditionExpression="attribute_not_exists(id) OR #u < :now",
                          ExpressionAttributeNames={"#u": "until"},
                          ExpressionAttributeValues={":now": {"N": str(now)}})
        except ConditionFailed:
            return  # another process is entering: not ready yet
        try:
            self.prepare()
        finally:
            self.ddb.call("DeleteItem", TableName=self._toolkit.name, Key=lease)

    def prepare(self) -> int:
        """Write the holder links of every cart line and order item MySQL holds, start the
        id counters above MySQL's ids, and mark the shop ready; returns the links written
        (0 when the shop was ready already: MySQL's rows are stale by then). Run once the
        flags are all `dynamodb_only` (MySQL no longer changes). The rows are streamed, so
        memory does not grow with the tables."""
        if self._marked():  # not the process's memory: a catch-up may have dropped the mark
            self._ready = True
            return 0
        order_key = self.mappers["Order"].key
        lines = (sa.select(CARTS.c.product_id, CARTS.c.user_id, USERS.c.email)
                 .join(USERS, USERS.c.id == CARTS.c.user_id))
        ordered = (sa.select(ORDER_ITEMS.c.product_id, ORDERS.c.id, ORDERS.c.created_at,
                             USERS.c.email).distinct()
                   .join(ORDERS, ORDERS.c.id == ORDER_ITEMS.c.order_id)
                   .join(USERS, USERS.c.id == ORDERS.c.user_id))
        written = 0
        with self.engine.connect() as conn:
            streamed = conn.execution_options(yield_per=BATCH_WRITE_ITEMS)
            for rows in streamed.execute(lines).partitions():
                written += self._put_links([
                    self._link(p, "CART", u, {"PK": {"S": email}, "SK": {"S": f"CART#{p}"}})
                    for p, u, email in rows])
        with self.engine.connect() as conn:
            streamed = conn.execution_options(yield_per=BATCH_WRITE_ITEMS)
            for chunk in streamed.execute(ordered).partitions():
                written += self._put_links([
                    self._link(p, "ORDER", o, order_key({"id": o, "created_at": created,
                                                         "user_email": email}))
                    for p, o, created, email in chunk])
        for allocator in self.ids.values():
            allocator.start()
        self._toolkit.ensure()
        self.ddb.call("PutItem", TableName=self._toolkit.name,
                      Item={**self._ready_key(), "at": {"S": _now().isoformat() + "Z"}})
        self._ready = True
        return written

    def _put_links(self, links: list[Item]) -> int:
        table = self.ddb.table_name("Products")
        for start in range(0, len(links), BATCH_WRITE_ITEMS):
            first = {table: [{"PutRequest": {"Item": link}}
                             for link in links[start:start + BATCH_WRITE_ITEMS]]}
            for _ in until_processed("BatchWriteItem",
                                     lambda request: self.ddb.call("BatchWriteItem",
                                                                   RequestItems=request),
                                     first, lambda left: left):
                pass
        return len(links)

    def forget_ready(self) -> None:
        """Drop the mark (the shop's catch-up does, once the flags are back)."""
        self._toolkit.ensure()
        self.ddb.call("DeleteItem", TableName=self._toolkit.name, Key=self._ready_key())
        self._ready = False

    # -- reading -----------------------------------------------------------------------
    def _get(self, table: str, key: Item) -> Item | None:
        answer = self.ddb.call("GetItem", TableName=self.ddb.table_name(table), Key=key,
                               ConsistentRead=True)
        return answer.get("Item")

    def _query(self, table: str, partition: str, prefix: str | None = None, *,
               index: str | None = None) -> Iterator[Item]:
        pk = f"{index}PK" if index else "PK"
        condition = "#pk = :pk"
        names = {"#pk": pk}
        values: dict[str, Any] = {":pk": {"S": partition}}
        if prefix is not None:
            condition += " AND begins_with(#sk, :sk)"
            names["#sk"] = "SK"
            values[":sk"] = {"S": prefix}
        params: dict[str, Any] = {"TableName": self.ddb.table_name(table),
                                  "KeyConditionExpression": condition,
                                  "ExpressionAttributeNames": names,
                                  "ExpressionAttributeValues": values}
        if index:
            params["IndexName"] = index
        else:
            params["ConsistentRead"] = True
        while True:
            answer = self.ddb.call("Query", **params)
            yield from answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                return
            params["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _by_id(self, table: str, index: str, entity_type: str, value: int) -> Item | None:
        """The item of an entity by its id, through an index (projecting every attribute).
        An index may lag its table: every write built from such a copy is conditional on
        its `_version`, so a stale copy cancels the write, which reads again."""
        for found in self._query(table, str(value), index=index):
            if found.get("_type", {}).get("S") == entity_type:
                return found
        return None

    def _batch_get(self, table: str, keys: Sequence[Item]) -> dict[tuple[str, str], Item]:
        """Items at `keys`, read consistently, by (PK, SK)."""
        found: dict[tuple[str, str], Item] = {}
        name = self.ddb.table_name(table)
        for start in range(0, len(keys), BATCH_GET_KEYS):
            first = {name: {"Keys": list(keys[start:start + BATCH_GET_KEYS]),
                            "ConsistentRead": True}}
            for answer in until_processed(
                    "BatchGetItem", lambda request: self.ddb.call("BatchGetItem",
                                                                  RequestItems=request),
                    first, lambda left: left):
                for item in answer.get("Responses", {}).get(name, []):
                    found[(item["PK"]["S"], item["SK"]["S"])] = item
        return found

    def _user(self, user_id: int) -> Item:
        user = self._by_id("Users", "GSI1", "USER", user_id)
        if user is None:
            raise NotFound("user", {"id": user_id})
        return user

    def _product(self, product_id: int) -> Item:
        product = self._get("Products", {"PK": {"S": str(product_id)}, "SK": {"S": "#META"}})
        if product is None:
            raise NotFound("product", {"id": product_id})
        return product

    def _order(self, order_id: int) -> Item:
        order = self._by_id("Users", "GSI3", "ORDER", order_id)
        if order is None:
            raise NotFound("order", {"id": order_id})
        return order

    def _category(self, category_id: int) -> Item:
        category = self._by_id("Categories", "GSI1", "CATEGORY", category_id)
        if category is None:
            raise NotFound("category", {"id": category_id})
        return category

    def _values(self, entity: str, item: Item) -> dict[str, Any]:
        return self.mappers[entity].values(item)

    def _item(self, entity: str, record: Mapping[str, Any], version: int) -> Item:
        return _with_version(self.mappers[entity].to_item(record), version)

    @staticmethod
    def _link(product_id: int, kind: str, holder: int, at: Item | None = None) -> Item:
        """A holder link; `at` is the holder's key when written (a hint: an email change
        moves the holder and leaves the hint behind, and readers fall back to the index)."""
        link: Item = {"PK": {"S": str(product_id)}, "SK": {"S": f"{HELD_PREFIX}{kind}#{holder}"},
                      "_type": {"S": HELD_TYPE}, "holder": {"N": str(holder)}}
        if at is not None:
            link["at"] = at["PK"]
            link["sk"] = at["SK"]
        return link

    # -- transactions ----------------------------------------------------------------------
    def _tx(self) -> TransactionBuilder:
        return TransactionBuilder(self.ddb, self.contract, fence=self.fence)

    @staticmethod
    def _replace(tx: TransactionBuilder, table: str, item: Item, read: Item) -> None:
        """Put `item` over the item `read` (same key), only if it is still at that version."""
        tx.put(table, item, condition=f"{VERSION} = :v", values={"v": _version(read)})

    @staticmethod
    def _remove(tx: TransactionBuilder, table: str, read: Item) -> None:
        tx.delete(table, {"PK": read["PK"], "SK": read["SK"]},
                  condition=f"{VERSION} = :v", values={"v": _version(read)})

    @staticmethod
    def _touch(tx: TransactionBuilder, table: str, read: Item) -> None:
        """Move an item's version on without changing it: writers that read it must
        read again (a new holder of a product, a new item in a user's partition)."""
        tx.update(table, {"PK": read["PK"], "SK": read["SK"]},
                  set_values={VERSION: {"N": str(_version(read) + 1)}},
                  condition=f"{VERSION} = :v", values={"v": _version(read)})

    def _commit(self, operation: str, tx: TransactionBuilder) -> None:
        if len(tx) > ACTIONS:
            raise TooManyItems(operation, len(tx))
        tx.commit()

    def _attempt(self, operation: str, write: Callable[[], T]) -> T:
        """Run `write` (reads, then one transaction) until it commits: a condition that
        failed means another writer changed what it read, so it reads again."""
        if not self.is_ready():
            raise ShopNotReady(f"{operation}: the shop is not ready for dynamodb_only: it is "
                               "entering it (retry shortly), or only some of its flags are "
                               "there; the shop's entities enter together: `migrate flags set "
                               "user dynamodb_only` moves them all (or "
                               "Shop.enter_dynamodb_only())")
        for attempt in range(1, self.attempts + 1):
            try:
                return write()
            except FenceClosed:
                # A catch-up is going back: the mark is dropped with the switch, so
                # entering again later must find it afresh (and re-write the links).
                self._ready = False
                raise
            except (TransactionConditionFailed, TransactionConflicted, _Retry):
                # A create that found its item (two writers adding one cart line) too:
                # read again and the line is there to add to.
                self.retries += 1
                pause(attempt, base=0.005, cap=0.2)
        raise Contended(f"{operation}: other writers kept changing the same items; gave up "
                        f"after {self.attempts} attempts")

    def _count(self, operation: str, needed: int) -> None:
        if needed > ACTIONS:
            raise TooManyItems(operation, needed)

    # -- users -----------------------------------------------------------------------------
    def create_user(self, data: Mapping[str, Any]) -> int:
        values = _checked(USERS, data, USER_WRITABLE, USER_REQUIRED)
        user_id = self.ids["users"].next()
        now = _now()
        record = {"first_name": None, "last_name": None, "is_seller": False,
                  "super_admin": False, **values, "id": user_id, "created_at": now,
                  "updated_at": now}

        def write() -> int:
            user, *guards = self.mappers["User"].items(record)
            tx = self._tx()
            tx.create("Users", _with_version(user, 1), entity="User")
            for guard in guards:
                tx.create("Users", guard, entity="User")
            self._unique(tx, record)
            return user_id

        return self._attempt("users.create", write)

    @staticmethod
    def _unique(tx: TransactionBuilder, record: Mapping[str, Any]) -> None:
        """Commit, turning a create that found its key taken into the shop's `Conflict`."""
        try:
            tx.commit()
        except TransactionItemExists as err:
            field = "username" if _text(err.action.key, "PK").startswith("UNIQUE#") else "email"
            raise Conflict("user", field, record[field]) from err

    def update_user(self, user_id: int, data: Mapping[str, Any],
                    operation: str = "users.update") -> None:
        changes = _checked(USERS, data, USER_WRITABLE)

        def write() -> None:
            read = self._user(user_id)
            old = self._values("User", read)
            record = {**old, **changes, "updated_at": _now()}
            item = self._item("User", record, _version(read) + 1)
            tx = self._tx()
            if record["username"] != old["username"]:
                mapper = self.mappers["User"]
                gone = mapper.guard_items(old)[0]
                tx.delete("Users", {"PK": gone["PK"], "SK": gone["SK"]},
                          condition="_owner = :o",
                          values={"o": mapper.owner(old)})
                tx.create("Users", mapper.guard_items(record)[0], entity="User")
            if record["email"] != old["email"]:
                self._move(operation, tx, read, item, old["email"], record["email"])
            else:
                self._replace(tx, "Users", item, read)
            self._count(operation, len(tx))
            self._unique(tx, record)

        self._attempt(operation, write)

    def _move(self, operation: str, tx: TransactionBuilder, read: Item, item: Item,
              old_email: str, new_email: str) -> None:
        """The user's item and every order and cart line of theirs, to the new partition."""
        self._remove(tx, "Users", read)
        tx.create("Users", item, entity="User")
        held = [i for i in self._query("Users", old_email)
                if i["SK"]["S"].startswith(("ORDER#", "CART#"))]
        self._count(operation, len(tx) + 2 * len(held))
        for old in held:
            self._remove(tx, "Users", old)
            moved = {**old, "PK": {"S": new_email}, VERSION: {"N": str(_version(old) + 1)}}
            tx.create("Users", moved)

    def delete_user(self, user_id: int) -> None:
        """Delete a user with what MySQL's cascades took: their products (and every cart
        line holding one), orders, cart lines, username guard and holder links. InUse
        when one of their products was ordered."""
        operation = "users.delete"

        def write() -> None:
            read = self._user(user_id)
            old = self._values("User", read)
            tx = self._tx()
            removed: set[tuple[str, str, str]] = set()

            def remove(table: str, item: Item) -> None:
                key = (table, item["PK"]["S"], item["SK"]["S"])
                if key not in removed:
                    removed.add(key)
                    self._remove(tx, table, item)

            def unlink(product_id: str, sk: str) -> None:
                key = ("Products", product_id, sk)
                if key not in removed:
                    removed.add(key)
                    tx.delete("Products", {"PK": {"S": product_id}, "SK": {"S": sk}})

            remove("Users", read)
            mapper = self.mappers["User"]
            for guard in mapper.guard_items(old):
                tx.delete("Users", {"PK": guard["PK"], "SK": guard["SK"]},
                          condition="_owner = :o", values={"o": mapper.owner(old)})
            for product in self._query("Products", str(user_id), index="GSI2"):
                if product.get("_type", {}).get("S") != "PRODUCT":
                    continue
                product_id = int(product["id"]["N"])
                links = self._holders(product_id)
                if any(link["SK"]["S"].startswith(f"{HELD_PREFIX}ORDER#") for link in links):
                    raise InUse("user", {"id": user_id}, "order_items")
                remove("Products", product)
                for _, line in self._held(product_id, links):
                    if line is not None:
                        remove("Users", line)
                for link in links:
                    unlink(str(product_id), link["SK"]["S"])
            for held in self._query("Users", old["email"]):
                sk = held["SK"]["S"]
                if sk.startswith("CART#"):
                    remove("Users", held)
                    unlink(sk.removeprefix("CART#"), f"{HELD_PREFIX}CART#{user_id}")
                elif sk.startswith("ORDER#"):
                    remove("Users", held)
                    for line in self._values("Order", held)["order_items"]:
                        unlink(str(line["product_id"]), f"{HELD_PREFIX}ORDER#{held['id']['N']}")
            self._count(operation, len(tx))
            tx.commit()

        self._attempt(operation, write)

    def upgrade_to_seller(self, user_id: int) -> None:
        self.update_user(user_id, {"is_seller": True}, "users.upgrade_to_seller")

    # -- products ----------------------------------------------------------------------
    def create_product(self, seller_id: int, data: Mapping[str, Any]) -> int:
        values = _checked(PRODUCTS, data, PRODUCT_WRITABLE, PRODUCT_REQUIRED)
        product_id = self.ids["products"].next()
        now = _now()
        record = {"description": None, "inventory_quantity": 0, "image_url": None, **values,
                  "seller_id": seller_id, "id": product_id, "created_at": now,
                  "updated_at": now}

        def write() -> int:
            seller = self._user(seller_id)
            category = self._category(record["category_id"])
            tx = self._tx()
            tx.create("Products", self._item("Product", record, 1), entity="Product")
            # Moving the seller's and the category's versions on serializes this create
            # with their deletion (which lists their products first).
            self._touch(tx, "Users", seller)
            self._touch(tx, "Categories", category)
            tx.commit()
            return product_id

        return self._attempt("products.create_product", write)

    def update_product(self, product_id: int, seller_id: int, data: Mapping[str, Any]) -> None:
        changes = _checked(PRODUCTS, data, PRODUCT_WRITABLE)
        self._change_product("products.update_product", product_id, changes, seller_id)

    def update_inventory(self, product_id: int, quantity: int) -> None:
        quantity = _checked_int("product", "inventory_quantity", quantity, minimum=0)
        self._change_product("products.update_inventory", product_id,
                             {"inventory_quantity": quantity})

    def _change_product(self, operation: str, product_id: int, changes: Mapping[str, Any],
                        seller_id: int | None = None) -> None:
        def write() -> None:
            read = self._product(product_id)
            old = self._values("Product", read)
            if seller_id is not None and old["seller_id"] != seller_id:
                raise NotOwner(product_id, seller_id)
            category = self._category(changes["category_id"]) \
                if changes.get("category_id", old["category_id"]) != old["category_id"] else None
            record = {**old, **changes, "updated_at": _now()}
            tx = self._tx()
            self._replace(tx, "Products", self._item("Product", record, _version(read) + 1), read)
            if category is not None:
                self._touch(tx, "Categories", category)
            if record["name"] != old["name"] or record["price"] != old["price"]:
                self._rewrite_holders(operation, tx, product_id, record)
            self._count(operation, len(tx))
            tx.commit()

        self._attempt(operation, write)

    def _holders(self, product_id: int) -> list[Item]:
        return list(self._query("Products", str(product_id), HELD_PREFIX))

    def _cart_line(self, user_id: int, product_id: int) -> tuple[Item, Item | None]:
        user = self._user(user_id)
        line = self._get("Users", {"PK": user["PK"], "SK": {"S": f"CART#{product_id}"}})
        if line is None:
            # No line where the index says the user is: make sure the user is still there
            # (an index behind an email change would send us to the old partition).
            current = self._get("Users", {"PK": user["PK"], "SK": user["SK"]})
            if current is None or _version(current) != _version(user):
                raise _Retry
        return user, line

    def _held(self, product_id: int, links: Sequence[Item]) -> list[tuple[Item, Item | None]]:
        """Each link with the cart line or order it names, read consistently: first where
        the link says its holder is, then, for holders that moved since (an email change),
        through the index. None: the holder is gone (a stale link, say from rows MySQL held
        at the switch that DynamoDB never had); its writer drops the link, its product's
        version guarding against a holder added meanwhile."""
        def where(link: Item) -> Item:
            kind, _, holder = link["SK"]["S"][len(HELD_PREFIX):].partition("#")
            sk = f"CART#{product_id}" if kind == "CART" else link["sk"]["S"]
            return {"PK": link["at"], "SK": {"S": sk}}

        keys = [where(link) for link in links if "at" in link]
        found = self._batch_get("Users", keys)
        held: list[tuple[Item, Item | None]] = []
        for link in links:
            kind, _, holder = link["SK"]["S"][len(HELD_PREFIX):].partition("#")
            item = found.get((link["at"]["S"], where(link)["SK"]["S"])) if "at" in link else None
            if item is None:
                if kind == "CART":
                    with contextlib.suppress(NotFound):  # the user is gone
                        item = self._cart_line(int(holder), product_id)[1]
                else:
                    item = self._by_id("Users", "GSI3", "ORDER", int(holder))
            held.append((link, item))
        return held

    def _rewrite_holders(self, operation: str, tx: TransactionBuilder, product_id: int,
                         product: Mapping[str, Any]) -> None:
        links = self._holders(product_id)
        self._count(operation, len(tx) + len(links))
        found = self._held(product_id, links)
        # A link whose hint is stale (its holder moved with an email change) costs index
        # reads on every change that meets it: this change points it at the holder again,
        # as far as the transaction has room (the hint is only a hint).
        room = ACTIONS - len(tx) - len(links)
        for link, held in found:
            if held is not None and room > 0 and _moved(link, held):
                kind, _, holder = link["SK"]["S"][len(HELD_PREFIX):].partition("#")
                tx.put("Products", self._link(product_id, kind, int(holder), held))
                room -= 1
        for link, held in found:
            if held is None:
                tx.delete("Products", {"PK": link["PK"], "SK": link["SK"]})
            elif held["SK"]["S"].startswith("CART#"):
                line = held
                record = {**self._values("CartItem", line), "user_email": line["PK"]["S"],
                          "product_name": product["name"], "product_price": product["price"]}
                self._replace(tx, "Users", self._item("CartItem", record, _version(line) + 1),
                              line)
            else:
                order = held
                record = {**self._values("Order", order), "user_email": order["PK"]["S"]}
                record["order_items"] = [
                    {**line, "product_name": product["name"]}
                    if int(line["product_id"]) == product_id else line
                    for line in record["order_items"]]
                self._replace(tx, "Users", self._item("Order", record, _version(order) + 1),
                              order)

    def delete_product(self, product_id: int, seller_id: int) -> None:
        operation = "products.delete_product"

        def write() -> None:
            read = self._product(product_id)
            if self._values("Product", read)["seller_id"] != seller_id:
                raise NotOwner(product_id, seller_id)
            links = self._holders(product_id)
            if any(link["SK"]["S"].startswith(f"{HELD_PREFIX}ORDER#") for link in links):
                raise InUse("product", {"id": product_id}, "order_items")
            self._count(operation, 1 + 2 * len(links))
            tx = self._tx()
            self._remove(tx, "Products", read)
            for link, line in self._held(product_id, links):
                if line is not None:
                    self._remove(tx, "Users", line)
                tx.delete("Products", {"PK": link["PK"], "SK": link["SK"]})
            tx.commit()

        self._attempt(operation, write)

    # -- orders --------------------------------------------------------------------------
    def create_order(self, user_id: int, total_amount: Decimal) -> int:
        total = _checked_value(ORDERS, "total_amount", total_amount)
        order_id = self.ids["orders"].next()
        now = _now()

        def write() -> int:
            user = self._user(user_id)
            record = {"id": order_id, "user_id": user_id, "total_amount": total,
                      "status": "pending", "created_at": now, "updated_at": now,
                      "order_items": [], "user_email": user["PK"]["S"]}
            tx = self._tx()
            tx.create("Users", self._item("Order", record, 1), entity="Order")
            self._touch(tx, "Users", user)
            tx.commit()
            return order_id

        return self._attempt("orders.create_order", write)

    def create_order_item(self, order_id: int, product_id: int, quantity: int,
                          price_at_time: Decimal) -> int:
        line = {"product_id": product_id,
                "quantity": _checked_quantity(ORDER_ITEMS, quantity),
                "price_at_time": _checked_value(ORDER_ITEMS, "price_at_time", price_at_time)}
        item_id = self.ids["order_items"].next()

        def write() -> int:
            order = self._order(order_id)
            product = self._product(product_id)
            record = {**self._values("Order", order), "user_email": order["PK"]["S"]}
            record["order_items"] = [*record["order_items"], {
                "id": item_id, **line, "product_name": self._values("Product", product)["name"]}]
            tx = self._tx()
            self._replace(tx, "Users", self._item("Order", record, _version(order) + 1), order)
            self._touch(tx, "Products", product)
            tx.put("Products", self._link(product_id, "ORDER", order_id, order))
            tx.commit()
            return item_id

        return self._attempt("orders.create_order_item", write)

    def update_order_status(self, order_id: int, status: str) -> None:
        status = _checked_value(ORDERS, "status", status)

        def write() -> None:
            order = self._order(order_id)
            record = {**self._values("Order", order), "user_email": order["PK"]["S"],
                      "status": status, "updated_at": _now()}
            tx = self._tx()
            self._replace(tx, "Users", self._item("Order", record, _version(order) + 1), order)
            tx.commit()

        self._attempt("orders.update_order_status", write)

    # -- categories ------------------------------------------------------------------------
    def create_category(self, data: Mapping[str, Any]) -> int:
        values = _checked(CATEGORIES, data, CATEGORY_WRITABLE, CATEGORY_REQUIRED)
        category_id = self.ids["categories"].next()
        record = {"parent_id": None, **values, "id": category_id, "created_at": _now()}

        def write() -> int:
            with _one_key_each("category", record["name"]):
                return create()

        def create() -> int:
            tx = self._tx()
            parent = None
            if record["parent_id"] is not None:
                parent = self._category(record["parent_id"])
                record["parent_name"] = self._values("Category", parent)["name"]
            else:
                record["parent_name"] = None
            tx.create("Categories", self._item("Category", record, 1), entity="Category")
            if parent is not None:  # a rename of the parent lists its children first
                self._touch(tx, "Categories", parent)
            try:
                tx.commit()
            except TransactionItemExists as err:
                raise Conflict("category", "name", record["name"]) from err
            return category_id

        return self._attempt("categories.create", write)

    def update_category(self, category_id: int, data: Mapping[str, Any]) -> None:
        """Rename or move a category; a rename moves its children (keyed by its name)."""
        changes = _checked(CATEGORIES, data, CATEGORY_WRITABLE)
        operation = "categories.update"

        def write() -> None:
            with _one_key_each("category", changes.get("name")):
                update(self._category(category_id))

        def update(read: Item) -> None:
            old = self._values("Category", read)
            record = {"parent_id": None, "parent_name": None, **old, **changes}
            parent = None
            if record["parent_id"] != old.get("parent_id"):
                if record["parent_id"] is not None:
                    self._refuse_cycle(category_id, record["parent_id"])
                    parent = self._category(record["parent_id"])
                    record["parent_name"] = self._values("Category", parent)["name"]
                else:
                    record["parent_name"] = None
            item = self._item("Category", record, _version(read) + 1)
            tx = self._tx()
            if (item["PK"], item["SK"]) == (read["PK"], read["SK"]):
                self._replace(tx, "Categories", item, read)
            else:
                self._remove(tx, "Categories", read)
                tx.create("Categories", item, entity="Category")
            if parent is not None:
                self._touch(tx, "Categories", parent)
            if record["name"] != old["name"]:
                children = self._children(category_id, old["name"])
                self._count(operation, len(tx) + 2 * len(children))
                for child in children:
                    moved = {**self._values("Category", child), "parent_name": record["name"]}
                    self._remove(tx, "Categories", child)
                    tx.create("Categories", self._item("Category", moved, _version(child) + 1))
            self._count(operation, len(tx))
            try:
                tx.commit()
            except TransactionItemExists as err:
                raise Conflict("category", "name", record["name"]) from err

        self._attempt(operation, write)

    def _children(self, category_id: int, name: str) -> list[Item]:
        # Two parents with one name share a partition: this parent's children only.
        return [child for child in self._query("Categories", name)
                if child.get("parent_id", {}).get("N") == str(category_id)]

    def _refuse_cycle(self, category_id: int, parent_id: int) -> None:
        seen: set[int] = set()
        current: int | None = parent_id
        while current is not None and current not in seen:
            if current == category_id:
                raise InvalidInput("category", "parent_id", f"{parent_id} is category "
                                   f"{category_id} or one of its descendants")
            seen.add(current)
            current = self._values("Category", self._category(current)).get("parent_id")

    def delete_category(self, category_id: int) -> None:
        """Delete a category; its children become roots. InUse while it holds products."""
        operation = "categories.delete"

        def write() -> None:
            with _one_key_each("category", "a child's name among the roots"):
                delete(self._category(category_id))

        def delete(read: Item) -> None:
            if any(p.get("_type", {}).get("S") == "PRODUCT"
                   for p in self._query("Products", str(category_id), index="GSI1")):
                raise InUse("category", {"id": category_id}, "products")
            children = self._children(category_id, self._values("Category", read)["name"])
            self._count(operation, 1 + 2 * len(children))
            tx = self._tx()
            self._remove(tx, "Categories", read)
            for child in children:
                root = {**self._values("Category", child), "parent_id": None,
                        "parent_name": None}
                self._remove(tx, "Categories", child)
                tx.create("Categories", self._item("Category", root, _version(child) + 1))
            try:
                tx.commit()
            except TransactionItemExists as err:
                raise Conflict("category", "name", "a child's name among the roots") from err

        self._attempt(operation, write)

    # -- the cart ----------------------------------------------------------------------------
    def add_item(self, user_id: int, product_id: int, quantity: int) -> None:
        quantity = _checked_quantity(CARTS, quantity)

        def write() -> None:
            user, line = self._cart_line(user_id, product_id)
            tx = self._tx()
            if line is not None:
                record = {**self._values("CartItem", line), "user_email": user["PK"]["S"]}
                record["quantity"] += quantity
                record["updated_at"] = _now()
                self._replace(tx, "Users", self._item("CartItem", record, _version(line) + 1),
                              line)
                tx.commit()
                return
            product = self._product(product_id)
            values = self._values("Product", product)
            now = _now()
            record = {"user_id": user_id, "product_id": product_id, "quantity": quantity,
                      "product_name": values["name"], "product_price": values["price"],
                      "created_at": now, "updated_at": now, "user_email": user["PK"]["S"]}
            tx.create("Users", self._item("CartItem", record, 1), entity="CartItem")
            self._touch(tx, "Users", user)
            self._touch(tx, "Products", product)
            tx.put("Products", self._link(product_id, "CART", user_id,
                                          {"PK": user["PK"], "SK": {"S": f"CART#{product_id}"}}))
            tx.commit()

        self._attempt("cart.add_item", write)

    def update_item_quantity(self, user_id: int, product_id: int, quantity: int) -> None:
        quantity = _checked_quantity(CARTS, quantity)

        def write() -> None:
            user, line = self._cart_line(user_id, product_id)
            if line is None:
                raise NotFound("cart line", {"user_id": user_id, "product_id": product_id})
            record = {**self._values("CartItem", line), "user_email": user["PK"]["S"],
                      "quantity": quantity, "updated_at": _now()}
            tx = self._tx()
            self._replace(tx, "Users", self._item("CartItem", record, _version(line) + 1), line)
            tx.commit()

        self._attempt("cart.update_item_quantity", write)

    def remove_item(self, user_id: int, product_id: int) -> None:
        def write() -> None:
            _, line = self._cart_line(user_id, product_id)
            if line is None:
                raise NotFound("cart line", {"user_id": user_id, "product_id": product_id})
            tx = self._tx()
            self._remove(tx, "Users", line)
            tx.delete("Products", {"PK": {"S": str(product_id)},
                                   "SK": {"S": f"{HELD_PREFIX}CART#{user_id}"}})
            tx.commit()

        self._attempt("cart.remove_item", write)

    # Lines a `clear_cart` transaction removes (each line and its link: two actions).
    clear_chunk = ACTIONS // 2

    def clear_cart(self, user_id: int) -> int:
        # Each line's removal stands on its own, so a cart of any size is cleared in
        # transactions of up to `clear_chunk` lines.
        def write() -> int:
            user = self._user(user_id)
            lines = list(self._query("Users", user["PK"]["S"], "CART#"))
            for start in range(0, len(lines), self.clear_chunk):
                tx = self._tx()
                for line in lines[start:start + self.clear_chunk]:
                    self._remove(tx, "Users", line)
                    product_id = int(line["SK"]["S"].removeprefix("CART#"))
                    tx.delete("Products", {"PK": {"S": str(product_id)},
                                           "SK": {"S": f"{HELD_PREFIX}CART#{user_id}"}})
                tx.commit()
            return len(lines)

        return self._attempt("cart.clear_cart", write)


def fence_name(contract: Contract, ddb: DynamoDB) -> str:
    """The name of the shop's write fence: its tables' physical names."""
    return "+".join(ddb.table_name(table.name) for table in contract.tables)


def enter_dynamodb_only(flags: Any, writes: ShopWrites, names: Sequence[str]) -> int:
    """Move the shop's flags `names` to `dynamodb_only` in one transaction (no gate asked),
    then write the holder links and mark the shop ready; returns the links written."""
    flags.set_phases(list(names), "dynamodb_only")
    return writes.prepare()
