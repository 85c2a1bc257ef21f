"""catalog's rules, with no I/O: what valid partners, products, tours, bookings and client
interests are; money; the tour and booking state machines; the seat arithmetic.

Seats. A tour's seats are held by its BOOKED and CONFIRMED bookings: `current_participants`
is the sum of their participants and never exceeds `max_participants` (None: no limit). A
tour is FULL exactly when it has a limit and the seats held reach it; only bookings and
capacity changes move it between AVAILABLE and FULL. CANCELLED and COMPLETED are final. The
functions here compute the tour after a change from the tour as it is (the service reads it
under the tour's row lock, so no other change to its seats can interleave).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from libs.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from libs.validation import json_object_text, normalize_email, normalize_phone, optional_text

# --- money ---------------------------------------------------------------------------------------

# ISO 4217 active currency codes (list one) -> decimal places of their minor unit. Funds,
# precious metals and testing codes (XAU, XDR, XTS, ...) are not prices and are left out.
ISO_4217: dict[str, int] = {
    **dict.fromkeys(
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD "
        "CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS "
        "GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL "
        "MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK "
        "PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS "
        "TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG".split(), 2),
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}
MONEY_PLACES = 2  # numeric(12,2): cents are the finest amount stored
MAX_AMOUNT = Decimal("9999999999.99")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Price:
    amount: Decimal
    currency: str  # ISO 4217


def check_currency(code: str, field: str) -> str:
    if code not in ISO_4217:
        raise InvalidArgument.field(field, "must be an active ISO 4217 currency code in upper case, such as USD")
    return code


def check_price(price: Price, field: str) -> Price:
    """A price as stored: not negative, below 10^10, no finer than cents nor than its currency."""
    currency = check_currency(price.currency, f"{field}.currency_code")
    amount = price.amount
    if not amount.is_finite() or amount < 0:
        raise InvalidArgument.field(field, "must not be negative")
    if amount > MAX_AMOUNT:
        raise InvalidArgument.field(field, f"must be at most {MAX_AMOUNT}")
    places = min(MONEY_PLACES, ISO_4217[currency])
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise InvalidArgument.field(field, f"has more than {places} decimal places, the most {currency} allows here")
    return Price(amount.quantize(CENT), currency)


# --- validation ----------------------------------------------------------------------------------

Rule = Callable[[Any, str], Any]  # (raw value, field path) -> normalized value, or InvalidArgument


def validate(raw: Mapping[str, Any], rules: Mapping[str, Rule], prefix: str, what: str,
             across: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None) -> dict[str, Any]:
    """Each raw field normalized by its rule, then `across` (rules between fields) on what is
    valid; every violation of the request in one error."""
    values, violations = {}, []
    for name, value in raw.items():
        field = f"{prefix}.{name}" if prefix else name
        try:
            values[name] = rules[name](value, field)
        except InvalidArgument as exc:
            violations.extend(exc.violations or [(field, exc.message)])
    if across is not None:
        violations.extend(across(values))
    if violations:
        raise InvalidArgument(f"invalid {what}", violations)
    return values


def _text(max_length: int, *, required: bool = False) -> Rule:
    def rule(value, field):
        text = optional_text(value, field, max_length)
        if required and text is None:
            raise InvalidArgument.field(field, "is required")
        return text
    return rule


def _optional(check: Callable[[str, str], Any]) -> Rule:
    """None or blank: None; otherwise `check(value, field)`."""
    def rule(value, field):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return check(value, field)
    return rule


def _uuid(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument.field(field, "must be a UUID") from None


def _required(check: Rule) -> Rule:
    def rule(value, field):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise InvalidArgument.field(field, "is required")
        return check(value, field)
    return rule


def _integer(low: int, high: int) -> Rule:
    def rule(value, field):
        if not low <= value <= high:
            raise InvalidArgument.field(field, f"must be from {low} to {high}")
        return value
    return rule


def _default(value_when_unset: Any) -> Rule:
    return lambda value, field: value_when_unset if value is None else value


def _passthrough(value, field):
    return value


def _price(value: Price, field: str) -> Price:
    return check_price(value, field)


TELEGRAM = re.compile(r"^@?([A-Za-z][A-Za-z0-9_]{3,30}[A-Za-z0-9])$")


def telegram_handle(value: str, field: str) -> str:
    match = TELEGRAM.match(value.strip())
    if not match:
        raise InvalidArgument.field(field, "must be a Telegram username: 5 to 32 letters, digits or underscores, "
                                           "starting with a letter, such as @soulkg_tours")
    return "@" + match.group(1)


RATING = re.compile(r"^[0-9](\.[0-9]{1,2})?$")


def rating(value: str, field: str) -> Decimal:
    text = value.strip()
    if not RATING.match(text) or Decimal(text) > 5:
        raise InvalidArgument.field(field, "must be a decimal from 0 to 5 with at most two decimal places")
    return Decimal(text).quantize(CENT)


def _string_list(max_items: int, max_length: int) -> Rule:
    def rule(value, field):
        items = [item.strip() for item in value or ()]
        if len(items) > max_items:
            raise InvalidArgument.field(field, f"must have at most {max_items} items")
        for index, item in enumerate(items):
            if not item or len(item) > max_length:
                raise InvalidArgument.field(f"{field}[{index}]", f"must be 1 to {max_length} characters")
        return tuple(items)
    return rule


def _json_object(value, field):
    return None if value is None else json_object_text(value, field)


MAX_CAPACITY = 100_000
MAX_PARTICIPANTS = 1_000
PARTICIPANTS_RULE = _integer(1, MAX_PARTICIPANTS)

PARTNER_RULES: dict[str, Rule] = {
    "name": _text(200, required=True),
    "contact_phone": _optional(normalize_phone),
    "contact_email": _optional(normalize_email),
    "contact_whatsapp": _optional(normalize_phone),
    "contact_telegram": _optional(telegram_handle),
    "conditions": _text(2000),
    "rating": _optional(rating),
    "is_available": _default(True),
}
PRODUCT_RULES: dict[str, Rule] = {
    "name": _text(200, required=True),
    "description": _text(5000),
    "duration_days": _optional(_integer(1, 365)),
    "type": _required(_passthrough),  # a ProductType label, checked on the wire
    "base_price": _required(_price),
    "inclusions": _string_list(100, 200),
    "exclusions": _string_list(100, 200),
    "options": _json_object,
    "is_active": _default(True),
    "partner_id": _optional(_uuid),
}
TOUR_RULES: dict[str, Rule] = {
    "product_id": _required(_uuid),
    "start_time": _required(_passthrough),
    "end_time": _required(_passthrough),
    "max_participants": _optional(_integer(1, MAX_CAPACITY)),
    "price": _optional(_price),
    "notes": _text(5000),
}
BOOKING_RULES: dict[str, Rule] = {
    "client_id": _required(_uuid),
    "tour_id": _required(_uuid),
    "participants": _optional(PARTICIPANTS_RULE),
    "notes": _text(5000),
}
CLIENT_PRODUCT_RULES: dict[str, Rule] = {
    "client_id": _required(_uuid),
    "product_id": _required(_uuid),
    "notes": _text(5000),
}

# Fields an update mask may name (the others are set by methods or immutable).
PARTNER_UPDATABLE = tuple(PARTNER_RULES)
PRODUCT_UPDATABLE = tuple(PRODUCT_RULES)
TOUR_UPDATABLE = ("start_time", "end_time", "max_participants", "price", "notes")
BOOKING_UPDATABLE = ("participants", "notes")
CLIENT_PRODUCT_UPDATABLE = ("notes",)


def partner_values(raw: Mapping[str, Any], prefix: str = "partner") -> dict[str, Any]:
    return validate(raw, PARTNER_RULES, prefix, "partner")


def product_values(raw: Mapping[str, Any], prefix: str = "product") -> dict[str, Any]:
    return validate(raw, PRODUCT_RULES, prefix, "product")


def tour_values(raw: Mapping[str, Any], prefix: str = "tour") -> dict[str, Any]:
    def dates(values: dict[str, Any]) -> list[tuple[str, str]]:
        start, end = values.get("start_time"), values.get("end_time")
        if start is not None and end is not None and end < start:
            return [(f"{prefix}.end_time", "must not be before start_time")]
        return []
    return validate(raw, TOUR_RULES, prefix, "tour", dates)


def booking_values(raw: Mapping[str, Any], prefix: str = "booking") -> dict[str, Any]:
    return validate(raw, BOOKING_RULES, prefix, "booking")


def client_product_values(raw: Mapping[str, Any], prefix: str = "client_product") -> dict[str, Any]:
    return validate(raw, CLIENT_PRODUCT_RULES, prefix, "client product")


def book_tour_values(tour_id: str, client_id: str, participants: int, notes: str | None) -> dict[str, Any]:
    return validate({"tour_id": tour_id, "client_id": client_id, "participants": participants, "notes": notes},
                    {**BOOKING_RULES, "participants": _required(PARTICIPANTS_RULE)}, "", "booking")


# --- entities ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Partner:
    id: UUID
    name: str
    contact_phone: str | None
    contact_email: str | None
    contact_whatsapp: str | None
    contact_telegram: str | None
    conditions: str | None
    rating: Decimal | None
    is_available: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Product:
    id: UUID
    name: str
    description: str | None
    duration_days: int | None
    type: str
    base_price: Price
    inclusions: tuple[str, ...]
    exclusions: tuple[str, ...]
    options: Mapping[str, Any] | None
    is_active: bool
    partner_id: UUID | None
    created_at: datetime
    updated_at: datetime


TOUR_OPEN = frozenset({"AVAILABLE", "FULL"})
TOUR_STATUSES = frozenset({"AVAILABLE", "FULL", "CANCELLED", "COMPLETED"})


@dataclass(frozen=True)
class Tour:
    id: UUID
    product_id: UUID
    start_time: datetime
    end_time: datetime
    max_participants: int | None  # None: no limit
    current_participants: int  # seats held by BOOKED and CONFIRMED bookings
    price: Price | None  # None: the product's base price applies
    status: str
    notes: str | None
    created_at: datetime
    updated_at: datetime
    product_price: Price  # the product's base price

    @property
    def effective_price(self) -> Price:
        return self.price if self.price is not None else self.product_price

    @property
    def is_open(self) -> bool:
        return self.status in TOUR_OPEN

    @property
    def free_seats(self) -> int | None:
        """Seats still bookable: None for an open tour with no limit, 0 once final."""
        if not self.is_open:
            return 0
        if self.max_participants is None:
            return None
        return self.max_participants - self.current_participants


BOOKING_FLOW = ("INTERESTED", "PROPOSED", "SELECTED", "BOOKED", "CONFIRMED")
BOOKING_STATUSES = frozenset({*BOOKING_FLOW, "CANCELLED"})
HOLDS_SEATS = frozenset({"BOOKED", "CONFIRMED"})


def seats_of(status: str, participants: int | None) -> int:
    return (participants or 0) if status in HOLDS_SEATS else 0


@dataclass(frozen=True)
class Booking:
    id: UUID
    client_id: UUID
    tour_id: UUID
    status: str
    participants: int | None
    notes: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def seats(self) -> int:
        return seats_of(self.status, self.participants)


INTEREST_FLOW = ("INTERESTED", "PROPOSED", "SELECTED", "BOOKED")
INTEREST_STATUSES = frozenset(INTEREST_FLOW)
PRODUCT_TYPES = frozenset({"TOUR", "SERVICE", "PACKAGE"})


@dataclass(frozen=True)
class ClientProduct:
    id: UUID
    client_id: UUID
    product_id: UUID
    status: str
    notes: str | None
    created_at: datetime
    updated_at: datetime


# --- tours ---------------------------------------------------------------------------------------

def availability(capacity: int | None, held: int) -> str:
    """AVAILABLE or FULL for an open tour with `held` seats booked."""
    return "FULL" if capacity is not None and held >= capacity else "AVAILABLE"


def require_open(tour: Tour) -> None:
    """Bookings and edits need a tour that is not final: TOUR_CANCELLED / TOUR_COMPLETED."""
    if tour.status == "CANCELLED":
        raise FailedPrecondition("the tour is cancelled", reason="TOUR_CANCELLED",
                                 metadata={"current_status": tour.status})
    if not tour.is_open:
        raise FailedPrecondition("the tour is completed", reason="TOUR_COMPLETED",
                                 metadata={"current_status": tour.status})


def require_bookable(tour: Tour, now: datetime) -> None:
    """New seats need an open tour that has not ended."""
    require_open(tour)
    if tour.end_time < now:
        raise FailedPrecondition("the tour has ended", reason="TOUR_ENDED",
                                 metadata={"end_time": tour.end_time.isoformat()})


def check_new_tour(product: Product) -> None:
    if not product.is_active:
        raise FailedPrecondition("the product is archived (inactive): it gets no new tours",
                                 reason="PRODUCT_INACTIVE")


def check_tour_transition(tour: Tour, target: str, now: datetime) -> None:
    """CancelTour and CompleteTour: from AVAILABLE or FULL only; completion once ended."""
    if not tour.is_open:
        raise FailedPrecondition(f"a {tour.status.lower()} tour cannot become {target.lower()}",
                                 reason="INVALID_TOUR_TRANSITION",
                                 metadata={"current_status": tour.status, "requested_status": target})
    if target == "COMPLETED" and tour.end_time > now:
        raise FailedPrecondition("the tour has not ended yet", reason="TOUR_NOT_ENDED",
                                 metadata={"end_time": tour.end_time.isoformat()})


def tour_update(tour: Tour, changes: Mapping[str, Any], prefix: str = "tour") -> dict[str, Any]:
    """The validated changes of UpdateTour applied to `tour` (read under its row lock), plus
    its new `status` when the capacity changes."""
    if set(changes) - {"notes"}:
        require_open(tour)
    start = changes.get("start_time", tour.start_time)
    end = changes.get("end_time", tour.end_time)
    if end < start:
        raise InvalidArgument.field(f"{prefix}.end_time", "must not be before start_time")
    result = dict(changes)
    if "max_participants" in changes:
        capacity = changes["max_participants"]
        if capacity is not None and capacity < tour.current_participants:
            raise FailedPrecondition(
                f"{tour.current_participants} seats are booked: the capacity cannot be lower",
                reason="CAPACITY_BELOW_BOOKED",
                metadata={"booked_seats": str(tour.current_participants), "requested_capacity": str(capacity)})
        result["status"] = availability(capacity, tour.current_participants)
    return result


def check_tour_deletable(tour: Tour) -> None:
    if tour.current_participants > 0:
        raise FailedPrecondition("the tour holds booked seats: cancel it instead", reason="TOUR_HAS_BOOKINGS",
                                 metadata={"booked_seats": str(tour.current_participants)})


def check_product_deletable(held_seats_per_tour: list[int]) -> None:
    holding = sum(1 for seats in held_seats_per_tour if seats > 0)
    if holding:
        raise FailedPrecondition("tours of the product hold booked seats: archive it (is_active = false) instead",
                                 reason="PRODUCT_HAS_BOOKINGS", metadata={"tours": str(holding)})


def check_partner_deletable(products: int) -> None:
    if products:
        raise FailedPrecondition("products reference the partner", reason="PARTNER_IN_USE",
                                 metadata={"products": str(products)})


# --- seats and bookings --------------------------------------------------------------------------

@dataclass(frozen=True)
class Seats:
    """A tour's seats after a change: what to write back to its row."""

    held: int
    status: str


