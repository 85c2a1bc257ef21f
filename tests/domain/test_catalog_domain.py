"""catalog's rules with no database: money, validation, the tour and booking state machines
and the seat arithmetic (also as a property over random sequences of changes)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from services.catalog import domain
from services.catalog.domain import Booking, Price, Tour

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def tour(capacity: int | None = 10, held: int = 0, status: str | None = None, ends_in_days: int = 10) -> Tour:
    return Tour(uuid.uuid4(), uuid.uuid4(), NOW + timedelta(days=ends_in_days - 3), NOW + timedelta(days=ends_in_days),
                capacity, held, None, status or domain.availability(capacity, held), None, NOW, NOW,
                Price(Decimal("450.00"), "USD"))


def booking(status: str = "INTERESTED", participants: int | None = None) -> Booking:
    return Booking(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), status, participants, None, NOW, NOW)


def failure(call, *args) -> FailedPrecondition:
    with pytest.raises(FailedPrecondition) as caught:
        call(*args)
    return caught.value


# --- money ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "currency", "stored"), [
    ("1234.56", "USD", "1234.56"), ("0.1", "EUR", "0.10"), ("9999999999.99", "USD", "9999999999.99"),
    ("1500", "JPY", "1500.00"), ("12.5", "KWD", "12.50"), ("0", "KGS", "0.00"),
])
def test_prices_are_kept_exact_to_the_cent(amount, currency, stored):
    price = domain.check_price(Price(Decimal(amount), currency), "price")
    assert price == Price(Decimal(stored), currency) and str(price.amount) == stored


@pytest.mark.parametrize(("amount", "currency", "field"), [
    ("1", "usd", "price.currency_code"), ("1", "XTS", "price.currency_code"), ("1", "", "price.currency_code"),
    ("-0.01", "USD", "price"), ("10000000000", "USD", "price"), ("0.001", "USD", "price"),
    ("1.5", "JPY", "price"), ("1.005", "KWD", "price"), ("NaN", "USD", "price"),
])
def test_bad_prices(amount, currency, field):
    with pytest.raises(InvalidArgument) as caught:
        domain.check_price(Price(Decimal(amount), currency), "price")
    assert caught.value.violations[0][0] == field


@given(cents=st.integers(min_value=0, max_value=999_999_999_999))
def test_money_on_the_wire_round_trips(cents):
    from services.catalog.servicer import money, price_of

    price = Price(Decimal(cents).scaleb(-2), "USD")
    assert domain.check_price(price_of(money(price), "price"), "price") == price


# --- validation ----------------------------------------------------------------------------------

def test_every_violation_of_a_request_is_reported_at_once():
    with pytest.raises(InvalidArgument) as caught:
        domain.partner_values({"name": "", "contact_phone": "12", "contact_telegram": "@a", "rating": "7"})
    assert [field for field, _ in caught.value.violations] == [
        "partner.name", "partner.contact_phone", "partner.contact_telegram", "partner.rating"]


def test_partner_fields_are_normalised():
    values = domain.partner_values({"name": " Camp ", "contact_telegram": "Camp_Bot", "rating": "4.5",
                                    "contact_email": "", "is_available": None})
    assert values == {"name": "Camp", "contact_telegram": "@Camp_Bot", "rating": Decimal("4.50"),
                      "contact_email": None, "is_available": True}


@pytest.mark.parametrize("handle", ["@abcd", "1abcde", "abcde_", "a" * 33, "ab cde", "абвгд"])
def test_bad_telegram_handles(handle):
    with pytest.raises(InvalidArgument):
        domain.telegram_handle(handle, "contact_telegram")


def test_tour_dates_are_checked_with_the_other_fields():
    with pytest.raises(InvalidArgument) as caught:
        domain.tour_values({"product_id": "x", "start_time": NOW, "end_time": NOW - timedelta(hours=1),
                            "max_participants": 0})
    assert {field for field, _ in caught.value.violations} == {"tour.product_id", "tour.end_time",
                                                                "tour.max_participants"}


# --- tours ---------------------------------------------------------------------------------------

def test_full_exactly_when_a_limit_is_reached():
    assert domain.availability(None, 10**6) == "AVAILABLE"
    assert [domain.availability(3, held) for held in range(4)] == ["AVAILABLE"] * 3 + ["FULL"]
    assert tour(None).free_seats is None and tour(5, 2).free_seats == 3 and tour(5, 2, "CANCELLED").free_seats == 0


@pytest.mark.parametrize("status", ["CANCELLED", "COMPLETED"])
def test_final_tours_stay_final(status):
    final = tour(status=status, ends_in_days=-1)
    for target in ("CANCELLED", "COMPLETED"):
        error = failure(domain.check_tour_transition, final, target, NOW)
        assert error.reason == "INVALID_TOUR_TRANSITION"
        assert error.metadata == {"current_status": status, "requested_status": target}
    assert failure(domain.book, final, None, 1, NOW).reason == f"TOUR_{status}"
    assert failure(domain.tour_update, final, {"max_participants": 20}).reason == f"TOUR_{status}"
    assert domain.tour_update(final, {"notes": "kept"}) == {"notes": "kept"}


def test_completion_waits_for_the_end():
    assert failure(domain.check_tour_transition, tour(ends_in_days=1), "COMPLETED", NOW).reason == "TOUR_NOT_ENDED"
    domain.check_tour_transition(tour(ends_in_days=0), "COMPLETED", NOW)
    domain.check_tour_transition(tour(ends_in_days=5), "CANCELLED", NOW)


def test_capacity_edits():
    booked = tour(capacity=10, held=6)
    assert domain.tour_update(booked, {"max_participants": 6})["status"] == "FULL"
    assert domain.tour_update(tour(6, 6), {"max_participants": None})["status"] == "AVAILABLE"
    error = failure(domain.tour_update, booked, {"max_participants": 5})
    assert (error.reason, error.metadata) == ("CAPACITY_BELOW_BOOKED",
                                              {"booked_seats": "6", "requested_capacity": "5"})
    with pytest.raises(InvalidArgument):
        domain.tour_update(booked, {"end_time": booked.start_time - timedelta(days=1)})


# --- bookings ------------------------------------------------------------------------------------

def test_book_takes_seats_and_reports_the_free_ones():
    change = domain.book(tour(5, 3), None, 2, NOW)
    assert change == domain.BookingChange("BOOKED", 2, domain.Seats(5, "FULL"))
    error = failure(domain.book, tour(5, 3), None, 3, NOW)
    assert (error.reason, error.metadata) == ("TOUR_FULL", {"free_seats": "2", "requested_seats": "3",
                                                            "current_status": "AVAILABLE"})
    assert domain.book(tour(None, 500), None, 1000, NOW).tour == domain.Seats(1500, "AVAILABLE")
    assert failure(domain.book, tour(ends_in_days=-1), None, 1, NOW).reason == "TOUR_ENDED"


@pytest.mark.parametrize("status", ["INTERESTED", "PROPOSED", "SELECTED", "CANCELLED"])
def test_book_reuses_a_booking_that_holds_no_seats(status):
    change = domain.book(tour(4, 1), booking(status, 9), 3, NOW)
    assert (change.status, change.participants, change.tour) == ("BOOKED", 3, domain.Seats(4, "FULL"))


@pytest.mark.parametrize("status", ["BOOKED", "CONFIRMED"])
def test_a_second_booking_that_holds_seats_already_exists(status):
    existing = booking(status, 2)
    with pytest.raises(AlreadyExists) as caught:
        domain.book(tour(10, 2), existing, 1, NOW)
    assert caught.value.reason == "BOOKING_EXISTS"
    assert caught.value.metadata == {"booking_id": str(existing.id), "current_status": status}


LEGAL_MOVES = {
    "INTERESTED": {"PROPOSED", "SELECTED", "BOOKED", "CONFIRMED", "CANCELLED"},
    "PROPOSED": {"SELECTED", "BOOKED", "CONFIRMED", "CANCELLED"},
    "SELECTED": {"BOOKED", "CONFIRMED", "CANCELLED"},
    "BOOKED": {"CONFIRMED", "CANCELLED"},
    "CONFIRMED": {"CANCELLED"},
    "CANCELLED": set(),
}


@pytest.mark.parametrize("current", sorted(LEGAL_MOVES))
def test_booking_moves(current):
    for target in sorted(domain.BOOKING_STATUSES):
        assert domain.booking_move_allowed(current, target) == (target in LEGAL_MOVES[current]), (current, target)
        held = 2 if current in domain.HOLDS_SEATS else 0
        subject = booking(current, 2)
        if target in LEGAL_MOVES[current]:
            change = domain.change_booking_status(tour(10, held), subject, target, None, NOW)
            assert change.tour.held == (2 if target in domain.HOLDS_SEATS else 0)
        else:
            error = failure(domain.change_booking_status, tour(10, held), subject, target, None, NOW)
            assert error.metadata == {"current_status": current, "requested_status": target}


def test_moving_into_seats_needs_participants_and_free_seats():
    with pytest.raises(InvalidArgument):
        domain.change_booking_status(tour(), booking("SELECTED"), "BOOKED", None, NOW)
    assert failure(domain.change_booking_status, tour(3, 2), booking("SELECTED", 2), "BOOKED", None,
                   NOW).reason == "TOUR_FULL"
    cancelled = domain.change_booking_status(tour(3, 3), booking("CONFIRMED", 2), "CANCELLED", None, NOW)
    assert cancelled.tour == domain.Seats(1, "AVAILABLE")
    ended = tour(3, 2, ends_in_days=-1)
    assert domain.change_booking_status(ended, booking("BOOKED", 2), "CONFIRMED", None, NOW).tour.held == 2
    assert failure(domain.change_booking_status, ended, booking("SELECTED", 1), "BOOKED", None,
                   NOW).reason == "TOUR_ENDED"


def test_participants_of_a_held_booking_are_rechecked():
    assert domain.change_participants(tour(5, 2), booking("BOOKED", 2), 5, NOW).tour == domain.Seats(5, "FULL")
    assert domain.change_participants(tour(5, 5), booking("BOOKED", 5), 1, NOW).tour == domain.Seats(1, "AVAILABLE")
    assert failure(domain.change_participants, tour(5, 2), booking("BOOKED", 2), 6, NOW).reason == "TOUR_FULL"
    assert failure(domain.change_participants, tour(), booking("CANCELLED", 2), 1, NOW).reason == "BOOKING_CANCELLED"
    assert domain.change_participants(tour(5, 5), booking("INTERESTED", 2), 50, NOW).tour == domain.Seats(5, "FULL")


def test_interest_moves_forward_only():
    flow = domain.INTEREST_FLOW
    for i, current in enumerate(flow):
        for j, target in enumerate(flow):
            if j > i:
                domain.check_interest_move(current, target)
            else:
                assert failure(domain.check_interest_move, current, target).reason == \
                    "INVALID_CLIENT_PRODUCT_TRANSITION"


# --- the seat invariant as a property ------------------------------------------------------------

OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("book"), st.integers(0, 5), st.integers(1, 4)),
    st.tuples(st.just("move"), st.integers(0, 5), st.sampled_from(sorted(domain.BOOKING_STATUSES))),
    st.tuples(st.just("participants"), st.integers(0, 5), st.integers(1, 4)),
    st.tuples(st.just("capacity"), st.none() | st.integers(1, 12)),
), max_size=40)


@settings(max_examples=300, deadline=None)
@given(capacity=st.none() | st.integers(1, 12), operations=OPERATIONS)
def test_seats_held_always_equal_the_bookings_and_never_exceed_capacity(capacity, operations):
    """Applied one after another (as the tour's row lock makes them), any sequence of
    bookings, moves, participant and capacity changes keeps the invariant; refused ones
    change nothing."""
    current = tour(capacity)
    bookings: dict[int, Booking] = {}
    for operation in operations:
        kind, *args = operation
        try:
            if kind == "book":
                client, count = args
                change = domain.book(current, bookings.get(client), count, NOW)
            elif kind == "move" and args[0] in bookings:
                client, target = args
                change = domain.change_booking_status(current, bookings[client], target, None, NOW)
            elif kind == "participants" and args[0] in bookings:
                client, count = args
                change = domain.change_participants(current, bookings[client], count, NOW)
            elif kind == "capacity":
                status = domain.tour_update(current, {"max_participants": args[0]})["status"]
                current = dataclasses.replace(current, max_participants=args[0], status=status)
                continue
            else:
                continue
        except (FailedPrecondition, AlreadyExists, InvalidArgument):
            continue
        client = args[0]
        previous = bookings.get(client) or booking()
        bookings[client] = dataclasses.replace(previous, status=change.status, participants=change.participants)
        current = dataclasses.replace(current, current_participants=change.tour.held, status=change.tour.status)
        held = sum(b.seats for b in bookings.values())
        assert current.current_participants == held
        assert current.max_participants is None or held <= current.max_participants
        assert current.status == domain.availability(current.max_participants, held)
