"""catalog's data access: plain SQL over asyncpg inside TenantDatabase transactions (RLS-scoped).

Every function returns domain entities, never asyncpg records, and turns the foreign-key and
unique violations a write can meet (by constraint name) into the caller's error.

Tours are always read with their product's base price (their effective price falls back on
it), through a join with products; writes to tours are wrapped in a CTE so that they return
the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import asyncpg

from libs.errors import Aborted, AlreadyExists, InvalidArgument
from libs.filtering import (
    EQUALITY,
    ORDERING,
    FilterField,
    compile_filter,
    to_enum_label,
    to_like_pattern,
    to_timestamp,
    to_uuid,
)
from libs.persistence import IN_ORG, insert_sql, keyset_after, order_by, update_sql
from services.catalog.domain import (
    BOOKING_STATUSES,
    INTEREST_STATUSES,
    PRODUCT_TYPES,
    TOUR_STATUSES,
    Booking,
    BookingChange,
    ClientProduct,
    Partner,
    Price,
    Product,
    Seats,
    Tour,
    check_currency,
    missing_reference,
    parse_decimal,
)

T = TypeVar("T")

# --- row shapes ----------------------------------------------------------------------------------

PARTNER_COLUMNS = ("id, name, contact_phone, contact_email, contact_whatsapp, contact_telegram, conditions, "
                   "rating, is_available, created_at, updated_at")
PRODUCT_COLUMNS = ("id, name, description, duration, type::text AS type, base_price, currency, "
                   "inclusions::text AS inclusions, exclusions::text AS exclusions, options::text AS options, "
                   "is_active, partner_id, created_at, updated_at")
TOUR_COLUMNS = ("t.id, t.product_id, t.start_date, t.end_date, t.max_participants, t.current_participants, "
                "t.price, t.currency, t.status::text AS status, t.notes, t.created_at, t.updated_at, "
                "p.base_price AS product_price, p.currency AS product_currency")
# `t` is the tours table, or the CTE of a write to it (same columns).
TOUR_FROM = "t JOIN products p ON p.organization_id = t.organization_id AND p.id = t.product_id"
TOUR_SELECT = f"SELECT {TOUR_COLUMNS} FROM tours {TOUR_FROM}"
TOUR_IN_ORG = "t.organization_id = (SELECT app.current_org())"
BOOKING_FIELDS = ("id", "client_id", "tour_id", "status", "participants", "notes", "created_at", "updated_at")


def _booking_select(alias: str, prefix: str = "") -> str:
    return ", ".join(f"{alias}.{name}{'::text' if name == 'status' else ''} AS {prefix}{name}"
                     for name in BOOKING_FIELDS)


BOOKING_COLUMNS = _booking_select("client_tours")
GET_TOUR_SQL = f"{TOUR_SELECT} WHERE {TOUR_IN_ORG} AND t.id = $1"
LOCK_TOUR_SQL = GET_TOUR_SQL + " FOR UPDATE OF t"  # the tour row only, not its product
CLIENT_PRODUCT_COLUMNS = "id, client_id, product_id, status::text AS status, notes, created_at, updated_at"

def client_pair_lookup(table: str, columns: str, other: str) -> str:
    """The row of client $1 and tour/product $2 in `table` (unique per pair), read from the
    client's rows: a client has a few, a tour or product may have thousands. Written as one
    filter, the planner may pick the other parent's index when its statistics predate that
    parent's rows (a new tour selling out between two autoanalyze runs) and filter all its rows
    by client, under BookTour's tour lock; the MATERIALIZED CTE leaves it only the client's
    (tests/test_query_plans.py)."""
    return (f"WITH mine AS MATERIALIZED (SELECT * FROM {table} WHERE {IN_ORG} AND client_id = $1) "
            f"SELECT {columns} FROM mine AS {table} WHERE {other} = $2")


class _Casts(dict):
    """Every column casts its parameter to nothing unless listed (asyncpg infers the type)."""

    def __missing__(self, key: str) -> str:
        return ""


CASTS = _Casts(inclusions="::jsonb", exclusions="::jsonb", options="::jsonb")


def _partner(r: asyncpg.Record) -> Partner:
    return Partner(r["id"], r["name"], r["contact_phone"], r["contact_email"], r["contact_whatsapp"],
                   r["contact_telegram"], r["conditions"], r["rating"], r["is_available"], r["created_at"],
                   r["updated_at"])


def _json_list(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def _product(r: asyncpg.Record) -> Product:
    return Product(r["id"], r["name"], r["description"], r["duration"], r["type"],
                   Price(r["base_price"], r["currency"]), _json_list(r["inclusions"]), _json_list(r["exclusions"]),
                   json.loads(r["options"]) if r["options"] else None, r["is_active"], r["partner_id"],
                   r["created_at"], r["updated_at"])


def _tour(r: asyncpg.Record) -> Tour:
    price = Price(r["price"], r["currency"]) if r["price"] is not None else None
    return Tour(r["id"], r["product_id"], r["start_date"], r["end_date"], r["max_participants"],
                r["current_participants"], price, r["status"], r["notes"], r["created_at"], r["updated_at"],
                Price(r["product_price"], r["product_currency"]))


def _booking(r: asyncpg.Record, prefix: str = "") -> Booking:
    return Booking(*(r[prefix + name] for name in BOOKING_FIELDS))


def _client_product(r: asyncpg.Record) -> ClientProduct:
    return ClientProduct(r["id"], r["client_id"], r["product_id"], r["status"], r["notes"], r["created_at"],
                         r["updated_at"])


def _maybe(convert: Callable[[asyncpg.Record], T], row: asyncpg.Record | None) -> T | None:
    return convert(row) if row is not None else None


# --- constraint violations -----------------------------------------------------------------------

# Foreign keys a write can break -> (request field, reason): a reference to something that
# does not exist in the caller's organization (another organization's ids look the same).
_REFERENCES = {
    "fk_products_partner_id": ("partner_id", "PARTNER_NOT_FOUND"),
    "fk_tours_product_id": ("product_id", "PRODUCT_NOT_FOUND"),
    "fk_client_tours_client_id": ("client_id", "CLIENT_NOT_FOUND"),
    "fk_client_tours_tour_id": ("tour_id", "TOUR_NOT_FOUND"),
    "fk_client_products_client_id": ("client_id", "CLIENT_NOT_FOUND"),
    "fk_client_products_product_id": ("product_id", "PRODUCT_NOT_FOUND"),
}


def reference_error(exc: asyncpg.ForeignKeyViolationError, prefix: str) -> Exception:
    if exc.constraint_name not in _REFERENCES:
        return exc
    name, reason = _REFERENCES[exc.constraint_name]
    return missing_reference(f"{prefix}.{name}" if prefix else name, reason)


async def _write(conn: asyncpg.Connection, sql: str, args: Sequence, prefix: str) -> asyncpg.Record | None:
    try:
        return await conn.fetchrow(sql, *args)
    except asyncpg.ForeignKeyViolationError as exc:
        raise reference_error(exc, prefix) from None


# --- lists ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ordering:
    """One sort order of a list: its SQL key columns and the entity attributes they hold."""

    key: str  # the normalized order_by text
    columns: tuple[str, ...]
    attributes: tuple[str, ...]
    key_types: tuple[type, ...]
    descending: bool

    def key_of(self, entity: Any) -> tuple:
        return tuple(getattr(entity, name) for name in self.attributes)


@dataclass(frozen=True)
class Listing(Generic[T]):
    """What one List method may filter and sort on, and how its rows become entities."""

    resource: str
    select: str  # SELECT <columns> FROM <table>
    in_org: str
    filters: Mapping[str, FilterField]
    orderings: Mapping[str, Ordering]
    default_order: str
    entity: Callable[[asyncpg.Record], T]

    def ordering(self, order_by_text: str) -> Ordering:
        key = " ".join(order_by_text.lower().split()) or self.default_order
        if key.endswith(" asc"):
            key = key.removesuffix(" asc")
        if key not in self.orderings:
            raise InvalidArgument.field("order_by", "must be one of: " + ", ".join(self.orderings))
        return self.orderings[key]

    def where(self, filter_text: str) -> tuple[str, list]:
        """The filter as a SQL condition with parameters from $1 (INVALID_ARGUMENT when bad)."""
        return compile_filter(filter_text, self.filters, first_param=1)


def _orderings(columns: Sequence[str], attributes: Sequence[str], key_types: Sequence[type], *,
               ascending: str, descending: str) -> dict[str, Ordering]:
    return {name: Ordering(name, tuple(columns), tuple(attributes), tuple(key_types), desc)
            for name, desc in ((ascending, False), (descending, True))}


async def list_page(conn: asyncpg.Connection, listing: Listing[T], where: str, params: list, ordering: Ordering,
                    after: tuple | None, limit: int) -> list[T]:
    """One keyset page: the filter's parameters first, then the previous page's last key, then
    the limit (one more row than the page, to know whether another follows)."""
    conditions = [listing.in_org, *([where] if where else [])]
    args = list(params)
    if after is not None:
        conditions.append(keyset_after(ordering.columns, ordering.descending, len(args) + 1))
        args += list(after)
    args.append(limit)
    rows = await conn.fetch(
        f"{listing.select} WHERE {' AND '.join(conditions)} "
        f"ORDER BY {order_by(ordering.columns, ordering.descending)} LIMIT ${len(args)}", *args)
    return [listing.entity(row) for row in rows]


def to_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ValueError("must be true or false")
    return lowered == "true"


def to_int(value: str) -> int:
    number = int(value)
    if abs(number) > 2_000_000_000:
        raise ValueError("is out of range")
    return number


def to_currency(value: str) -> str:
    try:
        return check_currency(value, "filter")
    except InvalidArgument:
        raise ValueError("must be an ISO 4217 currency code such as USD") from None


_SEARCH = frozenset({"=", ":"})
_NAME_ORDERINGS = {
    "name": Ordering("name", ("name", "id"), ("name", "id"), (str, UUID), False),
    "create_time desc": Ordering("create_time desc", ("created_at", "id"), ("created_at", "id"),
                                 (datetime, UUID), True),
}
_CREATED_ORDERINGS = _orderings(("created_at", "id"), ("created_at", "id"), (datetime, UUID),
                                ascending="create_time", descending="create_time desc")

PARTNERS: Listing[Partner] = Listing(
    "partners", f"SELECT {PARTNER_COLUMNS} FROM partners", IN_ORG,
    {"is_available": FilterField("is_available", EQUALITY, to_bool),
     "rating": FilterField("rating", ORDERING, parse_decimal),
     "search": FilterField("name ILIKE {p}", _SEARCH, to_like_pattern, template=True)},
    _NAME_ORDERINGS, "name", _partner)

PRODUCTS: Listing[Product] = Listing(
    "products", f"SELECT {PRODUCT_COLUMNS} FROM products", IN_ORG,
    {"type": FilterField("type", EQUALITY, to_enum_label(PRODUCT_TYPES, "PRODUCT_TYPE_")),
     "is_active": FilterField("is_active", EQUALITY, to_bool),
     "partner_id": FilterField("partner_id", EQUALITY, to_uuid),
     "base_price": FilterField("base_price", ORDERING, parse_decimal),
     "currency": FilterField("currency", EQUALITY, to_currency),
     "search": FilterField("(name ILIKE {p} OR description ILIKE {p})", _SEARCH, to_like_pattern, template=True)},
    _NAME_ORDERINGS, "name", _product)

# Seats still bookable; a tour with no limit counts as 2147483647 while open, a final one as 0.
FREE_SEATS_SQL = ("CASE WHEN t.status IN ('AVAILABLE', 'FULL') "
                  "THEN COALESCE(t.max_participants - t.current_participants, 2147483647) ELSE 0 END")

TOURS: Listing[Tour] = Listing(
    "tours", TOUR_SELECT, TOUR_IN_ORG,
    {"product_id": FilterField("t.product_id", EQUALITY, to_uuid),
     "status": FilterField("t.status", EQUALITY, to_enum_label(TOUR_STATUSES, "TOUR_STATUS_")),
     "start_time": FilterField("t.start_date", ORDERING, to_timestamp),
     "end_time": FilterField("t.end_date", ORDERING, to_timestamp),
     "free_seats": FilterField(FREE_SEATS_SQL, ORDERING, to_int)},
    _orderings(("t.start_date", "t.end_date", "t.id"), ("start_time", "end_time", "id"), (datetime, datetime, UUID),
               ascending="start_time", descending="start_time desc"),
    "start_time", _tour)

BOOKINGS: Listing[Booking] = Listing(
    "bookings", f"SELECT {BOOKING_COLUMNS} FROM client_tours", IN_ORG,
    {"tour_id": FilterField("tour_id", EQUALITY, to_uuid),
     "client_id": FilterField("client_id", EQUALITY, to_uuid),
     "status": FilterField("status", EQUALITY, to_enum_label(BOOKING_STATUSES, "CLIENT_TOUR_STATUS_")),
     "create_time": FilterField("created_at", ORDERING, to_timestamp)},
    _CREATED_ORDERINGS, "create_time desc", _booking)

CLIENT_PRODUCTS: Listing[ClientProduct] = Listing(
    "client_products", f"SELECT {CLIENT_PRODUCT_COLUMNS} FROM client_products", IN_ORG,
    {"client_id": FilterField("client_id", EQUALITY, to_uuid),
     "product_id": FilterField("product_id", EQUALITY, to_uuid),
     "status": FilterField("status", EQUALITY, to_enum_label(INTEREST_STATUSES, "CLIENT_PRODUCT_STATUS_")),
     "create_time": FilterField("created_at", ORDERING, to_timestamp)},
    _CREATED_ORDERINGS, "create_time desc", _client_product)


# --- generic single-row statements ---------------------------------------------------------------

async def _get(conn: asyncpg.Connection, table: str, columns: str, row_id: UUID, for_update: bool):
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {columns} FROM {table} WHERE {IN_ORG} AND id = $1{lock}", row_id)


async def _delete(conn: asyncpg.Connection, table: str, row_id: UUID) -> bool:
    return await conn.fetchval(f"DELETE FROM {table} WHERE {IN_ORG} AND id = $1 RETURNING true", row_id) is not None


# --- partners ------------------------------------------------------------------------------------

async def insert_partner(conn: asyncpg.Connection, values: Mapping[str, Any]) -> Partner:
    sql, args = insert_sql("partners", values, CASTS, returning=PARTNER_COLUMNS)
    return _partner(await conn.fetchrow(sql, *args))


async def get_partner(conn: asyncpg.Connection, partner_id: UUID, *, for_update: bool = False) -> Partner | None:
    return _maybe(_partner, await _get(conn, "partners", PARTNER_COLUMNS, partner_id, for_update))


async def update_partner(conn: asyncpg.Connection, partner_id: UUID, changes: Mapping[str, Any]) -> Partner | None:
    sql, args = update_sql("partners", changes, CASTS, returning=PARTNER_COLUMNS)
    return _maybe(_partner, await conn.fetchrow(sql, partner_id, *args))


async def count_partner_products(conn: asyncpg.Connection, partner_id: UUID) -> int:
    return await conn.fetchval(f"SELECT count(*) FROM products WHERE {IN_ORG} AND partner_id = $1", partner_id)


async def delete_partner(conn: asyncpg.Connection, partner_id: UUID) -> bool:
    return await _delete(conn, "partners", partner_id)


# --- products ------------------------------------------------------------------------------------

def _product_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validated product fields -> column values."""
    columns: dict[str, Any] = {}
    for name, value in values.items():
        if name == "base_price":
            columns["base_price"], columns["currency"] = value.amount, value.currency
        elif name == "duration_days":
            columns["duration"] = value
        elif name in ("inclusions", "exclusions"):
            columns[name] = json.dumps(list(value)) if value else None
        else:
            columns[name] = value
    return columns


