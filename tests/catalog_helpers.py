"""Helpers for the catalog tests: the catalog's stubs acting as one caller, money, clients
made through the real crm service, and the seat invariant read straight from the database."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.type import money_pb2
from grpc import aio

from libs.tenancy.tokens import load_signer
from soulkg.catalog.v1 import catalog_pb2 as pb
from soulkg.catalog.v1 import catalog_pb2_grpc
from soulkg.catalog.v1 import enums_pb2 as enums
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc
from tests.identity_helpers import Account


class _Stub:
    """A generated stub whose calls all carry one caller's metadata."""

    def __init__(self, stub, metadata):
        self._stub = stub
        self._metadata = metadata

    def __getattr__(self, name):
        method = getattr(self._stub, name)
        return lambda request: method(request, metadata=self._metadata)


def money(amount: str, currency: str = "USD") -> money_pb2.Money:
    value = Decimal(amount)
    units = int(value)
    return money_pb2.Money(currency_code=currency, units=units, nanos=int((value - units) * 10**9))


def amount(value: money_pb2.Money) -> Decimal:
    return Decimal(value.units) + Decimal(value.nanos).scaleb(-9)


def ts(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def days(n: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=n)


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def phone() -> str:
    return "+99677" + str(secrets.randbelow(10**7)).zfill(7)


async def rpc_error(awaitable) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await awaitable
    return caught.value


@dataclass
class Catalog:
    """The catalog (and crm, for clients) as one caller: a user account or a service token."""

    channel: aio.Channel
    crm_channel: aio.Channel
    token: str
    account: Account | None = None

    def __post_init__(self):
        metadata = [("authorization", f"Bearer {self.token}")]
        self.partners = _Stub(catalog_pb2_grpc.PartnerServiceStub(self.channel), metadata)
        self.products = _Stub(catalog_pb2_grpc.ProductServiceStub(self.channel), metadata)
        self.tours = _Stub(catalog_pb2_grpc.TourServiceStub(self.channel), metadata)
        self.bookings = _Stub(catalog_pb2_grpc.BookingServiceStub(self.channel), metadata)
        self.interests = _Stub(catalog_pb2_grpc.ClientProductServiceStub(self.channel), metadata)
        self.crm = _Stub(crm_pb2_grpc.ClientServiceStub(self.crm_channel), metadata)

    @classmethod
    def of(cls, channel, crm_channel, account: Account) -> Catalog:
        return cls(channel, crm_channel, account.access_token, account)

    def as_service(self, keys_dir, name: str) -> Catalog:
        """The same organization through a service token of `name`."""
        token, _ = load_signer(keys_dir).issue(organization_id=uuid.UUID(self.account.organization.id),
                                               subject=f"service:{name}", kind="service")
        return Catalog(self.channel, self.crm_channel, token, self.account)

    @property
    def organization_id(self) -> str:
        return self.account.organization.id

    async def partner(self, **fields) -> pb.Partner:
        fields.setdefault("name", f"Partner {secrets.token_hex(3)}")
        return await self.partners.CreatePartner(pb.CreatePartnerRequest(partner=pb.Partner(**fields)))

    async def product(self, **fields) -> pb.Product:
        fields.setdefault("name", f"Product {secrets.token_hex(3)}")
        fields.setdefault("type", enums.PRODUCT_TYPE_TOUR)
        fields.setdefault("base_price", money("450.00"))
        return await self.products.CreateProduct(pb.CreateProductRequest(product=pb.Product(**fields)))

    async def tour(self, product_id: str | None = None, *, start: datetime | None = None,
                   end: datetime | None = None, **fields) -> pb.Tour:
        if product_id is None:
            product_id = (await self.product()).id
        start = start or days(30)
        end = end or start + timedelta(days=3)
        return await self.tours.CreateTour(pb.CreateTourRequest(tour=pb.Tour(
            product_id=product_id, start_time=ts(start), end_time=ts(end), **fields)))

    async def get_tour(self, tour_id: str) -> pb.Tour:
        return await self.tours.GetTour(pb.GetTourRequest(id=tour_id))

    async def client(self) -> str:
        client = await self.crm.CreateClient(crm_pb2.CreateClientRequest(client=crm_pb2.Client(phone=phone())))
        return client.id

    async def clients(self, count: int) -> list[str]:
        return [await self.client() for _ in range(count)]

    async def book(self, tour_id: str, client_id: str | None = None, participants: int = 1,
                   **fields) -> pb.BookTourResponse:
        client_id = client_id or await self.client()
        return await self.bookings.BookTour(pb.BookTourRequest(tour_id=tour_id, client_id=client_id,
                                                               participants=participants, **fields))

    async def list_all(self, method, request_type, items: str, page_size: int = 50, **request) -> list:
        found, token = [], ""
        while True:
            page = await method(request_type(page_size=page_size, page_token=token, **request))
            found += getattr(page, items)
            token = page.next_page_token
            if not token:
                return found


def seats(database, tour_id: str) -> tuple[int, int, int | None, str]:
    """(current_participants, the sum of held seats, max_participants, status) of a tour, read
    as the superuser straight from the tables."""
    with psycopg.connect(database.admin) as conn:
        return conn.execute("""
            SELECT t.current_participants,
                   coalesce(sum(b.participants) FILTER (WHERE b.status IN ('BOOKED', 'CONFIRMED')), 0)::int,
                   t.max_participants, t.status::text
            FROM tours t LEFT JOIN client_tours b ON b.organization_id = t.organization_id AND b.tour_id = t.id
            WHERE t.id = %s GROUP BY t.organization_id, t.id""", (tour_id,)).fetchone()


def assert_seat_invariant(database, tour_id: str) -> tuple[int, int | None, str]:
    current, held, capacity, status = seats(database, tour_id)
    assert current == held, (current, held)
    if capacity is not None:
        assert held <= capacity
    if status in ("AVAILABLE", "FULL"):
        assert status == ("FULL" if capacity is not None and held >= capacity else "AVAILABLE")
    return held, capacity, status
