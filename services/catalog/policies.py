"""Who may call each catalog method (enforced by the interceptor; see libs/authz.py).

Managers and admins of the organization (ANY_USER) work with the whole catalog: partners,
products, tours, bookings and client interests.

Service tokens of `agents` (the AI agents that pick and book tours for clients on WhatsApp)
and `messaging` (which acts for them in a conversation) may read the whole catalog and move
clients along it: book tours, record and move interests and bookings, cancel a booking the
client asked to cancel. They do not edit the catalog itself (partners, products, tours),
and do not rewrite or delete bookings and interests: that stays with people.
"""

from libs.authz import ANY_USER, SERVICES

_AGENTS = SERVICES("agents", "messaging")
_READ_AND_BOOK = ANY_USER | _AGENTS

POLICIES = {
    "soulkg.catalog.v1.PartnerService": {
        "CreatePartner": ANY_USER,
        "GetPartner": _READ_AND_BOOK,
        "ListPartners": _READ_AND_BOOK,
        "UpdatePartner": ANY_USER,
        "DeletePartner": ANY_USER,
    },
    "soulkg.catalog.v1.ProductService": {
        "CreateProduct": ANY_USER,
        "GetProduct": _READ_AND_BOOK,
        "ListProducts": _READ_AND_BOOK,
        "UpdateProduct": ANY_USER,
        "DeleteProduct": ANY_USER,
    },
    "soulkg.catalog.v1.TourService": {
        "CreateTour": ANY_USER,
        "GetTour": _READ_AND_BOOK,
        "ListTours": _READ_AND_BOOK,
        "UpdateTour": ANY_USER,
        "DeleteTour": ANY_USER,
        "CancelTour": ANY_USER,
        "CompleteTour": ANY_USER,
    },
    "soulkg.catalog.v1.BookingService": {
        "BookTour": _READ_AND_BOOK,
        "CreateBooking": _READ_AND_BOOK,
        "GetBooking": _READ_AND_BOOK,
        "ListBookings": _READ_AND_BOOK,
        "UpdateBooking": ANY_USER,
        "DeleteBooking": ANY_USER,
        "ChangeBookingStatus": _READ_AND_BOOK,
        "CancelBooking": _READ_AND_BOOK,
    },
    "soulkg.catalog.v1.ClientProductService": {
        "CreateClientProduct": _READ_AND_BOOK,
        "GetClientProduct": _READ_AND_BOOK,
        "ListClientProducts": _READ_AND_BOOK,
        "UpdateClientProduct": ANY_USER,
        "DeleteClientProduct": ANY_USER,
        "ChangeClientProductStatus": _READ_AND_BOOK,
    },
}