async def insert_product(conn: asyncpg.Connection, values: Mapping[str, Any], prefix: str = "product") -> Product:
    sql, args = insert_sql("products", _product_columns(values), CASTS, returning=PRODUCT_COLUMNS)
    return _product(await _write(conn, sql, args, prefix))


async def get_product(conn: asyncpg.Connection, product_id: UUID, *, for_update: bool = False) -> Product | None:
    return _maybe(_product, await _get(conn, "products", PRODUCT_COLUMNS, product_id, for_update))


async def update_product(conn: asyncpg.Connection, product_id: UUID, changes: Mapping[str, Any],
                         prefix: str = "product") -> Product | None:
    sql, args = update_sql("products", _product_columns(changes), CASTS, returning=PRODUCT_COLUMNS)
    return _maybe(_product, await _write(conn, sql, [product_id, *args], prefix))


async def lock_product_tours(conn: asyncpg.Connection, product_id: UUID) -> list[int]:
    """The seats held by each tour of the product, its tours locked (no booking can slip in)."""
    rows = await conn.fetch(f"SELECT current_participants FROM tours WHERE {IN_ORG} AND product_id = $1 "
                            "ORDER BY id FOR UPDATE", product_id)
    return [row[0] for row in rows]


async def delete_product(conn: asyncpg.Connection, product_id: UUID) -> bool:
    return await _delete(conn, "products", product_id)