def reseat(tour: Tour, before: int, after: int) -> Seats:
    """The tour's seats when one booking's held seats go from `before` to `after`. More seats
    than the tour has free: TOUR_FULL, with the free seats in the details."""
    held = tour.current_participants - before + after
    if after > before and tour.max_participants is not None and held > tour.max_participants:
        free = tour.max_participants - tour.current_participants
        raise FailedPrecondition(
            f"not enough free seats: {after - before} requested, {free} free", reason="TOUR_FULL",
            metadata={"free_seats": str(free), "requested_seats": str(after - before),
                      "current_status": tour.status})
    return Seats(held, availability(tour.max_participants, held) if tour.is_open else tour.status)


@dataclass(frozen=True)
class BookingChange:
    status: str
    participants: int | None
    tour: Seats


def _require_seats_allowed(tour: Tour, before: int, after: int, now: datetime) -> None:
    if after > before:
        require_bookable(tour, now)
    else:
        require_open(tour)


def book(tour: Tour, existing: Booking | None, participants: int, now: datetime) -> BookingChange:
    """BookTour: the client's booking on the tour becomes BOOKED with `participants` seats.
    An existing booking that holds no seats (interest, proposal, selection, a cancelled
    booking) is reused; one that holds seats is BOOKING_EXISTS."""
    require_bookable(tour, now)
    if existing is not None and existing.status in HOLDS_SEATS:
        raise AlreadyExists("the client already has a booking on this tour", reason="BOOKING_EXISTS",
                            metadata={"booking_id": str(existing.id), "current_status": existing.status})
    return BookingChange("BOOKED", participants, reseat(tour, 0, participants))


