"""identity's gRPC servicers: protobuf → the domain's typed requests, entities → protobuf.
No rules and no SQL here: validation is in domain.py, SQL in repository.py."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from libs.tenancy.context import require_principal
from libs.wire import enum_label, enum_value, json_to_struct, parse_uuid, struct_to_dict, timestamp
from services.identity import domain
from services.identity.service import IdentityService, Session
from soulkg.identity.v1 import enums_pb2, identity_pb2, identity_pb2_grpc


def organization_message(organization: domain.Organization) -> identity_pb2.Organization:
    return identity_pb2.Organization(
        id=str(organization.id), name=organization.name, slug=organization.slug, logo_url=organization.logo_url,
        settings=json_to_struct(organization.settings), create_time=timestamp(organization.create_time),
        update_time=timestamp(organization.update_time), etag=organization.etag)


def user_message(user: domain.User) -> identity_pb2.User:
    return identity_pb2.User(
        id=str(user.id), email=user.email, first_name=user.first_name, last_name=user.last_name,
        role=enum_value(enums_pb2.UserRole, user.role), is_active=user.is_active,
        last_login_time=timestamp(user.last_login_time), create_time=timestamp(user.create_time),
        update_time=timestamp(user.update_time), etag=user.etag)


def audit_event_message(event: domain.AuditEvent) -> identity_pb2.AuditEvent:
    return identity_pb2.AuditEvent(
        id=str(event.id), event_time=timestamp(event.event_time),
        actor_kind=enum_value(identity_pb2.AuditEvent.ActorKind, event.actor_kind), actor_id=event.actor_id or "",
        action=event.action, target_type=event.target_type or "", target_id=event.target_id or "",
        client_address=event.client_address or "", request_id=event.request_id or "",
        details=json_to_struct(event.details))


def _optional(message, name: str):
    return getattr(message, name) if message.HasField(name) else None


def user_fields(user: identity_pb2.User) -> domain.UserFields:
    return domain.UserFields(email=user.email, first_name=_optional(user, "first_name"),
                             last_name=_optional(user, "last_name"),
                             role=enum_label(enums_pb2.UserRole, user.role, "user.role"), is_active=user.is_active)


def _expiry(unix_seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=unix_seconds)


def _session_fields(session: Session) -> dict:
    return {"access_token": session.access_token, "refresh_token": session.refresh_token,
            "access_token_expire_time": _expiry(session.access_expires_at)}


class AuthServicer(identity_pb2_grpc.AuthServiceServicer):
    def __init__(self, service: IdentityService) -> None:
        self.service = service

    async def SignUp(self, request, context):
        session = await self.service.sign_up(domain.SignUp(
            organization_name=request.organization_name, organization_slug=request.organization_slug,
            email=request.email, password=request.password, first_name=request.first_name,
            last_name=request.last_name))
        return identity_pb2.SignUpResponse(organization=organization_message(session.organization),
                                           user=user_message(session.user), **_session_fields(session))

    async def Login(self, request, context):
        session = await self.service.login(domain.Login(organization_slug=request.organization_slug,
                                                        email=request.email, password=request.password))
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
    def __init__(self, service: IdentityService) -> None:
        self.service = service

    async def GetOrganization(self, request, context):
        return organization_message(await self.service.get_organization(require_principal()))

    async def UpdateOrganization(self, request, context):
        organization = request.organization
        fields = domain.OrganizationFields(
            name=organization.name, logo_url=_optional(organization, "logo_url"),
            settings=struct_to_dict(organization.settings, "organization.settings")
            if organization.HasField("settings") else None)
        updated = await self.service.update_organization(require_principal(), domain.UpdateOrganization(
            fields, tuple(request.update_mask.paths), organization.etag))
        return organization_message(updated)


class UserServicer(identity_pb2_grpc.UserServiceServicer):
    def __init__(self, service: IdentityService) -> None:
        self.service = service

    async def CreateUser(self, request, context):
        user = await self.service.create_user(require_principal(), domain.CreateUser(
            user_fields(request.user), request.password, request.request_id))
        return user_message(user)

    async def GetUser(self, request, context):
        require_principal()
        return user_message(await self.service.get_user(parse_uuid(request.id, "id")))

    async def ListUsers(self, request, context):
        page = await self.service.list_users(require_principal(), request.page_size, request.page_token)
        return identity_pb2.ListUsersResponse(users=[user_message(u) for u in page.items],
                                              next_page_token=page.next_page_token)

    async def UpdateUser(self, request, context):
        user = await self.service.update_user(require_principal(), domain.UpdateUser(
            request.user.id, user_fields(request.user), tuple(request.update_mask.paths), request.user.etag))
        return user_message(user)

    async def ChangePassword(self, request, context):
        await self.service.change_password(require_principal(), request.old_password, request.new_password)
        return identity_pb2.ChangePasswordResponse()


class AuditServicer(identity_pb2_grpc.AuditServiceServicer):
    def __init__(self, service: IdentityService) -> None:
        self.service = service

    async def ListAuditEvents(self, request, context):
        page = await self.service.list_audit_events(require_principal(), request.page_size, request.page_token,
                                                    request.filter)
        return identity_pb2.ListAuditEventsResponse(audit_events=[audit_event_message(e) for e in page.items],
                                                    next_page_token=page.next_page_token)