# --- tours ---------------------------------------------------------------------------------------

def _tour_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name, value in values.items():
        if name == "price":
            # currency is the currency of price; it stays as it was when the price is cleared.
            columns["price"] = value.amount if value is not None else None
            if value is not None:
                columns["currency"] = value.currency
        elif name == "start_time":
            columns["start_date"] = value
        elif name == "end_time":
            columns["end_date"] = value
        else:
            columns[name] = value
    return columns


def tour_write(sql: str) -> str:
    """A write to tours (`... RETURNING *`) that returns a tour row like TOUR_SELECT."""
    return f"WITH t AS ({sql}) SELECT {TOUR_COLUMNS} FROM {TOUR_FROM}"


async def insert_tour(conn: asyncpg.Connection, values: Mapping[str, Any], product: Product,
                      prefix: str = "tour") -> Tour:
    """A new tour; with no price of its own, its currency is the product's."""
    columns = _tour_columns(values)
    columns.setdefault("currency", product.base_price.currency)
    sql, args = insert_sql("tours", columns, CASTS, returning="*")
    return _tour(await _write(conn, tour_write(sql), args, prefix))


async def get_tour(conn: asyncpg.Connection, tour_id: UUID, *, for_update: bool = False) -> Tour | None:
    """The tour; `for_update` locks its row: every change to its seats or bookings does, so
    they are applied one after another."""
    return _maybe(_tour, await conn.fetchrow(LOCK_TOUR_SQL if for_update else GET_TOUR_SQL, tour_id))