def booking_move_allowed(current: str, target: str) -> bool:
    if current == "CANCELLED":
        return False
    if target == "CANCELLED":
        return True
    return BOOKING_FLOW.index(target) > BOOKING_FLOW.index(current)


def change_booking_status(tour: Tour, booking: Booking, target: str, participants: int | None,
                          now: datetime) -> BookingChange:
    """ChangeBookingStatus / CancelBooking: forward along the flow (skipping allowed), or to
    CANCELLED from anything but CANCELLED."""
    if not booking_move_allowed(booking.status, target):
        raise FailedPrecondition(f"a {booking.status.lower()} booking cannot become {target.lower()}",
                                 reason="INVALID_BOOKING_TRANSITION",
                                 metadata={"current_status": booking.status, "requested_status": target})
    count = participants if participants is not None else booking.participants
    if target in HOLDS_SEATS and count is None:
        raise InvalidArgument.field("participants", f"is required for a {target} booking")
    after = seats_of(target, count)
    _require_seats_allowed(tour, booking.seats, after, now)
    return BookingChange(target, count, reseat(tour, booking.seats, after))


def change_participants(tour: Tour, booking: Booking, participants: int | None, now: datetime,
                        field: str = "booking.participants") -> BookingChange:
    """UpdateBooking of `participants`: seats of a booking that holds them are re-checked."""
    if booking.status == "CANCELLED":
        raise FailedPrecondition("the booking is cancelled", reason="BOOKING_CANCELLED",
                                 metadata={"current_status": booking.status})
    if booking.status not in HOLDS_SEATS:
        return BookingChange(booking.status, participants, Seats(tour.current_participants, tour.status))
    if participants is None:
        raise InvalidArgument.field(field, f"is required for a {booking.status} booking")
    _require_seats_allowed(tour, booking.seats, participants, now)
    return BookingChange(booking.status, participants, reseat(tour, booking.seats, participants))


