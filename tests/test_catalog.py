"""catalog over real gRPC against real PostgreSQL: partners, products, tours, bookings and
client interests; seats under racing bookings, cancellations and capacity edits; exact money;
state machines; isolation of every method between organizations; who may call what."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import grpc
import psycopg
import pytest
from google.type import money_pb2

from soulkg.catalog.v1 import catalog_pb2 as pb
from soulkg.catalog.v1 import enums_pb2 as enums
from soulkg.crm.v1 import crm_pb2
from tests.catalog_helpers import (
    Catalog,
    amount,
    assert_seat_invariant,
    days,
    mask,
    money,
    rpc_error,
    seats,
    ts,
)
from tests.helpers import error_info, field_violations
from tests.identity_helpers import add_user, sign_up

S = enums
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
async def org_a(identity_channel, crm_channel, catalog_channel) -> Catalog:
    return Catalog.of(catalog_channel, crm_channel, await sign_up(identity_channel, "cat-a"))


@pytest.fixture
async def org_b(identity_channel, crm_channel, catalog_channel) -> Catalog:
    return Catalog.of(catalog_channel, crm_channel, await sign_up(identity_channel, "cat-b"))


def reason(error) -> str:
    return error_info(error).reason


def metadata(error) -> dict[str, str]:
    return dict(error_info(error).metadata)


# --- partners ------------------------------------------------------------------------------------

async def test_partner_is_created_normalised_and_read_back(org_a):
    created = await org_a.partner(name="  Ala-Archa Guides ", contact_phone="+996 700 200-001",
                                  contact_email=" Guides@Ala-Archa.Example ", contact_whatsapp="+996 (700) 200 001",
                                  contact_telegram="alaarcha_guides", conditions="15% commission", rating="4.8")
    assert (created.name, created.contact_phone, created.contact_email, created.contact_whatsapp) == (
        "Ala-Archa Guides", "+996700200001", "guides@ala-archa.example", "+996700200001")
    assert created.contact_telegram == "@alaarcha_guides" and created.rating == "4.80"
    assert created.is_available and created.etag
    assert await org_a.partners.GetPartner(pb.GetPartnerRequest(id=created.id)) == created
    bare = await org_a.partner(is_available=False)
    assert not bare.is_available and not bare.HasField("rating") and not bare.HasField("contact_email")


async def test_partner_violations_are_reported_at_once(org_a):
    error = await rpc_error(org_a.partner(name=" ", contact_phone="0555", contact_email="nope",
                                          contact_whatsapp="+1", contact_telegram="@ab", rating="5.01"))
    assert error.code() == INVALID
    assert set(field_violations(error)) == {"partner.name", "partner.contact_phone", "partner.contact_email",
                                            "partner.contact_whatsapp", "partner.contact_telegram",
                                            "partner.rating"}
    for bad in ("-1", "4.555", "abc", "10"):
        error = await rpc_error(org_a.partner(rating=bad))
        assert "partner.rating" in field_violations(error), bad


async def test_update_partner_changes_masked_fields_and_honours_etags(org_a):
    partner = await org_a.partner(name="Old", conditions="cash", rating="3.00")
    updated = await org_a.partners.UpdatePartner(pb.UpdatePartnerRequest(
        partner=pb.Partner(id=partner.id, name="New", conditions="ignored", etag=partner.etag),
        update_mask=mask("name", "rating")))
    assert (updated.name, updated.conditions, updated.HasField("rating")) == ("New", "cash", False)
    assert updated.etag != partner.etag
    stale = await rpc_error(org_a.partners.UpdatePartner(pb.UpdatePartnerRequest(
        partner=pb.Partner(id=partner.id, name="Stale", etag=partner.etag), update_mask=mask("name"))))
    assert stale.code() == grpc.StatusCode.ABORTED and reason(stale) == "ETAG_MISMATCH"
    assert metadata(stale)["current_etag"] == updated.etag
    for paths in ([], ["nope"], ["id"], ["create_time"]):
        error = await rpc_error(org_a.partners.UpdatePartner(pb.UpdatePartnerRequest(
            partner=pb.Partner(id=partner.id, name="X"), update_mask=mask(*paths))))
        assert error.code() == INVALID, paths
    error = await rpc_error(org_a.partners.UpdatePartner(pb.UpdatePartnerRequest(
        partner=pb.Partner(id=partner.id), update_mask=mask("name"))))
    assert "partner.name" in field_violations(error)


async def test_partner_in_use_cannot_be_deleted(org_a):
    partner = await org_a.partner()
    product = await org_a.product(partner_id=partner.id)
    error = await rpc_error(org_a.partners.DeletePartner(pb.DeletePartnerRequest(id=partner.id)))
    assert error.code() == PRECONDITION and reason(error) == "PARTNER_IN_USE"
    assert metadata(error) == {"products": "1"}
    await org_a.products.UpdateProduct(pb.UpdateProductRequest(product=pb.Product(id=product.id),
                                                               update_mask=mask("partner_id")))
    stale = await rpc_error(org_a.partners.DeletePartner(pb.DeletePartnerRequest(id=partner.id, etag="0" * 16)))
    assert reason(stale) == "ETAG_MISMATCH"
    await org_a.partners.DeletePartner(pb.DeletePartnerRequest(id=partner.id, etag=partner.etag))
    error = await rpc_error(org_a.partners.GetPartner(pb.GetPartnerRequest(id=partner.id)))
    assert error.code() == NOT_FOUND and reason(error) == "PARTNER_NOT_FOUND"


async def test_list_partners_by_name_with_filters_and_pages(org_a):
    names = ["Delta Drivers", "alpha camps", "Charlie Guides", "Bravo Yurts", "Echo Horses"]
    for index, name in enumerate(names):
        await org_a.partner(name=name, is_available=index % 2 == 0, rating=f"{index}.50")
    listed = await org_a.list_all(org_a.partners.ListPartners, pb.ListPartnersRequest, "partners", page_size=2)
    assert [p.name for p in listed] == sorted(names)
    newest = await org_a.list_all(org_a.partners.ListPartners, pb.ListPartnersRequest, "partners", page_size=2,
                                  order_by="create_time desc")
    assert [p.name for p in newest] == list(reversed(names))

    async def named(filter_text):
        return {p.name for p in await org_a.list_all(org_a.partners.ListPartners, pb.ListPartnersRequest,
                                                     "partners", filter=filter_text)}

    assert await named("is_available = false") == {"alpha camps", "Bravo Yurts"}
    assert await named('search = "YURT"') == {"Bravo Yurts"}
    assert await named("rating >= 4 AND is_available = true") == {"Echo Horses"}
    for bad in ("rating >= lots", "is_available = maybe", "colour = red"):
        error = await rpc_error(org_a.partners.ListPartners(pb.ListPartnersRequest(filter=bad)))
        assert error.code() == INVALID and "filter" in field_violations(error), bad
    error = await rpc_error(org_a.partners.ListPartners(pb.ListPartnersRequest(order_by="rating")))
    assert "order_by" in field_violations(error)


# --- money and products --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "currency"), [
    ("1234.56", "USD"), ("0.10", "EUR"), ("0.01", "KGS"), ("0", "USD"), ("9999999999.99", "USD"),
    ("8765432109.87", "KZT"), ("1500", "JPY"), ("12.5", "KWD"),
])
async def test_money_round_trips_exactly(org_a, text, currency):
    product = await org_a.product(base_price=money(text, currency))
    got = await org_a.products.GetProduct(pb.GetProductRequest(id=product.id))
    assert amount(got.base_price) == Decimal(text) and got.base_price.currency_code == currency
    assert got.base_price == money(text, currency)
    tour = await org_a.tour(product.id)
    assert tour.effective_price == got.base_price and not tour.HasField("price")
    priced = await org_a.tour(product.id, price=money(text, currency))
    assert amount((await org_a.get_tour(priced.id)).price) == Decimal(text)


async def test_money_is_stored_as_exact_numeric(org_a, database):
    product = await org_a.product(base_price=money("1234.56"))
    tour = await org_a.tour(product.id, price=money("0.10", "EUR"))
    with psycopg.connect(database.admin) as conn:
        stored = conn.execute("select base_price, currency from products where id = %s", (product.id,)).fetchone()
        tour_price = conn.execute("select price, currency from tours where id = %s", (tour.id,)).fetchone()
    assert stored == (Decimal("1234.56"), "USD") and tour_price == (Decimal("0.10"), "EUR")


@pytest.mark.parametrize(("price", "field"), [
    ({"currency_code": "usd", "units": 10}, "product.base_price.currency_code"),
    ({"currency_code": "XXX", "units": 10}, "product.base_price.currency_code"),
    ({"currency_code": "", "units": 10}, "product.base_price.currency_code"),
    ({"currency_code": "USD", "units": -1}, "product.base_price"),
    ({"currency_code": "USD", "units": 0, "nanos": -10_000_000}, "product.base_price"),
    ({"currency_code": "USD", "units": 1, "nanos": 1_000_000}, "product.base_price"),  # 1.001
    ({"currency_code": "JPY", "units": 100, "nanos": 500_000_000}, "product.base_price"),  # no yen cents
    ({"currency_code": "USD", "units": 10_000_000_000}, "product.base_price"),
    ({"currency_code": "USD", "units": 1, "nanos": -5}, "product.base_price"),  # mixed signs
    ({"currency_code": "USD", "units": 1, "nanos": 1_000_000_000}, "product.base_price"),
])
async def test_money_is_validated(org_a, price, field):
    error = await rpc_error(org_a.product(base_price=money_pb2.Money(**price)))
    assert error.code() == INVALID
    assert field in field_violations(error)


async def test_product_fields_and_references(org_a, org_b):
    partner = await org_a.partner()
    product = pb.Product(name="Weekend Getaway", description="Mountains near Bishkek", duration_days=3,
                         type=S.PRODUCT_TYPE_PACKAGE, base_price=money("450"), inclusions=["guide", " transport "],
                         exclusions=["flights"], partner_id=partner.id)
    product.options.update({"banya": 40, "horse_riding": {"price": 35}})
    created = await org_a.products.CreateProduct(pb.CreateProductRequest(product=product))
    assert created.inclusions == ["guide", "transport"] and created.exclusions == ["flights"]
    assert created.options["horse_riding"]["price"] == 35 and created.is_active
    assert (created.type, created.duration_days, created.partner_id) == (S.PRODUCT_TYPE_PACKAGE, 3, partner.id)
    assert await org_a.products.GetProduct(pb.GetProductRequest(id=created.id)) == created
    foreign = await org_b.partner()
    error = await rpc_error(org_a.product(partner_id=foreign.id))
    assert error.code() == INVALID and reason(error) == "PARTNER_NOT_FOUND"
    assert "product.partner_id" in field_violations(error)
    error = await rpc_error(org_a.product(type=S.PRODUCT_TYPE_UNSPECIFIED, duration_days=0, inclusions=[""],
                                          partner_id="nope", name=""))
    assert set(field_violations(error)) == {"product.type", "product.duration_days", "product.inclusions[0]",
                                            "product.partner_id", "product.name"}
    cleared = await org_a.products.UpdateProduct(pb.UpdateProductRequest(
        product=pb.Product(id=created.id, is_active=False), update_mask=mask("inclusions", "options", "is_active")))
    assert list(cleared.inclusions) == [] and not cleared.HasField("options") and not cleared.is_active


async def test_list_products_filters(org_a):
    partner = await org_a.partner()
    tour = await org_a.product(name="Song-Kul Horse Trek", base_price=money("780.00"), partner_id=partner.id,
                               description="Four days on horseback")
    service = await org_a.product(name="Airport Transfer", type=S.PRODUCT_TYPE_SERVICE, base_price=money("35"))
    package = await org_a.product(name="Silk Road", type=S.PRODUCT_TYPE_PACKAGE, base_price=money("2950", "EUR"),
                                  is_active=False)

    async def ids(filter_text):
        return {p.id for p in await org_a.list_all(org_a.products.ListProducts, pb.ListProductsRequest,
                                                   "products", filter=filter_text)}

    assert await ids("type = SERVICE") == {service.id}
    assert await ids("type != PRODUCT_TYPE_TOUR") == {service.id, package.id}
    assert await ids("is_active = false") == {package.id}
    assert await ids(f'partner_id = "{partner.id}"') == {tour.id}
    assert await ids('base_price >= 35 AND base_price < "780.00"') == {service.id}
    assert await ids('base_price >= "100" AND currency = "USD"') == {tour.id}
    assert await ids('search = "horseback"') == {tour.id}
    assert [p.name for p in await org_a.list_all(org_a.products.ListProducts, pb.ListProductsRequest, "products",
                                                 page_size=1)] == ["Airport Transfer", "Silk Road",
                                                                   "Song-Kul Horse Trek"]
    for bad in ('currency = "usd"', "base_price > cheap", "type = CRUISE", 'partner_id = "x"'):
        error = await rpc_error(org_a.products.ListProducts(pb.ListProductsRequest(filter=bad)))
        assert error.code() == INVALID, bad


async def test_a_new_base_price_applies_to_tours_without_their_own(org_a):
    product = await org_a.product(base_price=money("100.00"))
    plain, priced = await org_a.tour(product.id), await org_a.tour(product.id, price=money("80.00"))
    await org_a.products.UpdateProduct(pb.UpdateProductRequest(
        product=pb.Product(id=product.id, base_price=money("120.50", "EUR")), update_mask=mask("base_price")))
    assert (await org_a.get_tour(plain.id)).effective_price == money("120.50", "EUR")
    assert (await org_a.get_tour(priced.id)).effective_price == money("80.00")
    cleared = await org_a.tours.UpdateTour(pb.UpdateTourRequest(tour=pb.Tour(id=priced.id), update_mask=mask("price")))
    assert not cleared.HasField("price") and cleared.effective_price == money("120.50", "EUR")


async def test_product_with_booked_tours_is_archived_not_deleted(org_a, database):
    product = await org_a.product()
    tour = await org_a.tour(product.id, max_participants=5)
    interest = await org_a.interests.CreateClientProduct(pb.CreateClientProductRequest(
        client_product=pb.ClientProduct(client_id=await org_a.client(), product_id=product.id)))
    booked = await org_a.book(tour.id)
    error = await rpc_error(org_a.products.DeleteProduct(pb.DeleteProductRequest(id=product.id)))
    assert error.code() == PRECONDITION and reason(error) == "PRODUCT_HAS_BOOKINGS"
    assert metadata(error) == {"tours": "1"}
    archived = await org_a.products.UpdateProduct(pb.UpdateProductRequest(
        product=pb.Product(id=product.id, is_active=False), update_mask=mask("is_active")))
    error = await rpc_error(org_a.tour(product.id))
    assert error.code() == PRECONDITION and reason(error) == "PRODUCT_INACTIVE"
    await org_a.bookings.CancelBooking(pb.CancelBookingRequest(id=booked.booking.id))
    await org_a.products.DeleteProduct(pb.DeleteProductRequest(id=product.id, etag=archived.etag))
    for call in (org_a.get_tour(tour.id), org_a.bookings.GetBooking(pb.GetBookingRequest(id=booked.booking.id)),
                 org_a.interests.GetClientProduct(pb.GetClientProductRequest(id=interest.id))):
        assert (await rpc_error(call)).code() == NOT_FOUND


# --- tours ---------------------------------------------------------------------------------------

async def test_create_tour(org_a, org_b):
    product = await org_a.product(base_price=money("450.00"))
    tour = await org_a.tour(product.id, max_participants=12, notes="Demo")
    assert (tour.status, tour.current_participants, tour.max_participants, tour.free_seats) == (
        S.TOUR_STATUS_AVAILABLE, 0, 12, 12)
    assert tour.effective_price == money("450.00") and tour.notes == "Demo"
    unlimited = await org_a.tour(product.id)
    assert not unlimited.HasField("max_participants") and not unlimited.HasField("free_seats")
    error = await rpc_error(org_a.tour(product.id, start=days(10), end=days(9), max_participants=0))
    assert set(field_violations(error)) == {"tour.end_time", "tour.max_participants"}
    error = await rpc_error(org_a.tours.CreateTour(pb.CreateTourRequest(tour=pb.Tour(product_id=product.id))))
    assert {"tour.start_time", "tour.end_time"} <= set(field_violations(error))
    for product_id in (str(uuid.uuid4()), (await org_b.product()).id):
        error = await rpc_error(org_a.tour(product_id))
        assert error.code() == INVALID and reason(error) == "PRODUCT_NOT_FOUND"
        assert "tour.product_id" in field_violations(error)


async def test_tour_search_by_date_range_and_free_seats(org_a):
    product = await org_a.product()
    other = await org_a.product()
    march = await org_a.tour(product.id, start=days(60), end=days(63), max_participants=4)
    april = await org_a.tour(product.id, start=days(90), end=days(97), max_participants=10)
    spanning = await org_a.tour(other.id, start=days(55), end=days(95))  # no limit
    may = await org_a.tour(product.id, start=days(120), end=days(122), max_participants=2)
    await org_a.book(march.id, participants=3)  # 1 seat left
    await org_a.book(may.id, participants=2)  # full

    def window(start, end):
        return f'start_time <= "{ts(days(end)).ToJsonString()}" AND end_time >= "{ts(days(start)).ToJsonString()}"'

    async def ids(filter_text, **request):
        return [t.id for t in await org_a.list_all(org_a.tours.ListTours, pb.ListToursRequest, "tours",
                                                   page_size=1, filter=filter_text, **request)]

    assert await ids(window(61, 91)) == [spanning.id, march.id, april.id]  # ordered by start
    assert await ids(window(61, 91) + " AND free_seats >= 2") == [spanning.id, april.id]
    assert await ids(window(50, 200) + " AND status = AVAILABLE AND free_seats >= 1") == [
        spanning.id, march.id, april.id]
    assert await ids(window(50, 200) + " AND status = FULL") == [may.id]
    assert await ids(f'product_id = "{product.id}" AND free_seats < 2') == [march.id, may.id]
    assert await ids(f'product_id = "{product.id}"', order_by="start_time desc") == [may.id, april.id, march.id]
    assert await ids(window(100, 110)) == []
    for bad in ('start_time <= "tomorrow"', "free_seats >= many", "status = SOLD_OUT", 'end_time >= "2026-01-01"'):
        error = await rpc_error(org_a.tours.ListTours(pb.ListToursRequest(filter=bad)))
        assert error.code() == INVALID and reason(error) == "INVALID_FILTER", bad


async def test_capacity_edits_follow_the_seats(org_a, database):
    tour = await org_a.tour(max_participants=5)
    await org_a.book(tour.id, participants=3)

    async def capacity(value=None, *, etag=""):
        request = pb.UpdateTourRequest(tour=pb.Tour(id=tour.id, etag=etag), update_mask=mask("max_participants"))
        if value is not None:
            request.tour.max_participants = value
        return await org_a.tours.UpdateTour(request)

    full = await capacity(3)
    assert (full.status, full.free_seats) == (S.TOUR_STATUS_FULL, 0)
    error = await rpc_error(capacity(2))
    assert error.code() == PRECONDITION and reason(error) == "CAPACITY_BELOW_BOOKED"
    assert metadata(error) == {"booked_seats": "3", "requested_capacity": "2"}
    error = await rpc_error(capacity(10, etag=tour.etag))
    assert reason(error) == "ETAG_MISMATCH"
    assert (await capacity(4, etag=full.etag)).status == S.TOUR_STATUS_AVAILABLE
    unlimited = await capacity()
    assert unlimited.status == S.TOUR_STATUS_AVAILABLE and not unlimited.HasField("free_seats")
    start, end = ts(days(40)), ts(days(41))
    moved = await org_a.tours.UpdateTour(pb.UpdateTourRequest(
        tour=pb.Tour(id=tour.id, start_time=start, end_time=end, notes="moved"),
        update_mask=mask("start_time", "end_time", "notes")))
    assert (moved.notes, moved.start_time, moved.end_time) == ("moved", start, end)
    error = await rpc_error(org_a.tours.UpdateTour(pb.UpdateTourRequest(
        tour=pb.Tour(id=tour.id, end_time=ts(days(39))), update_mask=mask("end_time"))))
    assert "tour.end_time" in field_violations(error)
    error = await rpc_error(org_a.tours.UpdateTour(pb.UpdateTourRequest(
        tour=pb.Tour(id=tour.id), update_mask=mask("status"))))
    assert error.code() == INVALID
    assert_seat_invariant(database, tour.id)


async def test_cancel_tour_cancels_its_bookings_in_one_go(org_a, database):
    tour = await org_a.tour(max_participants=4)
    first, second = await org_a.book(tour.id, participants=2), await org_a.book(tour.id, participants=2)
    assert second.tour.status == S.TOUR_STATUS_FULL
    interest = await org_a.bookings.CreateBooking(pb.CreateBookingRequest(
        booking=pb.Booking(client_id=await org_a.client(), tour_id=tour.id)))
    cancelled = await org_a.tours.CancelTour(pb.CancelTourRequest(id=tour.id))
    assert (cancelled.status, cancelled.current_participants, cancelled.free_seats) == (S.TOUR_STATUS_CANCELLED, 0, 0)
    bookings = await org_a.list_all(org_a.bookings.ListBookings, pb.ListBookingsRequest, "bookings",
                                    filter=f'tour_id = "{tour.id}"')
    assert {b.id for b in bookings} == {first.booking.id, second.booking.id, interest.id}
    assert {b.status for b in bookings} == {S.CLIENT_TOUR_STATUS_CANCELLED}
    assert_seat_invariant(database, tour.id)
    for call in (org_a.tours.CancelTour(pb.CancelTourRequest(id=tour.id)),
                 org_a.tours.CompleteTour(pb.CompleteTourRequest(id=tour.id))):
        error = await rpc_error(call)
        assert error.code() == PRECONDITION and reason(error) == "INVALID_TOUR_TRANSITION"
        assert metadata(error)["current_status"] == "CANCELLED"
    error = await rpc_error(org_a.book(tour.id))
    assert reason(error) == "TOUR_CANCELLED" and metadata(error) == {"current_status": "CANCELLED"}
    error = await rpc_error(org_a.bookings.BookTour(pb.BookTourRequest(
        tour_id=tour.id, client_id=bookings[0].client_id, participants=1)))
    assert reason(error) == "TOUR_CANCELLED"
    error = await rpc_error(org_a.tours.UpdateTour(pb.UpdateTourRequest(
        tour=pb.Tour(id=tour.id, max_participants=10), update_mask=mask("max_participants"))))
    assert reason(error) == "TOUR_CANCELLED"
    noted = await org_a.tours.UpdateTour(pb.UpdateTourRequest(tour=pb.Tour(id=tour.id, notes="weather"),
                                                              update_mask=mask("notes")))
    assert noted.notes == "weather" and noted.status == S.TOUR_STATUS_CANCELLED
    error = await rpc_error(org_a.bookings.ChangeBookingStatus(pb.ChangeBookingStatusRequest(
        id=first.booking.id, status=S.CLIENT_TOUR_STATUS_CONFIRMED)))
    assert reason(error) == "INVALID_BOOKING_TRANSITION"


async def test_complete_tour_once_it_has_ended(org_a, database):
    future = await org_a.tour()
    error = await rpc_error(org_a.tours.CompleteTour(pb.CompleteTourRequest(id=future.id)))
    assert error.code() == PRECONDITION and reason(error) == "TOUR_NOT_ENDED" and "end_time" in metadata(error)
    past = await org_a.tour(start=days(-10), end=days(-7), max_participants=3)
    error = await rpc_error(org_a.book(past.id))
    assert reason(error) == "TOUR_ENDED"
    running = await org_a.tour(start=days(-1), end=days(2), max_participants=3)
    booked = await org_a.book(running.id, participants=2)
    stale = await rpc_error(org_a.tours.CompleteTour(pb.CompleteTourRequest(id=past.id, etag=running.etag)))
    assert reason(stale) == "ETAG_MISMATCH"
    completed = await org_a.tours.CompleteTour(pb.CompleteTourRequest(id=past.id, etag=past.etag))
    assert completed.status == S.TOUR_STATUS_COMPLETED and completed.free_seats == 0
    error = await rpc_error(org_a.tours.CancelTour(pb.CancelTourRequest(id=past.id)))
    assert reason(error) == "INVALID_TOUR_TRANSITION"
    assert metadata(error) == {"current_status": "COMPLETED", "requested_status": "CANCELLED"}
    error = await rpc_error(org_a.book(past.id))
    assert reason(error) == "TOUR_COMPLETED"
    # A completed tour keeps its bookings and their seats on record.
    with psycopg.connect(database.admin) as conn:
        conn.execute("update tours set end_date = now() - interval '1 minute', start_date = now() - interval '2 days'"
                     " where id = %s", (running.id,))
    done = await org_a.tours.CompleteTour(pb.CompleteTourRequest(id=running.id))
    assert (done.status, done.current_participants) == (S.TOUR_STATUS_COMPLETED, 2)
    kept = await org_a.bookings.GetBooking(pb.GetBookingRequest(id=booked.booking.id))
    assert kept.status == S.CLIENT_TOUR_STATUS_BOOKED
    error = await rpc_error(org_a.bookings.CancelBooking(pb.CancelBookingRequest(id=booked.booking.id)))
    assert reason(error) == "TOUR_COMPLETED"
    assert_seat_invariant(database, running.id)


async def test_delete_tour_only_without_booked_seats(org_a):
    tour = await org_a.tour(max_participants=3)
    booked = await org_a.book(tour.id)
    error = await rpc_error(org_a.tours.DeleteTour(pb.DeleteTourRequest(id=tour.id)))
    assert error.code() == PRECONDITION and reason(error) == "TOUR_HAS_BOOKINGS"
    assert metadata(error) == {"booked_seats": "1"}
    await org_a.bookings.CancelBooking(pb.CancelBookingRequest(id=booked.booking.id))
    await org_a.tours.DeleteTour(pb.DeleteTourRequest(id=tour.id))
    assert (await rpc_error(org_a.get_tour(tour.id))).code() == NOT_FOUND
    assert (await rpc_error(org_a.tours.DeleteTour(pb.DeleteTourRequest(id=tour.id)))).code() == NOT_FOUND


# --- bookings ------------------------------------------------------------------------------------

async def test_two_seats_book_twice_full_cancel_available(org_a, database):
    tour = await org_a.tour(max_participants=2)
    first = await org_a.book(tour.id)
    assert (first.booking.status, first.booking.participants) == (S.CLIENT_TOUR_STATUS_BOOKED, 1)
    assert (first.tour.status, first.tour.current_participants, first.tour.free_seats) == (
        S.TOUR_STATUS_AVAILABLE, 1, 1)
    second = await org_a.book(tour.id)
    assert (second.tour.status, second.tour.current_participants, second.tour.free_seats) == (
        S.TOUR_STATUS_FULL, 2, 0)
    error = await rpc_error(org_a.book(tour.id))
    assert error.code() == PRECONDITION and reason(error) == "TOUR_FULL"
    assert metadata(error) == {"free_seats": "0", "requested_seats": "1", "current_status": "FULL"}
    cancelled = await org_a.bookings.CancelBooking(pb.CancelBookingRequest(id=first.booking.id))
    assert cancelled.booking.status == S.CLIENT_TOUR_STATUS_CANCELLED
    assert (cancelled.tour.status, cancelled.tour.current_participants) == (S.TOUR_STATUS_AVAILABLE, 1)
    assert (await org_a.get_tour(tour.id)).status == S.TOUR_STATUS_AVAILABLE
    assert_seat_invariant(database, tour.id)


async def test_tour_full_tells_the_free_seats(org_a):
    tour = await org_a.tour(max_participants=5)
    await org_a.book(tour.id, participants=3)
    error = await rpc_error(org_a.book(tour.id, participants=3))
    assert reason(error) == "TOUR_FULL"
    assert metadata(error) == {"free_seats": "2", "requested_seats": "3", "current_status": "AVAILABLE"}
    assert (await org_a.book(tour.id, participants=2)).tour.status == S.TOUR_STATUS_FULL


async def test_second_booking_of_a_client_is_already_exists_even_when_racing(org_a, database):
    tour = await org_a.tour(max_participants=20)
    client = await org_a.client()
    results = await asyncio.gather(*[org_a.book(tour.id, client, participants=2) for _ in range(8)],
                                   return_exceptions=True)
    booked = [r for r in results if isinstance(r, pb.BookTourResponse)]
    errors = [r for r in results if not isinstance(r, pb.BookTourResponse)]
    assert len(booked) == 1 and len(errors) == 7
    assert {(e.code(), reason(e)) for e in errors} == {(grpc.StatusCode.ALREADY_EXISTS, "BOOKING_EXISTS")}
    assert metadata(errors[0]) == {"booking_id": booked[0].booking.id, "current_status": "BOOKED"}
    assert assert_seat_invariant(database, tour.id)[0] == 2


async def test_book_tour_reuses_the_clients_interest_and_a_cancelled_booking(org_a, database):
    tour = await org_a.tour(max_participants=3)
    client = await org_a.client()
    interest = await org_a.bookings.CreateBooking(pb.CreateBookingRequest(
        booking=pb.Booking(client_id=client, tour_id=tour.id, notes="asked about July")))
    assert interest.status == S.CLIENT_TOUR_STATUS_INTERESTED and not interest.HasField("participants")
    error = await rpc_error(org_a.bookings.CreateBooking(pb.CreateBookingRequest(
        booking=pb.Booking(client_id=client, tour_id=tour.id))))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and metadata(error)["booking_id"] == interest.id
    booked = await org_a.book(tour.id, client, participants=2)
    assert booked.booking.id == interest.id and booked.booking.status == S.CLIENT_TOUR_STATUS_BOOKED
    assert booked.booking.notes == "asked about July"
    await org_a.bookings.CancelBooking(pb.CancelBookingRequest(id=interest.id))
    again = await org_a.book(tour.id, client, participants=3, notes="changed their mind")
    assert (again.booking.id, again.booking.participants, again.booking.notes) == (
        interest.id, 3, "changed their mind")
    assert again.tour.status == S.TOUR_STATUS_FULL
    assert_seat_invariant(database, tour.id)


async def test_booking_status_machine(org_a, database):
    tour = await org_a.tour(max_participants=4)
    booking = await org_a.bookings.CreateBooking(pb.CreateBookingRequest(
        booking=pb.Booking(client_id=await org_a.client(), tour_id=tour.id)))

    async def move(status, **fields):
        return await org_a.bookings.ChangeBookingStatus(pb.ChangeBookingStatusRequest(
            id=booking.id, status=status, **fields))

    assert (await move(S.CLIENT_TOUR_STATUS_PROPOSED)).booking.status == S.CLIENT_TOUR_STATUS_PROPOSED
    for illegal in (S.CLIENT_TOUR_STATUS_PROPOSED, S.CLIENT_TOUR_STATUS_INTERESTED):
        error = await rpc_error(move(illegal))
        assert error.code() == PRECONDITION and reason(error) == "INVALID_BOOKING_TRANSITION"
        assert metadata(error) == {"current_status": "PROPOSED",
                                   "requested_status": S.ClientTourStatus.Name(illegal).removeprefix(
                                       "CLIENT_TOUR_STATUS_")}
    error = await rpc_error(move(S.CLIENT_TOUR_STATUS_BOOKED))  # seats need a number of participants
    assert error.code() == INVALID and "participants" in field_violations(error)
    error = await rpc_error(move(S.CLIENT_TOUR_STATUS_CONFIRMED, participants=5))
    assert reason(error) == "TOUR_FULL"
    confirmed = await move(S.CLIENT_TOUR_STATUS_CONFIRMED, participants=4)  # skipping SELECTED and BOOKED
    assert (confirmed.tour.status, confirmed.tour.current_participants) == (S.TOUR_STATUS_FULL, 4)
    error = await rpc_error(move(S.CLIENT_TOUR_STATUS_BOOKED))
    assert reason(error) == "INVALID_BOOKING_TRANSITION"
    stale = await rpc_error(move(S.CLIENT_TOUR_STATUS_CANCELLED, etag=booking.etag))
    assert reason(stale) == "ETAG_MISMATCH"
    cancelled = await move(S.CLIENT_TOUR_STATUS_CANCELLED, etag=confirmed.booking.etag)
    assert (cancelled.tour.status, cancelled.tour.current_participants) == (S.TOUR_STATUS_AVAILABLE, 0)
    for target in (S.CLIENT_TOUR_STATUS_CANCELLED, S.CLIENT_TOUR_STATUS_CONFIRMED):
        error = await rpc_error(move(target))
        assert metadata(error)["current_status"] == "CANCELLED"
    for bad in ({"status": S.CLIENT_TOUR_STATUS_UNSPECIFIED}, {"status": 42},
                {"status": S.CLIENT_TOUR_STATUS_BOOKED, "participants": 0}):
        error = await rpc_error(org_a.bookings.ChangeBookingStatus(pb.ChangeBookingStatusRequest(id=booking.id,
                                                                                                 **bad)))
        assert error.code() == INVALID, bad
    assert_seat_invariant(database, tour.id)


async def test_update_booking_participants_rechecks_the_seats(org_a, database):
    tour = await org_a.tour(max_participants=5)
    booked = await org_a.book(tour.id, participants=2)

    async def participants(value=None, booking_id=booked.booking.id, notes=None):
        booking = pb.Booking(id=booking_id, notes=notes)
        if value is not None:
            booking.participants = value
        return await org_a.bookings.UpdateBooking(pb.UpdateBookingRequest(
            booking=booking, update_mask=mask("participants", *(["notes"] if notes else []))))

    assert (await participants(5, notes="family of five")).notes == "family of five"
    assert (await org_a.get_tour(tour.id)).status == S.TOUR_STATUS_FULL
    error = await rpc_error(participants(6))
    assert reason(error) == "TOUR_FULL" and metadata(error)["free_seats"] == "0"
    assert (await participants(1)).participants == 1
    assert (await org_a.get_tour(tour.id)).current_participants == 1
    error = await rpc_error(participants())
    assert error.code() == INVALID and "booking.participants" in field_violations(error)
    await org_a.bookings.CancelBooking(pb.CancelBookingRequest(id=booked.booking.id))
    error = await rpc_error(participants(2))
    assert reason(error) == "BOOKING_CANCELLED"
    interest = await org_a.bookings.CreateBooking(pb.CreateBookingRequest(
        booking=pb.Booking(client_id=await org_a.client(), tour_id=tour.id, participants=3)))
    assert (await participants(4, booking_id=interest.id)).participants == 4
    assert_seat_invariant(database, tour.id)
    assert (await org_a.get_tour(tour.id)).current_participants == 0


async def test_delete_booking_only_when_it_holds_no_seats(org_a):
    tour = await org_a.tour()
    booked = await org_a.book(tour.id)
    error = await rpc_error(org_a.bookings.DeleteBooking(pb.DeleteBookingRequest(id=booked.booking.id)))
    assert reason(error) == "BOOKING_HOLDS_SEATS" and metadata(error) == {"current_status": "BOOKED"}
    interest = await org_a.bookings.CreateBooking(pb.CreateBookingRequest(
        booking=pb.Booking(client_id=await org_a.client(), tour_id=tour.id)))
    await org_a.bookings.DeleteBooking(pb.DeleteBookingRequest(id=interest.id, etag=interest.etag))
    assert (await rpc_error(org_a.bookings.GetBooking(pb.GetBookingRequest(id=interest.id)))).code() == NOT_FOUND


async def test_book_tour_checks_its_input_and_references(org_a, org_b):
    tour = await org_a.tour(max_participants=3)
    client = await org_a.client()
    for participants in (0, -1, 1001):
        error = await rpc_error(org_a.book(tour.id, client, participants=participants))
        assert error.code() == INVALID and "participants" in field_violations(error), participants
    error = await rpc_error(org_a.bookings.BookTour(pb.BookTourRequest(tour_id="x", client_id="y", participants=0)))
    assert set(field_violations(error)) == {"tour_id", "client_id", "participants"}
    for foreign_client in (str(uuid.uuid4()), await org_b.client()):
        error = await rpc_error(org_a.book(tour.id, foreign_client))
        assert error.code() == INVALID and reason(error) == "CLIENT_NOT_FOUND"
        assert "client_id" in field_violations(error)
    for foreign_tour in (str(uuid.uuid4()), (await org_b.tour()).id):
        error = await rpc_error(org_a.book(foreign_tour, client))
        assert error.code() == NOT_FOUND and reason(error) == "TOUR_NOT_FOUND"
        error = await rpc_error(org_a.bookings.CreateBooking(pb.CreateBookingRequest(
            booking=pb.Booking(client_id=client, tour_id=foreign_tour))))
        assert error.code() == INVALID and reason(error) == "TOUR_NOT_FOUND"
        assert "booking.tour_id" in field_violations(error)
    assert (await org_a.get_tour(tour.id)).current_participants == 0


async def test_request_ids_make_creates_and_bookings_retry_safe(org_a, database):
    request_id = str(uuid.uuid4())
    tour = await org_a.tour(max_participants=5)
    client = await org_a.client()
    replies = await asyncio.gather(*[org_a.book(tour.id, client, participants=2, request_id=request_id)
                                     for _ in range(4)])
    assert len({r.booking.id for r in replies}) == 1
    assert seats(database, tour.id)[:2] == (2, 2)
    partner_request = str(uuid.uuid4())
    first = await org_a.partners.CreatePartner(pb.CreatePartnerRequest(partner=pb.Partner(name="Once"),
                                                                       request_id=partner_request))
    again = await org_a.partners.CreatePartner(pb.CreatePartnerRequest(partner=pb.Partner(name="Once"),
                                                                       request_id=partner_request))
    assert again.id == first.id
    error = await rpc_error(org_a.partners.CreatePartner(pb.CreatePartnerRequest(
        partner=pb.Partner(name="Once"), request_id="not-a-uuid")))
    assert "request_id" in field_violations(error)


async def test_list_bookings_by_tour_client_and_status(org_a):
    tours = [await org_a.tour(max_participants=10) for _ in range(2)]
    client = await org_a.client()
    mine = [await org_a.book(t.id, client) for t in tours]
    others = [await org_a.book(tours[0].id) for _ in range(3)]
    await org_a.bookings.CancelBooking(pb.CancelBookingRequest(id=others[0].booking.id))

    async def ids(filter_text, **request):
        return [b.id for b in await org_a.list_all(org_a.bookings.ListBookings, pb.ListBookingsRequest,
                                                   "bookings", page_size=2, filter=filter_text, **request)]

    on_first = [r.booking.id for r in [mine[0], *others]]
    assert await ids(f'tour_id = "{tours[0].id}"') == list(reversed(on_first))  # newest first
    assert await ids(f'tour_id = "{tours[0].id}"', order_by="create_time") == on_first
    assert await ids(f'client_id = "{client}"') == [mine[1].booking.id, mine[0].booking.id]
    assert await ids(f'tour_id = "{tours[0].id}" AND status = CANCELLED') == [others[0].booking.id]
    assert len(await ids(f'tour_id = "{tours[0].id}" AND status != CLIENT_TOUR_STATUS_CANCELLED')) == 3


async def test_deleting_a_client_in_crm_gives_its_seats_back(org_a, database):
    tour = await org_a.tour(max_participants=3)
    leaving = await org_a.client()
    await org_a.book(tour.id, leaving, participants=2)
    assert (await org_a.book(tour.id)).tour.status == S.TOUR_STATUS_FULL
    await org_a.crm.DeleteClient(crm_pb2.DeleteClientRequest(id=leaving))
    tour = await org_a.get_tour(tour.id)
    assert (tour.status, tour.current_participants, tour.free_seats) == (S.TOUR_STATUS_AVAILABLE, 1, 2)
    assert_seat_invariant(database, tour.id)


# --- the race ------------------------------------------------------------------------------------

async def test_racing_bookings_cancellations_and_capacity_edits_never_overbook(org_a, database):
    tour = await org_a.tour(max_participants=10)
    clients = await asyncio.gather(*[org_a.client() for _ in range(70)])
    results = await asyncio.gather(*[org_a.book(tour.id, client) for client in clients[:40]],
                                   return_exceptions=True)
    booked = [r for r in results if isinstance(r, pb.BookTourResponse)]
    refused = [r for r in results if not isinstance(r, pb.BookTourResponse)]
    assert len(booked) == 10 and len(refused) == 30
    assert {(e.code(), reason(e)) for e in refused} == {(PRECONDITION, "TOUR_FULL")}
    after = await org_a.get_tour(tour.id)
    assert (after.status, after.current_participants, after.free_seats) == (S.TOUR_STATUS_FULL, 10, 0)
    assert assert_seat_invariant(database, tour.id) == (10, 10, "FULL")

    # Cancellations, capacity edits and new bookings, all at once.
    def capacity(value):
        return org_a.tours.UpdateTour(pb.UpdateTourRequest(tour=pb.Tour(id=tour.id, max_participants=value),
                                                           update_mask=mask("max_participants")))

    calls = [org_a.bookings.CancelBooking(pb.CancelBookingRequest(id=b.booking.id)) for b in booked[:5]]
    calls += [capacity(value) for value in (12, 8, 9, 14, 6, 11)]
    calls += [org_a.book(tour.id, client, participants=1 + index % 2) for index, client in enumerate(clients[40:])]
    results = await asyncio.gather(*calls, return_exceptions=True)
    failures = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(e, grpc.aio.AioRpcError) and e.code() == PRECONDITION
               and reason(e) in ("TOUR_FULL", "CAPACITY_BELOW_BOOKED") for e in failures), failures
    assert all(not isinstance(r, Exception) for r in results[:5])  # cancellations always succeed
    held, capacity_now, status = assert_seat_invariant(database, tour.id)
    assert held <= capacity_now
    final = await org_a.get_tour(tour.id)
    assert (final.current_participants, final.max_participants) == (held, capacity_now)
    bookings = await org_a.list_all(org_a.bookings.ListBookings, pb.ListBookingsRequest, "bookings",
                                    page_size=100, filter=f'tour_id = "{tour.id}"')
    assert sum(b.participants for b in bookings if b.status in (S.CLIENT_TOUR_STATUS_BOOKED,
                                                                S.CLIENT_TOUR_STATUS_CONFIRMED)) == held


# --- client interests ----------------------------------------------------------------------------

async def test_client_interests(org_a, org_b):
    products = [await org_a.product() for _ in range(3)]
    client, other = await org_a.client(), await org_a.client()

    async def add(client_id, product_id, **fields):
        return await org_a.interests.CreateClientProduct(pb.CreateClientProductRequest(
            client_product=pb.ClientProduct(client_id=client_id, product_id=product_id, **fields)))

    racing = await asyncio.gather(*[add(client, products[0].id) for _ in range(5)], return_exceptions=True)
    created = [r for r in racing if isinstance(r, pb.ClientProduct)]
    assert len(created) == 1 and created[0].status == S.CLIENT_PRODUCT_STATUS_INTERESTED
    duplicates = [r for r in racing if not isinstance(r, pb.ClientProduct)]
    assert {reason(e) for e in duplicates} == {"CLIENT_PRODUCT_EXISTS"}
    assert metadata(duplicates[0]) == {"client_product_id": created[0].id}
    interest = created[0]
    await add(client, products[1].id, notes="asked twice")
    await add(other, products[0].id)

    async def ids(filter_text):
        return {(c.client_id, c.product_id) for c in await org_a.list_all(
            org_a.interests.ListClientProducts, pb.ListClientProductsRequest, "client_products", page_size=1,
            filter=filter_text)}

    assert await ids(f'client_id = "{client}"') == {(client, products[0].id), (client, products[1].id)}
    assert await ids(f'product_id = "{products[0].id}"') == {(client, products[0].id), (other, products[0].id)}

    async def move(status, **fields):
        return await org_a.interests.ChangeClientProductStatus(pb.ChangeClientProductStatusRequest(
            id=interest.id, status=status, **fields))

    assert (await move(S.CLIENT_PRODUCT_STATUS_SELECTED)).status == S.CLIENT_PRODUCT_STATUS_SELECTED
    for backwards in (S.CLIENT_PRODUCT_STATUS_PROPOSED, S.CLIENT_PRODUCT_STATUS_SELECTED):
        error = await rpc_error(move(backwards))
        assert reason(error) == "INVALID_CLIENT_PRODUCT_TRANSITION"
        assert metadata(error)["current_status"] == "SELECTED"
    booked = await move(S.CLIENT_PRODUCT_STATUS_BOOKED)
    assert await ids("status = BOOKED") == {(client, products[0].id)}
    error = await rpc_error(move(S.CLIENT_PRODUCT_STATUS_BOOKED))
    assert reason(error) == "INVALID_CLIENT_PRODUCT_TRANSITION"
    noted = await org_a.interests.UpdateClientProduct(pb.UpdateClientProductRequest(
        client_product=pb.ClientProduct(id=interest.id, notes="paid", etag=booked.etag), update_mask=mask("notes")))
    assert noted.notes == "paid"
    await org_a.interests.DeleteClientProduct(pb.DeleteClientProductRequest(id=interest.id))
    assert (await rpc_error(org_a.interests.GetClientProduct(
        pb.GetClientProductRequest(id=interest.id)))).code() == NOT_FOUND
    foreign_client, foreign_product = await org_b.client(), (await org_b.product()).id
    error = await rpc_error(add(foreign_client, foreign_product))
    assert error.code() == INVALID and reason(error) in ("CLIENT_NOT_FOUND", "PRODUCT_NOT_FOUND")
    error = await rpc_error(add(client, foreign_product))
    assert reason(error) == "PRODUCT_NOT_FOUND" and "client_product.product_id" in field_violations(error)
    error = await rpc_error(add(foreign_client, products[2].id))
    assert reason(error) == "CLIENT_NOT_FOUND" and "client_product.client_id" in field_violations(error)


# --- isolation -----------------------------------------------------------------------------------

async def test_every_method_treats_another_organizations_ids_as_missing(org_a, org_b, catalog_channel):
    partner = await org_a.partner(name="Isolated partner")
    product = await org_a.product(partner_id=partner.id, name="Isolated product")
    tour = await org_a.tour(product.id, max_participants=5)
    client = await org_a.client()
    booking = (await org_a.book(tour.id, client, participants=2)).booking
    interest = await org_a.interests.CreateClientProduct(pb.CreateClientProductRequest(
        client_product=pb.ClientProduct(client_id=client, product_id=product.id)))
    b_client, b_product = await org_b.client(), await org_b.product()
    b_tour = await org_b.tour(b_product.id)
    b = org_b
    # method -> (call as B with A's ids, expected code, expected reason)
    calls = {
        "GetPartner": (b.partners.GetPartner(pb.GetPartnerRequest(id=partner.id)), NOT_FOUND, "PARTNER_NOT_FOUND"),
        "UpdatePartner": (b.partners.UpdatePartner(pb.UpdatePartnerRequest(
            partner=pb.Partner(id=partner.id, name="Mallory"), update_mask=mask("name"))), NOT_FOUND,
            "PARTNER_NOT_FOUND"),
        "DeletePartner": (b.partners.DeletePartner(pb.DeletePartnerRequest(id=partner.id)), NOT_FOUND,
                          "PARTNER_NOT_FOUND"),
        "GetProduct": (b.products.GetProduct(pb.GetProductRequest(id=product.id)), NOT_FOUND, "PRODUCT_NOT_FOUND"),
        "UpdateProduct": (b.products.UpdateProduct(pb.UpdateProductRequest(
            product=pb.Product(id=product.id, name="Mallory"), update_mask=mask("name"))), NOT_FOUND,
            "PRODUCT_NOT_FOUND"),
        "DeleteProduct": (b.products.DeleteProduct(pb.DeleteProductRequest(id=product.id)), NOT_FOUND,
                          "PRODUCT_NOT_FOUND"),
        "CreateTour": (b.tour(product.id), INVALID, "PRODUCT_NOT_FOUND"),
        "GetTour": (b.get_tour(tour.id), NOT_FOUND, "TOUR_NOT_FOUND"),
        "UpdateTour": (b.tours.UpdateTour(pb.UpdateTourRequest(tour=pb.Tour(id=tour.id, max_participants=1),
                                                               update_mask=mask("max_participants"))),
                       NOT_FOUND, "TOUR_NOT_FOUND"),
        "DeleteTour": (b.tours.DeleteTour(pb.DeleteTourRequest(id=tour.id)), NOT_FOUND, "TOUR_NOT_FOUND"),
        "CancelTour": (b.tours.CancelTour(pb.CancelTourRequest(id=tour.id)), NOT_FOUND, "TOUR_NOT_FOUND"),
        "CompleteTour": (b.tours.CompleteTour(pb.CompleteTourRequest(id=tour.id)), NOT_FOUND, "TOUR_NOT_FOUND"),
        "BookTour": (b.book(tour.id, b_client), NOT_FOUND, "TOUR_NOT_FOUND"),
        "CreateBooking": (b.bookings.CreateBooking(pb.CreateBookingRequest(
            booking=pb.Booking(client_id=b_client, tour_id=tour.id))), INVALID, "TOUR_NOT_FOUND"),
        "GetBooking": (b.bookings.GetBooking(pb.GetBookingRequest(id=booking.id)), NOT_FOUND, "BOOKING_NOT_FOUND"),
        "UpdateBooking": (b.bookings.UpdateBooking(pb.UpdateBookingRequest(
            booking=pb.Booking(id=booking.id, participants=1), update_mask=mask("participants"))), NOT_FOUND,
            "BOOKING_NOT_FOUND"),
        "DeleteBooking": (b.bookings.DeleteBooking(pb.DeleteBookingRequest(id=booking.id)), NOT_FOUND,
                          "BOOKING_NOT_FOUND"),
        "ChangeBookingStatus": (b.bookings.ChangeBookingStatus(pb.ChangeBookingStatusRequest(
            id=booking.id, status=S.CLIENT_TOUR_STATUS_CONFIRMED)), NOT_FOUND, "BOOKING_NOT_FOUND"),
        "CancelBooking": (b.bookings.CancelBooking(pb.CancelBookingRequest(id=booking.id)), NOT_FOUND,
                          "BOOKING_NOT_FOUND"),
        "CreateClientProduct": (b.interests.CreateClientProduct(pb.CreateClientProductRequest(
            client_product=pb.ClientProduct(client_id=b_client, product_id=product.id))), INVALID,
            "PRODUCT_NOT_FOUND"),
        "GetClientProduct": (b.interests.GetClientProduct(pb.GetClientProductRequest(id=interest.id)), NOT_FOUND,
                             "CLIENT_PRODUCT_NOT_FOUND"),
        "UpdateClientProduct": (b.interests.UpdateClientProduct(pb.UpdateClientProductRequest(
            client_product=pb.ClientProduct(id=interest.id, notes="x"), update_mask=mask("notes"))), NOT_FOUND,
            "CLIENT_PRODUCT_NOT_FOUND"),
        "DeleteClientProduct": (b.interests.DeleteClientProduct(pb.DeleteClientProductRequest(id=interest.id)),
                                NOT_FOUND, "CLIENT_PRODUCT_NOT_FOUND"),
        "ChangeClientProductStatus": (b.interests.ChangeClientProductStatus(pb.ChangeClientProductStatusRequest(
            id=interest.id, status=S.CLIENT_PRODUCT_STATUS_BOOKED)), NOT_FOUND, "CLIENT_PRODUCT_NOT_FOUND"),
    }
    # B's product may not name A's partner.
    calls["CreateProduct"] = (b.product(partner_id=partner.id), INVALID, "PARTNER_NOT_FOUND")
    # B books its own tour with A's client, records an interest in its product for A's client.
    extra = {
        "BookTour (A's client)": (b.book(b_tour.id, client), INVALID, "CLIENT_NOT_FOUND"),
        "CreateBooking (A's client)": (b.bookings.CreateBooking(pb.CreateBookingRequest(
            booking=pb.Booking(client_id=client, tour_id=b_tour.id))), INVALID, "CLIENT_NOT_FOUND"),
        "CreateClientProduct (A's client)": (b.interests.CreateClientProduct(pb.CreateClientProductRequest(
            client_product=pb.ClientProduct(client_id=client, product_id=b_product.id))), INVALID,
            "CLIENT_NOT_FOUND"),
    }
    for name, (call, code, why) in [*calls.items(), *extra.items()]:
        error = await rpc_error(call)
        assert (error.code(), reason(error)) == (code, why), name

    # Lists: B sees none of A's rows, whatever it filters on.
    lists = {
        "ListPartners": (b.partners.ListPartners(pb.ListPartnersRequest(filter='search = "Isolated"')), "partners"),
        "ListProducts": (b.products.ListProducts(pb.ListProductsRequest(filter=f'partner_id = "{partner.id}"')),
                         "products"),
        "ListTours": (b.tours.ListTours(pb.ListToursRequest(filter=f'product_id = "{product.id}"')), "tours"),
        "ListBookings": (b.bookings.ListBookings(pb.ListBookingsRequest(filter=f'tour_id = "{tour.id}"')),
                         "bookings"),
        "ListClientProducts": (b.interests.ListClientProducts(pb.ListClientProductsRequest(
            filter=f'client_id = "{client}"')), "client_products"),
    }
    for name, (call, items) in lists.items():
        assert list(getattr(await call, items)) == [], name
    # A page token of A's is refused for B.
    await org_a.tour(product.id)
    first = await org_a.tours.ListTours(pb.ListToursRequest(page_size=1))
    error = await rpc_error(b.tours.ListTours(pb.ListToursRequest(page_size=1, page_token=first.next_page_token)))
    assert error.code() == INVALID

    from soulkg.catalog.v1 import catalog_pb2

    # CreatePartner references nothing: B's partner is B's alone.
    b_partner = await b.partner(name="Isolated partner")
    error = await rpc_error(org_a.partners.GetPartner(pb.GetPartnerRequest(id=b_partner.id)))
    assert error.code() == NOT_FOUND
    every = {m.name for s in catalog_pb2.DESCRIPTOR.services_by_name.values() for m in s.methods}
    covered = set(calls) | set(lists) | {"CreatePartner"}
    assert covered == every, every ^ covered

    # A's rows are untouched.
    assert (await org_a.get_tour(tour.id)).current_participants == 2
    assert (await org_a.bookings.GetBooking(pb.GetBookingRequest(id=booking.id))) == booking
    assert (await org_a.partners.GetPartner(pb.GetPartnerRequest(id=partner.id))) == partner


# --- who may call what ---------------------------------------------------------------------------

async def test_managers_work_with_the_catalog_and_agents_read_and_book(org_a, identity_channel, crm_channel,
                                                                       catalog_channel, keys_dir):
    manager = Catalog.of(catalog_channel, crm_channel, await add_user(identity_channel, org_a.account))
    product = await manager.product()
    tour = await manager.tour(product.id, max_participants=3)
    agent = org_a.as_service(keys_dir, "agents")
    assert [t.id for t in (await agent.tours.ListTours(pb.ListToursRequest(
        filter=f'product_id = "{product.id}" AND free_seats >= 2'))).tours] == [tour.id]
    booked = await agent.bookings.BookTour(pb.BookTourRequest(tour_id=tour.id, client_id=await org_a.client(),
                                                              participants=2))
    assert booked.tour.current_participants == 2
    messaging = org_a.as_service(keys_dir, "messaging")
    assert (await messaging.get_tour(tour.id)).id == tour.id
    for denied in (agent.product(), agent.tours.CancelTour(pb.CancelTourRequest(id=tour.id)),
                   agent.bookings.DeleteBooking(pb.DeleteBookingRequest(id=booked.booking.id)),
                   org_a.as_service(keys_dir, "webhook").get_tour(tour.id)):
        error = await rpc_error(denied)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == "ROLE_REQUIRED"


async def test_no_token_is_unauthenticated(catalog_channel):
    from soulkg.catalog.v1 import catalog_pb2_grpc

    stub = catalog_pb2_grpc.TourServiceStub(catalog_channel)
    error = await rpc_error(stub.GetTour(pb.GetTourRequest(id=str(uuid.uuid4()))))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", ["GetPartner", "GetProduct", "GetTour", "GetBooking", "GetClientProduct"])
async def test_malformed_and_missing_ids(org_a, method):
    stub = {"GetPartner": org_a.partners, "GetProduct": org_a.products, "GetTour": org_a.tours,
            "GetBooking": org_a.bookings, "GetClientProduct": org_a.interests}[method]
    request_type = getattr(pb, f"{method}Request")
    error = await rpc_error(getattr(stub, method)(request_type(id="12345")))
    assert error.code() == INVALID and "id" in field_violations(error)
    error = await rpc_error(getattr(stub, method)(request_type(id=str(uuid.uuid4()))))
    assert error.code() == NOT_FOUND


async def test_cascading_deletes_of_booked_tours_work(org_a, database):
    """Deleting a whole organization (or, as the benchmark does, a product as the owner of the
    data) cascades through tours with held bookings; the seat trigger meets tours already gone."""
    product = await org_a.product()
    tour = await org_a.tour(product.id, max_participants=2)
    await org_a.book(tour.id, participants=2)
    other = await org_a.tour(max_participants=3)
    await org_a.book(other.id)
    with psycopg.connect(database.admin) as conn:
        conn.execute("delete from products where id = %s", (product.id,))
        assert conn.execute("select count(*) from tours where id = %s", (tour.id,)).fetchone() == (0,)
        conn.execute("delete from organizations where id = %s", (org_a.organization_id,))
        assert conn.execute("select count(*) from client_tours where organization_id = %s",
                            (org_a.organization_id,)).fetchone() == (0,)