async def update_tour(conn: asyncpg.Connection, tour_id: UUID, changes: Mapping[str, Any]) -> Tour:
    sql, args = update_sql("tours", _tour_columns(changes), CASTS, returning="*")
    return _tour(await conn.fetchrow(tour_write(sql), tour_id, *args))


async def set_tour_seats(conn: asyncpg.Connection, tour_id: UUID, seats: Seats) -> Tour:
    return await update_tour(conn, tour_id, {"current_participants": seats.held, "status": seats.status})


async def cancel_tour_bookings(conn: asyncpg.Connection, tour_id: UUID) -> int:
    """Every booking of the tour that is not cancelled yet becomes CANCELLED."""
    result = await conn.execute(
        f"UPDATE client_tours SET status = 'CANCELLED' WHERE {IN_ORG} AND tour_id = $1 AND status <> 'CANCELLED'",
        tour_id)
    return int(result.split()[-1])


async def delete_tour(conn: asyncpg.Connection, tour_id: UUID) -> bool:
    return await _delete(conn, "tours", tour_id)


# --- bookings ------------------------------------------------------------------------------------

async def get_booking(conn: asyncpg.Connection, booking_id: UUID, *, for_update: bool = False) -> Booking | None:
    return _maybe(_booking, await _get(conn, "client_tours", BOOKING_COLUMNS, booking_id, for_update))


