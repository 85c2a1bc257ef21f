"""catalog's use cases. Each runs in one TenantDatabase transaction under the caller's
organization; rules come from domain.py, SQL from repository.py.

Seats: every change to a tour's bookings or capacity first locks the tour row
(`SELECT ... FOR UPDATE`), then reads what it needs, decides with the domain and writes the
booking and the tour's seats in the same transaction. Concurrent bookings, cancellations and
capacity edits of one tour therefore run one after another, each seeing the previous one's
result, and `current_participants` stays the sum of the held seats. Locks are always taken
tour first, then booking, so these transactions cannot deadlock with one another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from libs.idempotency import claim_request_id, create_once, record_request_id
from libs.pagination import PageTokenCodec
from libs.persistence import KeysetPager, Page, check_etag, etag_of, found
from libs.tenancy.context import require_principal
from libs.tenancy.database import TenantDatabase
from services.catalog import domain
from services.catalog import repository as repo
from services.catalog.domain import Booking, ClientProduct, Partner, Product, Seats, Tour

T = TypeVar("T")
PACKAGE = "soulkg.catalog.v1"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ListQuery:
    page_size: int = 0
    page_token: str = ""
    filter: str = ""
    order_by: str = ""


class _Service:
    def __init__(self, db: TenantDatabase, page_tokens: PageTokenCodec) -> None:
        self.db = db
        self.pager = KeysetPager(page_tokens)

    async def _list(self, listing: repo.Listing[T], query: ListQuery) -> Page[T]:
        organization_id = require_principal().organization_id
        ordering = listing.ordering(query.order_by)
        where, params = listing.where(query.filter)
        request = self.pager.request(organization_id, query=(listing.resource, where, params, ordering.key),
                                     page_token=query.page_token, requested_size=query.page_size,
                                     key_types=ordering.key_types)
        async with self.db.transaction(readonly=True) as conn:
            rows = await repo.list_page(conn, listing, where, params, ordering, request.after, request.limit)
        return self.pager.page(request, rows, ordering.key_of)


class PartnersService(_Service):
    CREATE = f"{PACKAGE}.PartnerService/CreatePartner"

    async def create(self, raw: Mapping[str, Any], request_id: UUID | None) -> Partner:
        values = domain.partner_values(raw)
        async with self.db.transaction() as conn:
            return await create_once(conn, self.CREATE, request_id, create=partial(repo.insert_partner, conn, values),
                                     existing=partial(repo.get_partner, conn), resource="partner")

    async def get(self, partner_id: UUID) -> Partner:
        async with self.db.transaction(readonly=True) as conn:
            return found(await repo.get_partner(conn, partner_id), "partner")

    async def list(self, query: ListQuery) -> Page[Partner]:
        return await self._list(repo.PARTNERS, query)

    async def update(self, partner_id: UUID, raw: Mapping[str, Any], etag: str) -> Partner:
        changes = domain.partner_values(raw)
        async with self.db.transaction() as conn:
            if etag:
                current = found(await repo.get_partner(conn, partner_id, for_update=True), "partner")
                check_etag(etag, etag_of(current.updated_at))
            return found(await repo.update_partner(conn, partner_id, changes), "partner")

    async def delete(self, partner_id: UUID, etag: str) -> None:
        """The partner row is locked first: a product created meanwhile either is seen here
        (and the delete refused) or fails its foreign key once the partner is gone."""
        async with self.db.transaction() as conn:
            partner = found(await repo.get_partner(conn, partner_id, for_update=True), "partner")
            check_etag(etag, etag_of(partner.updated_at))
            domain.check_partner_deletable(await repo.count_partner_products(conn, partner_id))
            await repo.delete_partner(conn, partner_id)


class ProductsService(_Service):
    CREATE = f"{PACKAGE}.ProductService/CreateProduct"

    async def create(self, raw: Mapping[str, Any], request_id: UUID | None) -> Product:
        values = domain.product_values(raw)
        async with self.db.transaction() as conn:
            return await create_once(conn, self.CREATE, request_id, create=partial(repo.insert_product, conn, values),
                                     existing=partial(repo.get_product, conn), resource="product")

    async def get(self, product_id: UUID) -> Product:
        async with self.db.transaction(readonly=True) as conn:
            return found(await repo.get_product(conn, product_id), "product")

    async def list(self, query: ListQuery) -> Page[Product]:
        return await self._list(repo.PRODUCTS, query)

    async def update(self, product_id: UUID, raw: Mapping[str, Any], etag: str) -> Product:
        changes = domain.product_values(raw)
        async with self.db.transaction() as conn:
            if etag:
                current = found(await repo.get_product(conn, product_id, for_update=True), "product")
                check_etag(etag, etag_of(current.updated_at))
            return found(await repo.update_product(conn, product_id, changes), "product")

    async def delete(self, product_id: UUID, etag: str) -> None:
        """The product and then its tours are locked, so no booking (which locks its tour)
        and no new tour (whose foreign key waits on the product) slips in unseen."""
        async with self.db.transaction() as conn:
            product = found(await repo.get_product(conn, product_id, for_update=True), "product")
            check_etag(etag, etag_of(product.updated_at))
            domain.check_product_deletable(await repo.lock_product_tours(conn, product_id))
            await repo.delete_product(conn, product_id)


class ToursService(_Service):
    CREATE = f"{PACKAGE}.TourService/CreateTour"

    async def create(self, raw: Mapping[str, Any], request_id: UUID | None) -> Tour:
        values = domain.tour_values(raw)
        async with self.db.transaction() as conn:
            first = await claim_request_id(conn, self.CREATE, request_id)
            if first is not None:
                return found(await repo.get_tour(conn, first), "tour")
            product = await repo.get_product(conn, values["product_id"])
            if product is None:
                raise domain.missing_reference("tour.product_id", "PRODUCT_NOT_FOUND")
            domain.check_new_tour(product)
            tour = await repo.insert_tour(conn, values, product)
            await record_request_id(conn, self.CREATE, request_id, tour.id)
            return tour

    async def get(self, tour_id: UUID) -> Tour:
        async with self.db.transaction(readonly=True) as conn:
            return found(await repo.get_tour(conn, tour_id), "tour")

    async def list(self, query: ListQuery) -> Page[Tour]:
        return await self._list(repo.TOURS, query)

    async def _locked(self, conn: asyncpg.Connection, tour_id: UUID, etag: str) -> Tour:
        tour = found(await repo.get_tour(conn, tour_id, for_update=True), "tour")
        check_etag(etag, etag_of(tour.updated_at))
        return tour

    async def update(self, tour_id: UUID, raw: Mapping[str, Any], etag: str) -> Tour:
        changes = domain.tour_values(raw)
        async with self.db.transaction() as conn:
            tour = await self._locked(conn, tour_id, etag)
            return await repo.update_tour(conn, tour_id, domain.tour_update(tour, changes))

    async def delete(self, tour_id: UUID, etag: str) -> None:
        async with self.db.transaction() as conn:
            domain.check_tour_deletable(await self._locked(conn, tour_id, etag))
            await repo.delete_tour(conn, tour_id)

    async def cancel(self, tour_id: UUID, etag: str) -> Tour:
        """The tour and all its bookings in one transaction; its seats return to zero."""
        async with self.db.transaction() as conn:
            domain.check_tour_transition(await self._locked(conn, tour_id, etag), "CANCELLED", _now())
            await repo.cancel_tour_bookings(conn, tour_id)
            return await repo.set_tour_seats(conn, tour_id, Seats(0, "CANCELLED"))

    async def complete(self, tour_id: UUID, etag: str) -> Tour:
        async with self.db.transaction() as conn:
            domain.check_tour_transition(await self._locked(conn, tour_id, etag), "COMPLETED", _now())
            return await repo.update_tour(conn, tour_id, {"status": "COMPLETED"})


class BookingsService(_Service):
    BOOK = f"{PACKAGE}.BookingService/BookTour"
    CREATE = f"{PACKAGE}.BookingService/CreateBooking"

    @staticmethod
    async def _seats(conn: asyncpg.Connection, tour: Tour, seats: Seats) -> Tour:
        """Writes the tour's new seats, unless they did not change."""
        if (seats.held, seats.status) == (tour.current_participants, tour.status):
            return tour
        return await repo.set_tour_seats(conn, tour.id, seats)

    @staticmethod
    async def _locked(conn: asyncpg.Connection, booking_id: UUID, etag: str = "") -> tuple[Tour, Booking]:
        """The booking's tour, then the booking itself, both locked (in that order)."""
        booking = found(await repo.get_booking(conn, booking_id), "booking")
        tour = await repo.get_tour(conn, booking.tour_id, for_update=True)
        # Read again under the tour's lock; gone meanwhile (with its tour, or its client): NOT_FOUND.
        locked = await repo.get_booking(conn, booking_id, for_update=True) if tour is not None else None
        booking = found(locked, "booking")
        check_etag(etag, etag_of(booking.updated_at))
        return tour, booking

    async def book(self, tour_id: str, client_id: str, participants: int, notes: str | None,
                   request_id: UUID | None) -> tuple[Booking, Tour]:
        values = domain.book_tour_values(tour_id, client_id, participants, notes)
        async with self.db.transaction() as conn:
            first = await claim_request_id(conn, self.BOOK, request_id)
            if first is not None:
                booking = found(await repo.get_booking(conn, first), "booking")
                return booking, found(await repo.get_tour(conn, booking.tour_id), "tour")
            tour = found(await repo.get_tour(conn, values["tour_id"], for_update=True), "tour")
            existing = await repo.find_booking(conn, values["client_id"], tour.id)
            change = domain.book(tour, existing, values["participants"], _now())
            booking, tour = await repo.save_booking(conn, tour, values["client_id"], existing, change,
                                                    values["notes"])
            await record_request_id(conn, self.BOOK, request_id, booking.id)
            return booking, tour

    async def create(self, raw: Mapping[str, Any], request_id: UUID | None) -> Booking:
        values = domain.booking_values(raw)
        async with self.db.transaction() as conn:
            first = await claim_request_id(conn, self.CREATE, request_id)
            if first is not None:
                return found(await repo.get_booking(conn, first), "booking")
            tour = await repo.get_tour(conn, values["tour_id"], for_update=True)
            if tour is None:
                raise domain.missing_reference("booking.tour_id", "TOUR_NOT_FOUND")
            domain.check_new_booking(tour, await repo.find_booking(conn, values["client_id"], tour.id))
            booking = await repo.insert_booking(conn, values, prefix="booking")
            await record_request_id(conn, self.CREATE, request_id, booking.id)
            return booking

    async def get(self, booking_id: UUID) -> Booking:
        async with self.db.transaction(readonly=True) as conn:
            return found(await repo.get_booking(conn, booking_id), "booking")

    async def list(self, query: ListQuery) -> Page[Booking]:
        return await self._list(repo.BOOKINGS, query)

    async def update(self, booking_id: UUID, raw: Mapping[str, Any], etag: str) -> Booking:
        changes = domain.booking_values(raw)
        async with self.db.transaction() as conn:
            tour, booking = await self._locked(conn, booking_id, etag)
            if "participants" in changes:
                change = domain.change_participants(tour, booking, changes["participants"], _now())
                await self._seats(conn, tour, change.tour)
            return await repo.update_booking(conn, booking_id, changes)

    async def delete(self, booking_id: UUID, etag: str) -> None:
        async with self.db.transaction() as conn:
            _, booking = await self._locked(conn, booking_id, etag)
            domain.check_booking_deletable(booking)
            await repo.delete_booking(conn, booking_id)

    async def change_status(self, booking_id: UUID, status: str, participants: int | None,
                            etag: str) -> tuple[Booking, Tour]:
        if participants is not None:
            participants = domain.PARTICIPANTS_RULE(participants, "participants")
        async with self.db.transaction() as conn:
            tour, booking = await self._locked(conn, booking_id, etag)
            change = domain.change_booking_status(tour, booking, status, participants, _now())
            booking = await repo.update_booking(conn, booking_id, {"status": change.status,
                                                                   "participants": change.participants})
            return booking, await self._seats(conn, tour, change.tour)

    async def cancel(self, booking_id: UUID, etag: str) -> tuple[Booking, Tour]:
        return await self.change_status(booking_id, "CANCELLED", None, etag)


