"""identity's gRPC servicers: wire ↔ use cases. No rules and no SQL here."""

from __future__ import annotations

import asyncpg
from google.protobuf import json_format, timestamp_pb2

from libs.errors import InvalidArgument
from libs.tenancy.context import require_principal
from libs.validation import json_object_text, optional_text
from libs.wire import enum_label, enum_value, json_to_struct, mask_paths, parse_uuid, timestamp
from services.identity import domain
from services.identity.service import IdentityService, Session
from soulkg.identity.v1 import enums_pb2, identity_pb2, identity_pb2_grpc


def organization_message(row: asyncpg.Record) -> identity_pb2.Organization:
    return identity_pb2.Organization(
        id=str(row["id"]), name=row["name"], slug=row["slug"], logo_url=row["logo"],
        settings=json_to_struct(row["settings"]), create_time=timestamp(row["created_at"]),
        update_time=timestamp(row["updated_at"]))


def user_message(row: asyncpg.Record) -> identity_pb2.User:
    return identity_pb2.User(
        id=str(row["id"]), email=row["email"], first_name=row["first_name"], last_name=row["last_name"],
        role=enum_value(enums_pb2.UserRole, row["role"]), is_active=row["is_active"],
        last_login_time=timestamp(row["last_login_at"]), create_time=timestamp(row["created_at"]),
        update_time=timestamp(row["updated_at"]))


def _expiry(unix_seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=unix_seconds)


def _session_fields(session: Session) -> dict:
    return {"access_token": session.access_token, "refresh_token": session.refresh_token,
            "access_token_expire_time": _expiry(session.access_expires_at)}


class AuthServicer(identity_pb2_grpc.AuthServiceServicer):
    def __init__(self, service: IdentityService) -> None:
        self.service = service

    async def SignUp(self, request, context):
        session = await self.service.sign_up(
            organization_name=request.organization_name, organization_slug=request.organization_slug,
            email=request.email, password=request.password, first_name=request.first_name,
            last_name=request.last_name)
        return identity_pb2.SignUpResponse(organization=organization_message(session.organization),
                                           user=user_message(session.user), **_session_fields(session))

    async def Login(self, request, context):
        session = await self.service.login(organization_slug=request.organization_slug, email=request.email,
                                           password=request.password)
        return identity_pb2.LoginResponse(user=user_message(session.user), **_session_fields(session))

    async def Refresh(self, request, context):
        session = await self.service.refresh(request.refresh_token)
        return identity_pb2.RefreshResponse(**_session_fields(session))

    async def Logout(self, request, context):
        await self.service.logout(request.refresh_token)
        return identity_pb2.LogoutResponse()

    async def GetPublicKeys(self, request, context):
        return identity_pb2.GetPublicKeysResponse(keys=[
            identity_pb2.PublicKey(kid=kid, algorithm="EdDSA", public_key_pem=pem)
            for kid, pem in self.service.public_keys()])

    async def IssueServiceToken(self, request, context):
        token, exp = await self.service.issue_service_token(request.organization_id, request.service_name,
                                                            request.assertion)
        return identity_pb2.IssueServiceTokenResponse(access_token=token, access_token_expire_time=_expiry(exp))


class OrganizationServicer(identity_pb2_grpc.OrganizationServiceServicer):
    UPDATABLE = ("name", "logo_url", "settings")

    def __init__(self, service: IdentityService) -> None:
        self.service = service

    async def GetOrganization(self, request, context):
        return organization_message(await self.service.get_organization(require_principal()))

    async def UpdateOrganization(self, request, context):
        principal = require_principal()
        changes = {}
        org = request.organization
        for path in mask_paths(request.update_mask, self.UPDATABLE):
            if path == "name":
                changes["name"] = domain.check_organization_name(org.name, "organization.name")
            elif path == "logo_url":
                logo = org.logo_url.strip() if org.HasField("logo_url") else ""
                if logo and not logo.startswith(("https://", "http://")):
                    raise InvalidArgument.field("organization.logo_url", "must be an http(s) URL")
                changes["logo"] = logo or None
            elif path == "settings":
                changes["settings"] = json_object_text(json_format.MessageToDict(org.settings),
                                                       "organization.settings")
        return organization_message(await self.service.update_organization(principal, changes))


class UserServicer(identity_pb2_grpc.UserServiceServicer):
    UPDATABLE = ("first_name", "last_name", "role", "is_active")

    def __init__(self, service: IdentityService) -> None:
        self.service = service

    @staticmethod
    def _role(value: int, field: str) -> str | None:
        label = enum_label(enums_pb2.UserRole, value, field)
        if label == domain.ROLE_SUPER_ADMIN:
            raise InvalidArgument.field(field, "SUPER_ADMIN cannot be granted through this API")
        return label

    async def CreateUser(self, request, context):
        principal = require_principal()
        user = request.user
        row = await self.service.create_user(
            principal, email=user.email, password=request.password, first_name=user.first_name,
            last_name=user.last_name, role=self._role(user.role, "user.role") or domain.ROLE_MANAGER)
        return user_message(row)

    async def GetUser(self, request, context):
        require_principal()
        return user_message(await self.service.get_user(parse_uuid(request.id, "id")))

    async def ListUsers(self, request, context):
        principal = require_principal()
        rows, next_token = await self.service.list_users(principal, request.page_size, request.page_token)
        return identity_pb2.ListUsersResponse(users=[user_message(r) for r in rows], next_page_token=next_token)

    async def UpdateUser(self, request, context):
        principal = require_principal()
        user = request.user
        user_id = parse_uuid(user.id, "user.id")
        changes: dict = {}
        for path in mask_paths(request.update_mask, self.UPDATABLE):
            if path in ("first_name", "last_name"):
                changes[path] = optional_text(getattr(user, path), f"user.{path}", domain.NAME_MAX)
            elif path == "role":
                role = self._role(user.role, "user.role")
                if role is None:
                    raise InvalidArgument.field("user.role", "is required (UNSPECIFIED is not allowed)")
                changes["role"] = role
            elif path == "is_active":
                changes["is_active"] = user.is_active
        return user_message(await self.service.update_user(principal, user_id, changes))

    async def ChangePassword(self, request, context):
        await self.service.change_password(require_principal(), request.old_password, request.new_password)
        return identity_pb2.ChangePasswordResponse()