async def find_booking(conn: asyncpg.Connection, client_id: UUID, tour_id: UUID) -> Booking | None:
    """The client's one booking on the tour (unique per client and tour). Under the tour's row
    lock it needs no lock of its own: every change the catalog makes to a tour's bookings
    holds that lock."""
    return _maybe(_booking, await conn.fetchrow(FIND_BOOKING_SQL, client_id, tour_id))


# BookTour, the hot path, holds its tour's row lock for three round trips: it reads the
# client's booking (FIND_BOOKING_SQL), writes the booking and the seats in one statement, and
# commits. The read cannot share the locking statement: under READ COMMITTED a statement that
# waited for a row lock goes on with that row's newest version but sees the other tables as
# of its own start, so it would miss the booking the lock holder before it just made. (Its
# benchmark ceiling, bench/catalog_bench.py, runs these very statements.)
FIND_BOOKING_SQL = client_pair_lookup("client_tours", BOOKING_COLUMNS, "tour_id")
_SEATS_CTE = f"t AS (UPDATE tours SET current_participants = $6, status = $7 WHERE {IN_ORG} AND id = $2 RETURNING *)"
_BOOKING_AND_TOUR = f"SELECT {TOUR_COLUMNS}, {_booking_select('b', 'b_')} FROM {TOUR_FROM} CROSS JOIN b"
# $1 client, $2 tour, $3 status, $4 participants, $5 notes, $6 seats held, $7 tour status
BOOK_INSERT_SQL = (
    "WITH b AS (INSERT INTO client_tours (organization_id, client_id, tour_id, status, participants, notes) "
    "VALUES ((SELECT app.current_org()), $1, $2, $3, $4, $5) RETURNING *), "
    f"{_SEATS_CTE} {_BOOKING_AND_TOUR}")
