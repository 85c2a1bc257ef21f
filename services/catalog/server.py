"""catalog's process: `python -m services.catalog.server` (make run starts it)."""

from __future__ import annotations

from grpc import aio

from libs.server.bootstrap import Resources, ServiceDefinition, main
from services.catalog import service
from services.catalog.policies import POLICIES
from services.catalog.servicer import (
    BookingServicer,
    ClientProductServicer,
    PartnerServicer,
    ProductServicer,
    TourServicer,
)
from soulkg.catalog.v1 import catalog_pb2, catalog_pb2_grpc


def register(server: aio.Server, resources: Resources) -> None:
    db, tokens = resources.db, resources.page_tokens
    catalog_pb2_grpc.add_PartnerServiceServicer_to_server(
        PartnerServicer(service.PartnersService(db, tokens)), server)
    catalog_pb2_grpc.add_ProductServiceServicer_to_server(
        ProductServicer(service.ProductsService(db, tokens)), server)
    catalog_pb2_grpc.add_TourServiceServicer_to_server(TourServicer(service.ToursService(db, tokens)), server)
    catalog_pb2_grpc.add_BookingServiceServicer_to_server(
        BookingServicer(service.BookingsService(db, tokens)), server)
    catalog_pb2_grpc.add_ClientProductServiceServicer_to_server(
        ClientProductServicer(service.ClientProductsService(db, tokens)), server)


DEFINITION = ServiceDefinition(name="catalog", register=register, policies=POLICIES,
                               file_descriptors=[catalog_pb2.DESCRIPTOR])

if __name__ == "__main__":
    main(DEFINITION)
