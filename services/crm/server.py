"""crm's process: `python -m services.crm.server` (make run starts it)."""

from __future__ import annotations

from grpc import aio

from libs.pagination import PageTokenCodec
from libs.server.bootstrap import Resources, ServiceDefinition, main, services_in
from services.crm.service import ClientsService
from services.crm.servicer import ClientServicer
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc


def register(server: aio.Server, resources: Resources) -> None:
    service = ClientsService(resources.db, PageTokenCodec.from_env())
    crm_pb2_grpc.add_ClientServiceServicer_to_server(ClientServicer(service), server)


DEFINITION = ServiceDefinition(
    name="crm",
    module="services.crm.server",
    default_port=50052,
    service_names=services_in(crm_pb2.DESCRIPTOR),
    register=register,
)

if __name__ == "__main__":
    main(DEFINITION)
