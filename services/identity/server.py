"""identity's process: `python -m services.identity.server` (make run starts it)."""

from __future__ import annotations

from grpc import aio

from libs.persistence import KeysetPager
from libs.server.bootstrap import Resources, ServiceDefinition, main
from libs.tenancy.tokens import load_signer
from services.identity.policies import POLICIES
from services.identity.service import IdentityService
from services.identity.servicer import AuditServicer, AuthServicer, OrganizationServicer, UserServicer
from soulkg.identity.v1 import identity_pb2, identity_pb2_grpc


def register(server: aio.Server, resources: Resources) -> None:
    if resources.keys_dir is None:
        raise SystemExit("identity needs SOULKG_KEYS_DIR (its signing key and the public keys)")
    service = IdentityService(resources.db, load_signer(resources.keys_dir), resources.keys_dir,
                              KeysetPager(resources.page_tokens), resources.settings.auth_limits)
    identity_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(service), server)
    identity_pb2_grpc.add_OrganizationServiceServicer_to_server(OrganizationServicer(service), server)
    identity_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(service), server)
    identity_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(service), server)


DEFINITION = ServiceDefinition(name="identity", register=register, policies=POLICIES,
                               file_descriptors=[identity_pb2.DESCRIPTOR])

if __name__ == "__main__":
    main(DEFINITION)