class ClientProductsService(_Service):
    CREATE = f"{PACKAGE}.ClientProductService/CreateClientProduct"

    async def create(self, raw: Mapping[str, Any], request_id: UUID | None) -> ClientProduct:
        values = domain.client_product_values(raw)
        async with self.db.transaction() as conn:
            return await create_once(conn, self.CREATE, request_id, create=partial(repo.insert_client_product, conn, values),
                                     existing=partial(repo.get_client_product, conn), resource="client_product")

    async def get(self, interest_id: UUID) -> ClientProduct:
        async with self.db.transaction(readonly=True) as conn:
            return found(await repo.get_client_product(conn, interest_id), "client_product")

    async def list(self, query: ListQuery) -> Page[ClientProduct]:
        return await self._list(repo.CLIENT_PRODUCTS, query)

    async def _locked(self, conn: asyncpg.Connection, interest_id: UUID, etag: str) -> ClientProduct:
        interest = found(await repo.get_client_product(conn, interest_id, for_update=True), "client_product")
        check_etag(etag, etag_of(interest.updated_at))
        return interest

    async def update(self, interest_id: UUID, raw: Mapping[str, Any], etag: str) -> ClientProduct:
        changes = domain.client_product_values(raw)
        async with self.db.transaction() as conn:
            await self._locked(conn, interest_id, etag)
            return found(await repo.update_client_product(conn, interest_id, changes), "client_product")

    async def delete(self, interest_id: UUID, etag: str) -> None:
        async with self.db.transaction() as conn:
            await self._locked(conn, interest_id, etag)
            await repo.delete_client_product(conn, interest_id)

    async def change_status(self, interest_id: UUID, status: str, etag: str) -> ClientProduct:
        async with self.db.transaction() as conn:
            interest = await self._locked(conn, interest_id, etag)
            domain.check_interest_move(interest.status, status)
            return found(await repo.update_client_product(conn, interest_id, {"status": status}), "client_product")
