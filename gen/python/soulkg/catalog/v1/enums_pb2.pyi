from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class ProductType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRODUCT_TYPE_UNSPECIFIED: _ClassVar[ProductType]
    PRODUCT_TYPE_TOUR: _ClassVar[ProductType]
    PRODUCT_TYPE_SERVICE: _ClassVar[ProductType]
    PRODUCT_TYPE_PACKAGE: _ClassVar[ProductType]

class ClientProductStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLIENT_PRODUCT_STATUS_UNSPECIFIED: _ClassVar[ClientProductStatus]
    CLIENT_PRODUCT_STATUS_INTERESTED: _ClassVar[ClientProductStatus]
    CLIENT_PRODUCT_STATUS_PROPOSED: _ClassVar[ClientProductStatus]
    CLIENT_PRODUCT_STATUS_SELECTED: _ClassVar[ClientProductStatus]
    CLIENT_PRODUCT_STATUS_BOOKED: _ClassVar[ClientProductStatus]

class TourStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOUR_STATUS_UNSPECIFIED: _ClassVar[TourStatus]
    TOUR_STATUS_AVAILABLE: _ClassVar[TourStatus]
    TOUR_STATUS_FULL: _ClassVar[TourStatus]
    TOUR_STATUS_CANCELLED: _ClassVar[TourStatus]
    TOUR_STATUS_COMPLETED: _ClassVar[TourStatus]

class ClientTourStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLIENT_TOUR_STATUS_UNSPECIFIED: _ClassVar[ClientTourStatus]
    CLIENT_TOUR_STATUS_INTERESTED: _ClassVar[ClientTourStatus]
    CLIENT_TOUR_STATUS_PROPOSED: _ClassVar[ClientTourStatus]
    CLIENT_TOUR_STATUS_SELECTED: _ClassVar[ClientTourStatus]
    CLIENT_TOUR_STATUS_BOOKED: _ClassVar[ClientTourStatus]
    CLIENT_TOUR_STATUS_CONFIRMED: _ClassVar[ClientTourStatus]
    CLIENT_TOUR_STATUS_CANCELLED: _ClassVar[ClientTourStatus]
PRODUCT_TYPE_UNSPECIFIED: ProductType
PRODUCT_TYPE_TOUR: ProductType
PRODUCT_TYPE_SERVICE: ProductType
PRODUCT_TYPE_PACKAGE: ProductType
CLIENT_PRODUCT_STATUS_UNSPECIFIED: ClientProductStatus
CLIENT_PRODUCT_STATUS_INTERESTED: ClientProductStatus
CLIENT_PRODUCT_STATUS_PROPOSED: ClientProductStatus
CLIENT_PRODUCT_STATUS_SELECTED: ClientProductStatus
CLIENT_PRODUCT_STATUS_BOOKED: ClientProductStatus
TOUR_STATUS_UNSPECIFIED: TourStatus
TOUR_STATUS_AVAILABLE: TourStatus
TOUR_STATUS_FULL: TourStatus
TOUR_STATUS_CANCELLED: TourStatus
TOUR_STATUS_COMPLETED: TourStatus
CLIENT_TOUR_STATUS_UNSPECIFIED: ClientTourStatus
CLIENT_TOUR_STATUS_INTERESTED: ClientTourStatus
CLIENT_TOUR_STATUS_PROPOSED: ClientTourStatus
CLIENT_TOUR_STATUS_SELECTED: ClientTourStatus
CLIENT_TOUR_STATUS_BOOKED: ClientTourStatus
CLIENT_TOUR_STATUS_CONFIRMED: ClientTourStatus
CLIENT_TOUR_STATUS_CANCELLED: ClientTourStatus
