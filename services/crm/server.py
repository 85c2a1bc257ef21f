"""crm's process: `python -m services.crm.server` (make run starts it)."""

from __future__ import annotations

from grpc import aio

from libs.persistence import KeysetPager
from libs.server.bootstrap import Resources, ServiceDefinition, main
from services.crm.policies import POLICIES
from services.crm.service import ClientsService
from services.crm.servicer import ClientServicer
from soulkg.crm.v1 import crm_pb2, crm_pb2_grpc


def register(server: aio.Server, resources: Resources) -> None:
    service = ClientsService(resources.db, KeysetPager(resources.page_tokens))
    crm_pb2_grpc.add_ClientServiceServicer_to_server(ClientServicer(service), server)


DEFINITION = ServiceDefinition(name="crm", register=register, policies=POLICIES,
                               file_descriptors=[crm_pb2.DESCRIPTOR])

if __name__ == "__main__":
    main(DEFINITION)
