"""Reproducible seed data for the reference shop, at any scale.

`seed(engine, users=N)` fills the six shop tables with about 10.5 rows per
user (users, a slowly growing category tree, ~5% sellers with their
products, carts for about half the users, orders with 1-5 items each). The
same `seed` number gives byte-identical rows: every id is explicit, every
timestamp counts from a fixed base date, and each table draws from its own
`random.Random` stream, so neither the batch size nor the order of inserts
changes a value.

The data deliberately holds the cases a migration trips over: non-ASCII
(including 4-byte) names, usernames and emails, NULL optional columns, an
empty description next to NULL ones, descriptions of tens of KB (measured
in UTF-8 bytes against TEXT's 65535-byte limit), strings at their column's
maximum length, prices with cents, and two leaf categories with the same
name under different parents. It never produces two sibling categories with
the same name, nor two same-named categories that both have children (their
DynamoDB keys would collide; tests create such collisions on purpose).
Emails and usernames never contain '#'.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migration.errors import MigrateError, Terminal
from migration.shop.models import TABLES

# Naive datetimes are UTC: the seeding session runs with time_zone '+00:00'.
BASE_TIME = datetime(2023, 1, 1)
DAY = 86_400
YEAR = 365 * DAY

SELLER_SHARE = 0.05
CART_SHARE = 0.5
# The longest description, in UTF-8 bytes: large, yet under TEXT's 65535.
LONGEST_DESCRIPTION = 60 * 1024

Progress = Callable[[str, int], None]
"""Called after each batch with the table name and the rows inserted into it so far."""

Row = tuple[Any, ...]


class SeedRefused(MigrateError, Terminal):
    """The shop cannot be seeded as asked (bad arguments, tables missing)."""


class ShopNotEmpty(SeedRefused):
    """The shop tables already hold rows; pass `reset=True` to replace them."""

    def __init__(self, rows: dict[str, bool]):
        self.tables = sorted(name for name, has_rows in rows.items() if has_rows)
        super().__init__("the shop tables are not empty (" + ", ".join(self.tables)
                         + "); seed with reset=True to delete their rows first")


@dataclass(frozen=True)
class SeedCounts:
    """How many rows `seed` inserted into each table."""

    users: int = 0
    categories: int = 0
    products: int = 0
    shopping_carts: int = 0
    orders: int = 0
    order_items: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


# --- vocabulary -----------------------------------------------------------------

FIRST_NAMES = (
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Lucas", "Mia", "Mateo", "Sofia", "Ethan",
    "Isabella", "James", "Amelia", "Daniel", "Harper", "Leo", "Chloé", "Zoë", "José",
    "Søren", "Łukasz", "François", "Björn", "Anaïs", "Raúl", "Jean-Luc", "Siobhán", "Ngọc",
    "Aiko", "Priya", "Fatima", "Олег", "Αλέξης", "美玲", "小龙", "Mårten", "İlkay", "Dvořák",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor",
    "Anderson", "Thomas", "Moore", "Martin", "García", "Müller", "Núñez", "O'Brien",
    "Nguyễn", "Kowalski", "Rossi", "Dubois", "Øster", "Yılmaz", "Tanaka", "Silva", "Kim",
    "van der Berg", "Schmidt", "Иванова", "Παπαδόπουλος", "李", "王",
)
DOMAINS = ("example.com", "example.com", "example.com", "mail.example.org", "example.net",
           "shop.example.co.uk", "exämple.de", "例え.jp")

# (first_name, last_name, username, email) of users 1.., placed first so the
# awkward cases exist at any scale. None of them ends in ".<digits>", the
# suffix every generated username and email carries, so none can collide
# with a generated one even under the case- and accent-blind collation.
NOTABLE_USERS: tuple[tuple[str | None, str | None, str, str], ...] = (
    ("José", "Núñez", "josé_núñez", "jose.nunez@example.com"),
    ("Zoë", "Müller", "zoë", "zoë.müller@exämple.de"),
    ("小龙", "李", "李小龙", "xiaolong.li@例え.jp"),
    (None, None, "anonymous", "anonymous@example.org"),
    ("Siobhán", "O'Brien", "siobhán_o'brien", "siobhan.o'brien@example.ie"),
    ("Łukasz", None, "łukasz", "łukasz@przykład.pl"),
    (None, "Øster", "øster", "oster@example.dk"),
    ("Emoji", "Fan 🎉", "emoji_fan_🎉", "emoji.fan@example.com"),
    # Every string at its column's maximum length (first/last 50, username 50, email 100).
    ("Maximilianus" + "x" * 37 + "é", "Ñ" * 50, "u" * 49 + "ü",
     "é" + "m" * 63 + "@long-mail-subdomain-here.exämple.de"),
)

ROOT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Electronics": ("Phones", "Laptops", "Audio", "Cameras", "Wearables"),
    "Home & Kitchen": ("Cookware", "Furniture", "Café & Thé", "Lighting"),
    "Books": ("Fiction", "Science", "Children's Books", "日本の本"),
    "Clothing": ("Women", "Men", "Kids", "Shoes"),
    "Sports & Outdoors": ("Cycling", "Camping", "Fitness", "Winter Sports"),
    "Toys & Games": ("Board Games", "Puzzles", "Building Sets"),
    "Beauty": ("Skincare", "Fragrance", "Crème & Lotions"),
    "Garden": ("Plants", "Garden Tools", "Outdoor Furniture"),
}
QUALIFIERS = ("Premium", "Everyday", "Refurbished", "Vintage", "Eco", "Professional",
              "Travel")
BRANDS = ("Acme", "Globex", "Initech", "Müller & Söhne", "Ōkami", "Søstrene", "Umbrella")
# The deliberate same-name pair: two leaves, under different parents.
SHARED_LEAF = "Accessories"
SHARED_LEAF_PARENTS = ("Phones", "Laptops")

ADJECTIVES = ("Classic", "Compact", "Deluxe", "Ergonomic", "Handmade", "Smart", "Wireless",
              "Organic", "Ultra-light", "Crème", "Über", "Rustic", "Nordic", "Kyōto")
NOUNS = ("Headphones", "Backpack", "Kettle", "Desk Lamp", "Notebook", "Water Bottle",
         "Café-Maschine", "Tent", "Puzzle", "Sneakers", "Jacket", "Blender", "Speaker",
         "Smörgåsbord Plate", "Santoku Knife 包丁", "Yoga Mat", "Board Game", "Watch")

SENTENCES = (
    "Built to last and easy to clean.",
    "Ships in recycled packaging.",
    "A favourite of our customers since 2019.",
    "Hergestellt in Deutschland — Qualität, die man spürt.",
    "Fabriqué à la main, pièce unique.",
    "日本製の高品質な素材を使用しています。",
    "Comes with a two-year warranty.",
    "Handwash only; do not tumble dry.",
    "Includes a 🎁 gift box.",
    "Größe: 30 × 20 × 10 cm; Gewicht: 1,2 kg.",
)

ORDER_STATUSES = ("completed", "pending", "cancelled")
ORDER_STATUS_WEIGHTS = (70, 20, 10)
QUANTITIES = (1, 1, 1, 1, 2, 2, 3, 4)
BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


# --- generation -------------------------------------------------------------------


def _rng(seed: int, stream: str) -> random.Random:
    # A string seed is hashed with SHA-512, the same on every run and platform.
    return random.Random(f"shop-seed/{seed}/{stream}")


def _at(seconds: int) -> datetime:
    return BASE_TIME + timedelta(seconds=seconds)


@dataclass(frozen=True)
class CategoryTree:
    rows: list[Row]           # (id, name, parent_id, created_at)
    leaves: list[int]         # ids of categories without children
    shared_leaves: list[int]  # ids of the two same-named leaves


def category_tree(users: int) -> CategoryTree:
    """The category tree for a shop of `users` users: four levels, growing slowly with scale.

    Roots and their departments are fixed (38 categories); each department
    gets log10(users) - 1 qualified subcategories (1 to 5), the first
    department of each root has a "Premium" subcategory with brand leaves.
    """
    magnitude = int(math.log10(max(users, 1)))
    per_department = min(max(magnitude - 1, 1), len(QUALIFIERS))
    brands = min(max(magnitude, 2), len(BRANDS))
    rows: list[Row] = []
    parents: set[int] = set()
    shared: list[int] = []

    def add(name: str, parent: int | None) -> int:
        new_id = len(rows) + 1
        # Categories predate every user: they count back from the base date.
        rows.append((new_id, name, parent, _at(-30 * DAY + new_id * 60)))
        if parent is not None:
            parents.add(parent)
        return new_id

    for root_name, departments in ROOT_CATEGORIES.items():
        root = add(root_name, None)
        for position, department_name in enumerate(departments):
            department = add(department_name, root)
            for qualifier in QUALIFIERS[:per_department]:
                sub = add(f"{qualifier} {department_name}", department)
                if position == 0 and qualifier == QUALIFIERS[0]:
                    for brand in BRANDS[:brands]:
                        add(brand, sub)
            if department_name in SHARED_LEAF_PARENTS:
                shared.append(add(SHARED_LEAF, department))
    leaves = [row[0] for row in rows if row[0] not in parents]
    return CategoryTree(rows, leaves, shared)


@dataclass
class _Catalog:
    """What later tables need to know about users and products, indexed by id - 1."""

    user_created: list[int]
    product_created: list[int]
    product_price: list[Decimal]


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch not in " \t")


def _password_hash(rng: random.Random) -> str:
    return "$2b$12$" + "".join(rng.choices(BCRYPT_ALPHABET, k=53))


def _user_rows(count: int, seed: int, sellers: set[int], catalog: _Catalog) -> Iterator[Row]:
    """(id, username, email, password_hash, first_name, last_name, is_seller,
    super_admin, created_at, updated_at)"""
    rng = _rng(seed, "users")
    # Sign-ups spread over a year in id order, one per slot, so created_at grows with id.
    slot = max(YEAR // count, 1)
    for user_id in range(1, count + 1):
        created = (user_id - 1) * slot + rng.randrange(slot)
        catalog.user_created.append(created)
        updated = created if rng.random() < 0.6 else created + rng.randrange(200 * DAY)
        password = _password_hash(rng)
        if user_id <= len(NOTABLE_USERS):
            first, last, username, email = NOTABLE_USERS[user_id - 1]
        else:
            first = rng.choice(FIRST_NAMES) if rng.random() > 0.08 else None
            last = rng.choice(LAST_NAMES) if rng.random() > 0.08 else None
            local = f"{_slug(first or 'user')}.{_slug(last or 'shopper')}"
            username = f"{local}.{user_id}"
            email = f"{local}.{user_id}@{rng.choice(DOMAINS)}"
        yield (user_id, username, email, password, first, last, user_id in sellers,
               user_id == 1 or rng.random() < 0.001, _at(created), _at(updated))


def _pick_sellers(users: int, seed: int) -> list[int]:
    rng = _rng(seed, "sellers")
    wanted = max(1, round(users * SELLER_SHARE))
    # The first two notable users (non-ASCII names and email) always sell.
    forced = list(range(1, min(users, 2) + 1))
    rest = rng.sample(range(len(forced) + 1, users + 1), max(wanted - len(forced), 0))
    return sorted(forced + rest)


def _description(rng: random.Random, product_id: int) -> str | None:
    if product_id == 1:
        return _long_text(rng, LONGEST_DESCRIPTION)
    if product_id == 4:
        return ""  # empty, as opposed to the NULL ones
    draw = rng.random()
    if draw < 0.12:
        return None
    if draw < 0.14:
        return _long_text(rng, rng.randrange(2_000, 40_000))
    return " ".join(rng.sample(SENTENCES, rng.randint(1, 3)))


def _long_text(rng: random.Random, size: int) -> str:
    """Text of exactly `size` UTF-8 bytes or a few fewer (never a split character)."""
    parts: list[str] = []
    length = 0
    while length < size:
        sentence = rng.choice(SENTENCES)
        parts.append(sentence)
        length += len(sentence.encode("utf-8")) + 1
    return " ".join(parts).encode("utf-8")[:size].decode("utf-8", errors="ignore")


def _price(rng: random.Random) -> Decimal:
    cents = rng.randrange(99, 50_000) if rng.random() < 0.95 else rng.randrange(50_000, 500_000)
    return Decimal(cents).scaleb(-2)


def _product_rows(sellers: Sequence[int], tree: CategoryTree, seed: int,
                  catalog: _Catalog) -> Iterator[Row]:
    """(id, seller_id, category_id, name, description, price, inventory_quantity,
    image_url, created_at, updated_at)"""
    rng = _rng(seed, "products")
    product_id = 0
    for seller in sellers:
        for _ in range(rng.randint(2, 8)):
            product_id += 1
            # The first products land in the two same-named categories, so that
            # the duplicate name holds data at every scale.
            if product_id <= len(tree.shared_leaves):
                category = tree.shared_leaves[product_id - 1]
            else:
                category = rng.choice(tree.leaves)
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
            if product_id == 3:
                name = (name + " — édition spéciale " + "ü" * 200)[:200]
            elif rng.random() < 0.5:
                name = f"{name} {rng.choice('XSMQ')}{rng.randint(1, 999)}"
            price = Decimal("0.01") if product_id == 2 else _price(rng)
            description = _description(rng, product_id)
            inventory = 0 if rng.random() < 0.1 else rng.randint(1, 1000)
            image = (None if rng.random() < 0.2
                     else f"https://images.example.com/products/{product_id}.jpg")
            created = catalog.user_created[seller - 1] + rng.randrange(3600, 30 * DAY)
            updated = created if rng.random() < 0.5 else created + rng.randrange(90 * DAY)
            catalog.product_created.append(created)
            catalog.product_price.append(price)
            yield (product_id, seller, category, name, description, price, inventory, image,
                   _at(created), _at(updated))


def _cart_rows(users: int, seed: int, catalog: _Catalog) -> Iterator[Row]:
    """(user_id, product_id, quantity, created_at, updated_at)"""
    rng = _rng(seed, "carts")
    products = len(catalog.product_created)
    for user_id in range(1, users + 1):
        if rng.random() >= CART_SHARE:
            continue
        lines = min(rng.randint(1, 4), products)
        for product_id in sorted(rng.sample(range(1, products + 1), lines)):
            start = max(catalog.user_created[user_id - 1],
                        catalog.product_created[product_id - 1])
            created = start + rng.randrange(60 * DAY)
            updated = created if rng.random() < 0.7 else created + rng.randrange(7 * DAY)
            yield (user_id, product_id, rng.choice(QUANTITIES), _at(created), _at(updated))


def _order_rows(users: int, seed: int, catalog: _Catalog) -> Iterator[tuple[Row, list[Row]]]:
    """Each order (id, user_id, total_amount, status, created_at, updated_at) with its
    items (id, order_id, product_id, quantity, price_at_time)."""
    rng = _rng(seed, "orders")
    products = len(catalog.product_created)
    order_id = item_id = 0
    for user_id in range(1, users + 1):
        previous = catalog.user_created[user_id - 1]
        for _ in range(rng.randint(0, 4)):
            order_id += 1
            chosen = rng.sample(range(1, products + 1), min(rng.randint(1, 5), products))
            items: list[Row] = []
            total = Decimal("0.00")
            for product_id in chosen:
                item_id += 1
                price = catalog.product_price[product_id - 1]
                if rng.random() < 0.15:
                    # The price has changed since this order was placed.
                    price = max(Decimal("1.00"), (price * Decimal(rng.randint(80, 120)))
                                .scaleb(-2).quantize(Decimal("0.01")))
                quantity = rng.choice(QUANTITIES)
                total += quantity * price
                items.append((item_id, order_id, product_id, quantity, price))
            # A user's orders follow each other, and each follows its products.
            start = max([previous + 1] + [catalog.product_created[p - 1] for p in chosen])
            created = start + rng.randrange(120 * DAY)
            previous = created
            status = rng.choices(ORDER_STATUSES, ORDER_STATUS_WEIGHTS)[0]
            updated = created if status == "pending" else created + rng.randrange(1, 14 * DAY)
            yield (order_id, user_id, total, status, _at(created), _at(updated)), items


# --- writing --------------------------------------------------------------------------

COLUMNS = {
    "users": ("id", "username", "email", "password_hash", "first_name", "last_name",
              "is_seller", "super_admin", "created_at", "updated_at"),
    "categories": ("id", "name", "parent_id", "created_at"),
    "products": ("id", "seller_id", "category_id", "name", "description", "price",
                 "inventory_quantity", "image_url", "created_at", "updated_at"),
    "shopping_carts": ("user_id", "product_id", "quantity", "created_at", "updated_at"),
    "orders": ("id", "user_id", "total_amount", "status", "created_at", "updated_at"),
    "order_items": ("id", "order_id", "product_id", "quantity", "price_at_time"),
}


class _Writer:
    """Batched multi-row INSERTs on one raw DBAPI connection, committed per batch."""

    def __init__(self, dbapi_connection: Any, batch_size: int, progress: Progress | None):
        self.connection = dbapi_connection
        self.batch_size = batch_size
        self.progress = progress
        self.pending: dict[str, list[Row]] = {name: [] for name in COLUMNS}
        self.written: dict[str, int] = dict.fromkeys(COLUMNS, 0)

    def add(self, table: str, row: Row) -> None:
        rows = self.pending[table]
        rows.append(row)
        if len(rows) >= self.batch_size:
            self.flush(table)

    def flush(self, table: str) -> None:
        rows = self.pending[table]
        if not rows:
            return
        columns = COLUMNS[table]
        # PyMySQL turns executemany of "INSERT ... VALUES (...)" into multi-row
        # INSERTs of up to ~1 MB each: one round trip per few thousand rows.
        sql = (f"INSERT INTO `{table}` ({', '.join(columns)}) "
               f"VALUES ({', '.join(['%s'] * len(columns))})")
        cursor = self.connection.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()
        self.connection.commit()
        self.written[table] += len(rows)
        rows.clear()
        if self.progress is not None:
            self.progress(table, self.written[table])


def _execute(dbapi_connection: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _check_empty(engine: Engine) -> dict[str, bool]:
    names = [table.name for table in TABLES]
    present = set(sa.inspect(engine).get_table_names())
    missing = [name for name in names if name not in present]
    if missing:
        raise SeedRefused(f"the shop tables {', '.join(missing)} do not exist: create them "
                          "with `migrate db upgrade` first")
    with engine.connect() as conn:
        return {name: conn.execute(sa.text(f"SELECT 1 FROM `{name}` LIMIT 1")).first()
                is not None for name in names}


def seed(engine: Engine, users: int, *, seed: int = 0, batch_size: int = 5000,
         progress: Progress | None = None, reset: bool = False) -> SeedCounts:
    """Fill the (empty) shop tables with reproducible data for `users` users.

    About 10.5 rows per user: `users=100_000` gives about a million rows. The
    same `seed` gives the same rows, byte for byte. Refuses (`ShopNotEmpty`)
    when any shop table holds rows, unless `reset=True`, which deletes them
    first. `progress(table, rows_so_far)` is called after every batch.
    """
    if users < 1:
        raise SeedRefused(f"users must be at least 1, not {users}")
    if batch_size < 1:
        raise SeedRefused(f"batch_size must be at least 1, not {batch_size}")
    has_rows = _check_empty(engine)
    if any(has_rows.values()) and not reset:
        raise ShopNotEmpty(has_rows)

    raw = engine.raw_connection()
    try:
        # The generator's rows are consistent by construction, and checking a
        # million foreign and unique keys one row at a time is most of the cost.
        _execute(raw, "SET SESSION foreign_key_checks = 0, unique_checks = 0")
        if reset:
            for table in reversed(TABLES):
                _execute(raw, f"TRUNCATE TABLE `{table.name}`")
        writer = _Writer(raw, batch_size, progress)
        _generate(writer, users, seed)
        _execute(raw, "SET SESSION foreign_key_checks = 1, unique_checks = 1")
    except BaseException:
        # Never hand a connection without key checks back to the pool.
        raw.invalidate()
        raise
    finally:
        raw.close()
    return SeedCounts(**writer.written)


def _generate(writer: _Writer, users: int, seed: int) -> None:
    tree = category_tree(users)
    for row in tree.rows:
        writer.add("categories", row)
    writer.flush("categories")

    catalog = _Catalog([], [], [])
    sellers = _pick_sellers(users, seed)
    for row in _user_rows(users, seed, set(sellers), catalog):
        writer.add("users", row)
    writer.flush("users")

    for row in _product_rows(sellers, tree, seed, catalog):
        writer.add("products", row)
    writer.flush("products")

    for row in _cart_rows(users, seed, catalog):
        writer.add("shopping_carts", row)
    writer.flush("shopping_carts")

    for order, items in _order_rows(users, seed, catalog):
        writer.add("orders", order)
        for item in items:
            writer.add("order_items", item)
    writer.flush("orders")
    writer.flush("order_items")
