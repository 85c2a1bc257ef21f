"""identity's process: `python -m services.identity.server` (make run starts it)."""

from __future__ import annotations

from grpc import aio

from libs.pagination import PageTokenCodec
from libs.server.bootstrap import Resources, ServiceDefinition, main, services_in
from libs.tenancy.tokens import load_signer
from services.identity.service import IdentityService
from services.identity.servicer import AuthServicer, OrganizationServicer, UserServicer
from soulkg.identity.v1 import identity_pb2, identity_pb2_grpc

_AUTH = identity_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
PUBLIC_METHODS = frozenset(f"/{_AUTH}/{m}" for m in
                           ("SignUp", "Login", "Refresh", "Logout", "GetPublicKeys", "IssueServiceToken"))


def register(server: aio.Server, resources: Resources) -> None:
    if resources.keys_dir is None:
        raise SystemExit("identity needs SOULKG_KEYS_DIR (its signing key and the public keys)")
    service = IdentityService(resources.db, load_signer(resources.keys_dir), resources.keys_dir,
                              PageTokenCodec.from_env())
    identity_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(service), server)
    identity_pb2_grpc.add_OrganizationServiceServicer_to_server(OrganizationServicer(service), server)
    identity_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(service), server)


DEFINITION = ServiceDefinition(
    name="identity",
    module="services.identity.server",
    default_port=50051,
    service_names=services_in(identity_pb2.DESCRIPTOR),
    register=register,
    public_methods=PUBLIC_METHODS,
)

if __name__ == "__main__":
    main(DEFINITION)
