"""catalog's gRPC servicers: protobuf <-> the use cases' arguments and entities. No SQL, no
rules (domain.py validates what arrives here as raw field values)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC
from decimal import Decimal
from typing import Any

from google.protobuf import empty_pb2, json_format
from google.type import money_pb2

from libs.errors import InvalidArgument
from libs.idempotency import parse_request_id
from libs.persistence import etag_of
from libs.wire import enum_label, enum_value, mask_paths, parse_uuid, required_enum_label, timestamp
from services.catalog import domain
from services.catalog.domain import Booking, ClientProduct, Partner, Price, Product, Tour
from services.catalog.service import (
    BookingsService,
    ClientProductsService,
    ListQuery,
    PartnersService,
    ProductsService,
    ToursService,
)
from soulkg.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from soulkg.catalog.v1 import enums_pb2 as enums

NANOS = 1_000_000_000

# --- money ---------------------------------------------------------------------------------------


def money(price: Price) -> money_pb2.Money:
    units = int(price.amount)
    return money_pb2.Money(currency_code=price.currency, units=units, nanos=int((price.amount - units) * NANOS))


def price_of(message: money_pb2.Money, field: str) -> Price:
    """google.type.Money -> an exact decimal amount and its currency (checked by the domain)."""
    units, nanos = message.units, message.nanos
    if not -NANOS < nanos < NANOS or (units > 0 and nanos < 0) or (units < 0 and nanos > 0):
        raise InvalidArgument.field(field, "is not a valid google.type.Money: nanos must be within "
                                           "±999,999,999 and have the sign of units")
    return Price(Decimal(units) + Decimal(nanos).scaleb(-9), message.currency_code)


# --- requests -> raw field values ----------------------------------------------------------------

Convert = Callable[[Any, str], Any]


def raw_fields(message, names: Iterable[str], prefix: str, converters: Mapping[str, Convert]) -> dict[str, Any]:
    """The named fields of a request's resource as plain values: None when a field with
    presence is unset, converted from their wire types where `converters` says."""
    fields = message.DESCRIPTOR.fields_by_name
    raw: dict[str, Any] = {}
    for name in names:
        if fields[name].has_presence and not message.HasField(name):
            raw[name] = None
            continue
        value = getattr(message, name)
        convert = converters.get(name)
        if convert is not None:
            raw[name] = convert(value, f"{prefix}.{name}")
        else:
            raw[name] = list(value) if fields[name].is_repeated else value
    return raw


def _datetime(value, field):
    return value.ToDatetime(tzinfo=UTC)


def _struct(value, field):
    return json_format.MessageToDict(value)


PRODUCT_CONVERTERS: dict[str, Convert] = {
    "type": lambda value, field: enum_label(enums.ProductType, value, field),
    "base_price": price_of,
    "options": _struct,
}
TOUR_CONVERTERS: dict[str, Convert] = {"start_time": _datetime, "end_time": _datetime, "price": price_of}
CREATE_TOUR = ("product_id", "start_time", "end_time", "max_participants", "price", "notes")
CREATE_BOOKING = ("client_id", "tour_id", "participants", "notes")
CREATE_CLIENT_PRODUCT = ("client_id", "product_id", "notes")


def _query(request) -> ListQuery:
    return ListQuery(request.page_size, request.page_token, request.filter, request.order_by)


def _optional(value: Any) -> str | None:
    return str(value) if value is not None else None


# --- entities -> messages ------------------------------------------------------------------------

def partner_message(p: Partner) -> catalog_pb2.Partner:
    return catalog_pb2.Partner(
        id=str(p.id), name=p.name, contact_phone=p.contact_phone, contact_email=p.contact_email,
        contact_whatsapp=p.contact_whatsapp, contact_telegram=p.contact_telegram, conditions=p.conditions,
        rating=f"{p.rating:.2f}" if p.rating is not None else None, is_available=p.is_available,
        etag=etag_of(p.updated_at), create_time=timestamp(p.created_at), update_time=timestamp(p.updated_at))


def product_message(p: Product) -> catalog_pb2.Product:
    message = catalog_pb2.Product(
        id=str(p.id), name=p.name, description=p.description, duration_days=p.duration_days,
        type=enum_value(enums.ProductType, p.type), base_price=money(p.base_price), inclusions=p.inclusions,
        exclusions=p.exclusions, is_active=p.is_active, partner_id=_optional(p.partner_id),
        etag=etag_of(p.updated_at), create_time=timestamp(p.created_at), update_time=timestamp(p.updated_at))
    if p.options is not None:
        message.options.update(p.options)
    return message


def tour_message(t: Tour) -> catalog_pb2.Tour:
    return catalog_pb2.Tour(
        id=str(t.id), product_id=str(t.product_id), start_time=timestamp(t.start_time),
        end_time=timestamp(t.end_time), max_participants=t.max_participants,
        current_participants=t.current_participants, free_seats=t.free_seats,
        price=money(t.price) if t.price is not None else None, effective_price=money(t.effective_price),
        status=enum_value(enums.TourStatus, t.status), notes=t.notes, etag=etag_of(t.updated_at),
        create_time=timestamp(t.created_at), update_time=timestamp(t.updated_at))


def booking_message(b: Booking) -> catalog_pb2.Booking:
    return catalog_pb2.Booking(
        id=str(b.id), client_id=str(b.client_id), tour_id=str(b.tour_id),
        status=enum_value(enums.ClientTourStatus, b.status), participants=b.participants, notes=b.notes,
        etag=etag_of(b.updated_at), create_time=timestamp(b.created_at), update_time=timestamp(b.updated_at))


def client_product_message(c: ClientProduct) -> catalog_pb2.ClientProduct:
    return catalog_pb2.ClientProduct(
        id=str(c.id), client_id=str(c.client_id), product_id=str(c.product_id),
        status=enum_value(enums.ClientProductStatus, c.status), notes=c.notes, etag=etag_of(c.updated_at),
        create_time=timestamp(c.created_at), update_time=timestamp(c.updated_at))


# --- servicers -----------------------------------------------------------------------------------

class PartnerServicer(catalog_pb2_grpc.PartnerServiceServicer):
    def __init__(self, service: PartnersService) -> None:
        self.service = service

    async def CreatePartner(self, request, context):
        raw = raw_fields(request.partner, domain.PARTNER_UPDATABLE, "partner", {})
        return partner_message(await self.service.create(raw, parse_request_id(request.request_id)))

    async def GetPartner(self, request, context):
        return partner_message(await self.service.get(parse_uuid(request.id, "id")))

    async def ListPartners(self, request, context):
        page = await self.service.list(_query(request))
        return catalog_pb2.ListPartnersResponse(partners=[partner_message(p) for p in page.items],
                                                next_page_token=page.next_page_token)

    async def UpdatePartner(self, request, context):
        partner_id = parse_uuid(request.partner.id, "partner.id")
        paths = mask_paths(request.update_mask, domain.PARTNER_UPDATABLE)
        raw = raw_fields(request.partner, paths, "partner", {})
        return partner_message(await self.service.update(partner_id, raw, request.partner.etag))

    async def DeletePartner(self, request, context):
        await self.service.delete(parse_uuid(request.id, "id"), request.etag)
        return empty_pb2.Empty()


class ProductServicer(catalog_pb2_grpc.ProductServiceServicer):
    def __init__(self, service: ProductsService) -> None:
        self.service = service

    async def CreateProduct(self, request, context):
        raw = raw_fields(request.product, domain.PRODUCT_UPDATABLE, "product", PRODUCT_CONVERTERS)
        return product_message(await self.service.create(raw, parse_request_id(request.request_id)))

    async def GetProduct(self, request, context):
        return product_message(await self.service.get(parse_uuid(request.id, "id")))

    async def ListProducts(self, request, context):
        page = await self.service.list(_query(request))
        return catalog_pb2.ListProductsResponse(products=[product_message(p) for p in page.items],
                                                next_page_token=page.next_page_token)

    async def UpdateProduct(self, request, context):
        product_id = parse_uuid(request.product.id, "product.id")
        paths = mask_paths(request.update_mask, domain.PRODUCT_UPDATABLE)
        raw = raw_fields(request.product, paths, "product", PRODUCT_CONVERTERS)
        return product_message(await self.service.update(product_id, raw, request.product.etag))

    async def DeleteProduct(self, request, context):
        await self.service.delete(parse_uuid(request.id, "id"), request.etag)
        return empty_pb2.Empty()


class TourServicer(catalog_pb2_grpc.TourServiceServicer):
    def __init__(self, service: ToursService) -> None:
        self.service = service

    async def CreateTour(self, request, context):
        raw = raw_fields(request.tour, CREATE_TOUR, "tour", TOUR_CONVERTERS)
        return tour_message(await self.service.create(raw, parse_request_id(request.request_id)))

    async def GetTour(self, request, context):
        return tour_message(await self.service.get(parse_uuid(request.id, "id")))

    async def ListTours(self, request, context):
        page = await self.service.list(_query(request))
        return catalog_pb2.ListToursResponse(tours=[tour_message(t) for t in page.items],
                                             next_page_token=page.next_page_token)

    async def UpdateTour(self, request, context):
        tour_id = parse_uuid(request.tour.id, "tour.id")
        paths = mask_paths(request.update_mask, domain.TOUR_UPDATABLE)
        raw = raw_fields(request.tour, paths, "tour", TOUR_CONVERTERS)
        return tour_message(await self.service.update(tour_id, raw, request.tour.etag))

    async def DeleteTour(self, request, context):
        await self.service.delete(parse_uuid(request.id, "id"), request.etag)
        return empty_pb2.Empty()

    async def CancelTour(self, request, context):
        return tour_message(await self.service.cancel(parse_uuid(request.id, "id"), request.etag))

    async def CompleteTour(self, request, context):
        return tour_message(await self.service.complete(parse_uuid(request.id, "id"), request.etag))


class BookingServicer(catalog_pb2_grpc.BookingServiceServicer):
    def __init__(self, service: BookingsService) -> None:
        self.service = service

    async def BookTour(self, request, context):
        booking, tour = await self.service.book(
            request.tour_id, request.client_id, request.participants,
            request.notes if request.HasField("notes") else None, parse_request_id(request.request_id))
        return catalog_pb2.BookTourResponse(booking=booking_message(booking), tour=tour_message(tour))

    async def CreateBooking(self, request, context):
        raw = raw_fields(request.booking, CREATE_BOOKING, "booking", {})
        return booking_message(await self.service.create(raw, parse_request_id(request.request_id)))

    async def GetBooking(self, request, context):
        return booking_message(await self.service.get(parse_uuid(request.id, "id")))

    async def ListBookings(self, request, context):
        page = await self.service.list(_query(request))
        return catalog_pb2.ListBookingsResponse(bookings=[booking_message(b) for b in page.items],
                                                next_page_token=page.next_page_token)

    async def UpdateBooking(self, request, context):
        booking_id = parse_uuid(request.booking.id, "booking.id")
        paths = mask_paths(request.update_mask, domain.BOOKING_UPDATABLE)
        raw = raw_fields(request.booking, paths, "booking", {})
        return booking_message(await self.service.update(booking_id, raw, request.booking.etag))

    async def DeleteBooking(self, request, context):
        await self.service.delete(parse_uuid(request.id, "id"), request.etag)
        return empty_pb2.Empty()

    async def ChangeBookingStatus(self, request, context):
        booking_id = parse_uuid(request.id, "id")
        status = required_enum_label(enums.ClientTourStatus, request.status, "status")
        participants = request.participants if request.HasField("participants") else None
        booking, tour = await self.service.change_status(booking_id, status, participants, request.etag)
        return catalog_pb2.ChangeBookingStatusResponse(booking=booking_message(booking), tour=tour_message(tour))

    async def CancelBooking(self, request, context):
        booking, tour = await self.service.cancel(parse_uuid(request.id, "id"), request.etag)
        return catalog_pb2.CancelBookingResponse(booking=booking_message(booking), tour=tour_message(tour))


class ClientProductServicer(catalog_pb2_grpc.ClientProductServiceServicer):
    def __init__(self, service: ClientProductsService) -> None:
        self.service = service

    async def CreateClientProduct(self, request, context):
        raw = raw_fields(request.client_product, CREATE_CLIENT_PRODUCT, "client_product", {})
        return client_product_message(await self.service.create(raw, parse_request_id(request.request_id)))

    async def GetClientProduct(self, request, context):
        return client_product_message(await self.service.get(parse_uuid(request.id, "id")))

    async def ListClientProducts(self, request, context):
        page = await self.service.list(_query(request))
        return catalog_pb2.ListClientProductsResponse(
            client_products=[client_product_message(c) for c in page.items], next_page_token=page.next_page_token)

    async def UpdateClientProduct(self, request, context):
        interest_id = parse_uuid(request.client_product.id, "client_product.id")
        paths = mask_paths(request.update_mask, domain.CLIENT_PRODUCT_UPDATABLE)
        raw = raw_fields(request.client_product, paths, "client_product", {})
        return client_product_message(await self.service.update(interest_id, raw, request.client_product.etag))

    async def DeleteClientProduct(self, request, context):
        await self.service.delete(parse_uuid(request.id, "id"), request.etag)
        return empty_pb2.Empty()

    async def ChangeClientProductStatus(self, request, context):
        interest_id = parse_uuid(request.id, "id")
        status = required_enum_label(enums.ClientProductStatus, request.status, "status")
        return client_product_message(await self.service.change_status(interest_id, status, request.etag))