# $1 booking, $2 tour, $3 status, $4 participants, $5 notes (NULL: unchanged), $6 seats held, $7 tour status
BOOK_UPDATE_SQL = (
    "WITH b AS (UPDATE client_tours SET status = $3, participants = $4, notes = coalesce($5, notes) "
    f"WHERE {IN_ORG} AND id = $1 RETURNING *), {_SEATS_CTE} {_BOOKING_AND_TOUR}")


async def save_booking(conn: asyncpg.Connection, tour: Tour, client_id: UUID, existing: Booking | None,
                       change: BookingChange, notes: str | None) -> tuple[Booking, Tour]:
    """BookTour's write: the booking (new, or the client's existing one) and the tour's seats,
    in one statement."""
    args = [change.status, change.participants, notes, change.tour.held, change.tour.status]
    if existing is None:
        try:
            row = await _write(conn, BOOK_INSERT_SQL, [client_id, tour.id, *args], prefix="")
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("the client already has a booking on this tour", reason="BOOKING_EXISTS") from None
    else:
        row = await conn.fetchrow(BOOK_UPDATE_SQL, existing.id, tour.id, *args)
        if row is None:  # deleted meanwhile by a cascade (crm deleted the client): roll back, retry
            raise Aborted("the booking changed concurrently; retry", reason="CONCURRENCY_CONFLICT")
    return _booking(row, "b_"), _tour(row)


async def insert_booking(conn: asyncpg.Connection, values: Mapping[str, Any], prefix: str) -> Booking:
    """A new booking. The caller holds the tour's row lock, under which it found none for this
    client; a unique violation would mean a write that skipped the lock, reported all the same."""
    sql, args = insert_sql("client_tours", values, CASTS, returning=BOOKING_COLUMNS)
    try:
        return _booking(await _write(conn, sql, args, prefix))
    except asyncpg.UniqueViolationError:
        raise AlreadyExists("the client already has a booking on this tour", reason="BOOKING_EXISTS") from None


async def update_booking(conn: asyncpg.Connection, booking_id: UUID, changes: Mapping[str, Any]) -> Booking:
    sql, args = update_sql("client_tours", changes, CASTS, returning=BOOKING_COLUMNS)
    return _booking(await conn.fetchrow(sql, booking_id, *args))


async def delete_booking(conn: asyncpg.Connection, booking_id: UUID) -> bool:
    return await _delete(conn, "client_tours", booking_id)


# --- client interests ----------------------------------------------------------------------------

FIND_CLIENT_PRODUCT_SQL = client_pair_lookup("client_products", "id", "product_id")


async def insert_client_product(conn: asyncpg.Connection, values: Mapping[str, Any],
                                prefix: str = "client_product") -> ClientProduct:
    """A new interest; the client's existing one for the product is CLIENT_PRODUCT_EXISTS
    (ON CONFLICT waits for a racing insert of the same pair, then sees it)."""
    sql, args = insert_sql("client_products", values, CASTS, returning=CLIENT_PRODUCT_COLUMNS,
                           on_conflict="ON CONFLICT (organization_id, client_id, product_id) DO NOTHING")
    row = await _write(conn, sql, args, prefix)
    if row is None:
        existing = await conn.fetchval(FIND_CLIENT_PRODUCT_SQL, values["client_id"], values["product_id"])
        raise AlreadyExists("the client already has this product among its interests",
                            reason="CLIENT_PRODUCT_EXISTS", metadata={"client_product_id": str(existing)})
    return _client_product(row)


async def get_client_product(conn: asyncpg.Connection, interest_id: UUID, *,
                             for_update: bool = False) -> ClientProduct | None:
    return _maybe(_client_product, await _get(conn, "client_products", CLIENT_PRODUCT_COLUMNS, interest_id,
                                              for_update))


async def update_client_product(conn: asyncpg.Connection, interest_id: UUID,
                                changes: Mapping[str, Any]) -> ClientProduct | None:
    sql, args = update_sql("client_products", changes, CASTS, returning=CLIENT_PRODUCT_COLUMNS)
    return _maybe(_client_product, await conn.fetchrow(sql, interest_id, *args))


async def delete_client_product(conn: asyncpg.Connection, interest_id: UUID) -> bool:
    return await _delete(conn, "client_products", interest_id)