def check_new_booking(tour: Tour, existing: Booking | None) -> None:
    """CreateBooking (an interest): the tour is not final, the client has no booking on it."""
    require_open(tour)
    if existing is not None:
        raise AlreadyExists("the client already has a booking on this tour", reason="BOOKING_EXISTS",
                            metadata={"booking_id": str(existing.id), "current_status": existing.status})


def check_booking_deletable(booking: Booking) -> None:
    if booking.status in HOLDS_SEATS:
        raise FailedPrecondition("the booking holds seats: cancel it first", reason="BOOKING_HOLDS_SEATS",
                                 metadata={"current_status": booking.status})


# --- client interests ----------------------------------------------------------------------------

def check_interest_move(current: str, target: str) -> None:
    """Forward along INTERESTED -> PROPOSED -> SELECTED -> BOOKED, skipping allowed."""
    if INTEREST_FLOW.index(target) <= INTEREST_FLOW.index(current):
        raise FailedPrecondition(f"a {current.lower()} interest cannot become {target.lower()}",
                                 reason="INVALID_CLIENT_PRODUCT_TRANSITION",
                                 metadata={"current_status": current, "requested_status": target})


def missing_reference(field: str, reason: str) -> InvalidArgument:
    """A request names a client, product, partner or tour that its organization does not have
    (another organization's look the same): `reason` is `<RESOURCE>_NOT_FOUND`."""
    what = reason.removesuffix("_NOT_FOUND").lower().replace("_", " ")
    return InvalidArgument(f"invalid {field}: no such {what} in this organization",
                           [(field, f"no such {what} in this organization")], reason=reason)


def parse_decimal(value: str) -> Decimal:
    """A decimal from text (filters): finite, or ValueError."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError("must be a decimal number such as 100 or 99.50") from None
    if not number.is_finite():
        raise ValueError("must be a finite decimal number")
    return number
