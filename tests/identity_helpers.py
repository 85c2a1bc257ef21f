"""Sign-up and login helpers for tests that need organizations and users."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from grpc import aio

from soulkg.identity.v1 import enums_pb2, identity_pb2, identity_pb2_grpc

PASSWORD = "correct horse battery"


@dataclass
class Account:
    slug: str
    email: str
    password: str
    access_token: str
    refresh_token: str
    organization: identity_pb2.Organization
    user: identity_pb2.User

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.access_token}")]


def stubs(channel: aio.Channel):
    return (identity_pb2_grpc.AuthServiceStub(channel), identity_pb2_grpc.OrganizationServiceStub(channel),
            identity_pb2_grpc.UserServiceStub(channel))


async def sign_up(channel: aio.Channel, label: str = "org") -> Account:
    auth, _, _ = stubs(channel)
    slug = f"{label}-{secrets.token_hex(4)}"
    email = f"admin@{slug}.example.com"
    reply = await auth.SignUp(identity_pb2.SignUpRequest(
        organization_name=f"Org {slug}", organization_slug=slug, email=email, password=PASSWORD,
        first_name="Ada", last_name="Admin"))
    return Account(slug, email, PASSWORD, reply.access_token, reply.refresh_token, reply.organization, reply.user)


async def add_user(channel: aio.Channel, admin: Account, role=enums_pb2.USER_ROLE_MANAGER,
                   name: str = "manager") -> Account:
    auth, _, users = stubs(channel)
    email = f"{name}-{secrets.token_hex(3)}@{admin.slug}.example.com"
    user = await users.CreateUser(identity_pb2.CreateUserRequest(
        user=identity_pb2.User(email=email, first_name=name.title(), role=role), password=PASSWORD),
        metadata=admin.metadata)
    login = await auth.Login(identity_pb2.LoginRequest(organization_slug=admin.slug, email=email, password=PASSWORD))
    return Account(admin.slug, email, PASSWORD, login.access_token, login.refresh_token, admin.organization, user)
