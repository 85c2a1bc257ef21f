"""identity's use cases: sign-up, sessions (login, refresh rotation, logout), service
tokens, organizations and users. Each validates its request with the domain's rules, then
runs in one TenantDatabase transaction."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from libs.errors import PermissionDenied, Unauthenticated
from libs.idempotency import create_once
from libs.persistence import KeysetPager, Page, check_etag, found
from libs.tenancy.context import PRINCIPAL_SERVICE, Principal
from libs.tenancy.database import NO_ORGANIZATION, TenantDatabase
from libs.tenancy.service_auth import ASSERTION_AUDIENCE
from libs.tenancy.tokens import ALGORITHM, TokenSigner, load_public_keys, public_key_pem
from services.identity import domain
from services.identity import repository as repo
from services.identity.domain import Organization, User

REFRESH_TOKEN_TTL = timedelta(days=30)
SERVICE_TOKEN_TTL_SECONDS = 300
SERVICE_ASSERTION_MAX_AGE_SECONDS = 300
LOGIN_FAILED = "invalid organization, email or password"
REFRESH_FAILED = "refresh token is invalid, expired or revoked"
CREATE_USER = "soulkg.identity.v1.UserService/CreateUser"  # its request ids (AIP-155)
_TIME_ID = (datetime, uuid.UUID)  # ListUsers' keyset: (created_at, id)


@dataclass
class Session:
    access_token: str
    access_expires_at: int
    refresh_token: str
    user: User | None = None
    organization: Organization | None = None


class IdentityService:
    def __init__(self, db: TenantDatabase, signer: TokenSigner, keys_dir: Path, pager: KeysetPager) -> None:
        self.db = db
        self.signer = signer
        self.keys_dir = keys_dir
        self.pager = pager

    # --- sessions ------------------------------------------------------------------------

    async def _open_session(self, conn, org_id: uuid.UUID, user: User, family_id: uuid.UUID | None = None) -> Session:
        secret = secrets.token_urlsafe(32)
        await repo.insert_refresh_token(conn, user.id, family_id or uuid.uuid4(), secret,
                                        datetime.now(UTC) + REFRESH_TOKEN_TTL)
        access, exp = self.signer.issue(organization_id=org_id, subject=str(user.id), role=user.role)
        return Session(access, exp, f"{org_id}.{secret}", user=user)

    async def sign_up(self, request: domain.SignUp) -> Session:
        new = domain.validate_sign_up(request)
        password_hash = await domain.hash_password(new.password)
        org_id = uuid.uuid4()
        async with self.db.transaction(org_id) as conn:
            organization = await repo.create_organization(conn, org_id, new.name, new.slug)
            user = await repo.insert_user(conn, new.email, password_hash, new.first_name, new.last_name,
                                          domain.ROLE_ADMIN)
            session = await self._open_session(conn, org_id, user)
        session.organization = organization
        return session

    async def login(self, request: domain.Login) -> Session:
        """Every failure is the same UNAUTHENTICATED after the same argon2 work."""
        email = domain.login_email(request.email)
        async with self.db.transaction(NO_ORGANIZATION, readonly=True) as conn:
            org_id = await repo.organization_id_by_slug(conn, domain.login_slug(request.organization_slug))
        credentials = None
        if org_id is not None and email is not None:
            async with self.db.transaction(org_id, readonly=True) as conn:
                credentials = await repo.get_credentials_by_email(conn, email)
        password_ok = await domain.verify_password(credentials.password_hash if credentials else None,
                                                   request.password)
        if not (password_ok and credentials.user.is_active):
            raise Unauthenticated(LOGIN_FAILED, reason="LOGIN_FAILED")
        new_hash = None
        if domain.needs_rehash(credentials.password_hash):
            new_hash = await domain.hash_password(request.password)
        async with self.db.transaction(org_id) as conn:
            user = await repo.record_login(conn, credentials.user.id, datetime.now(UTC), new_hash)
            return await self._open_session(conn, org_id, user)

    async def refresh(self, refresh_token: str) -> Session:
        """Rotation: a refresh token works once. Presenting a spent one again means it was
        stolen (or replayed): the whole family is revoked, so the thief's copy dies too."""
        org_id, secret = domain.parse_refresh_token(refresh_token)
        async with self.db.transaction(org_id) as conn:
            token = await repo.claim_refresh_token(conn, secret)
            if token is None:
                raise Unauthenticated(REFRESH_FAILED, reason="INVALID_REFRESH_TOKEN")
            user = await repo.get_user(conn, token.user_id) if not token.spent else None
            if domain.refresh_allowed(token, user, datetime.now(UTC)):
                await repo.mark_refresh_token_used(conn, token.id)
                return await self._open_session(conn, org_id, user, token.family_id)
            # Reuse, expiry or a deactivated user: the session is over. Commit the revocation
            # before answering, so it sticks.
            await repo.revoke_family(conn, token.family_id)
        raise Unauthenticated(REFRESH_FAILED, reason="INVALID_REFRESH_TOKEN")

    async def logout(self, refresh_token: str) -> None:
        """Ends the session (the token's family). Unknown tokens are fine: nothing to end."""
        org_id, secret = domain.parse_refresh_token(refresh_token)
        async with self.db.transaction(org_id) as conn:
            token = await repo.claim_refresh_token(conn, secret)
            if token is not None:
                await repo.revoke_family(conn, token.family_id)

    # --- keys and service tokens ------------------------------------------------------------

    def public_keys(self) -> list[tuple[str, str]]:
        return [(kid, public_key_pem(key).decode()) for kid, key in load_public_keys(self.keys_dir).items()]

    def _service_key(self, service_name: str) -> Ed25519PublicKey | None:
        if not service_name.replace("-", "").replace("_", "").isalnum():
            return None
        path = self.keys_dir / "services" / f"{service_name}.pub.pem"
        if not path.exists():
            return None
        key = serialization.load_pem_public_key(path.read_bytes())
        return key if isinstance(key, Ed25519PublicKey) else None

    async def issue_service_token(self, organization_id: str, service_name: str, assertion: str) -> tuple[str, int]:
        """A short-lived token for exactly one organization, for a trusted internal service
        that proves who it is with an assertion signed by its own private key (its public
        key is installed in keys/services/<name>.pub.pem: that file is the trust anchor)."""
        denied = Unauthenticated("service assertion is invalid", reason="INVALID_SERVICE_ASSERTION")
        key = self._service_key(service_name)
        if key is None:
            raise denied
        try:
            claims = jwt.decode(assertion, key, algorithms=[ALGORITHM], audience=ASSERTION_AUDIENCE,
                                issuer=service_name, leeway=10,
                                options={"require": ["exp", "iat", "iss", "aud", "org"]})
        except jwt.InvalidTokenError:
            raise denied from None
        if claims["org"] != organization_id or claims["exp"] - claims["iat"] > SERVICE_ASSERTION_MAX_AGE_SECONDS:
            raise denied
        org_id = domain.parse_organization_id(organization_id)
        async with self.db.transaction(org_id, readonly=True) as conn:
            found(await repo.get_organization(conn), "organization")
        return self.signer.issue(organization_id=org_id, subject=f"service:{service_name}",
                                 kind=PRINCIPAL_SERVICE, ttl_seconds=SERVICE_TOKEN_TTL_SECONDS)

    # --- organizations ------------------------------------------------------------------------

    async def get_organization(self, principal: Principal) -> Organization:
        async with self.db.transaction(readonly=True) as conn:
            organization = await repo.get_organization(conn)
        return found(organization, "organization")

    async def update_organization(self, principal: Principal, request: domain.UpdateOrganization) -> Organization:
        update = domain.validate_organization_update(request)
        async with self.db.transaction() as conn:
            if update.etag:
                current = found(await repo.get_organization(conn, for_update=True), "organization")
                check_etag(update.etag, current.etag)
            organization = await repo.update_organization(conn, update.changes)
        return found(organization, "organization")

    # --- users --------------------------------------------------------------------------------

    async def create_user(self, principal: Principal, request: domain.CreateUser) -> User:
        """A retry with the same request id returns the user the first call created."""
        new = domain.validate_new_user(request)
        password_hash = await domain.hash_password(new.password)
        async with self.db.transaction() as conn:
            return await create_once(
                conn, CREATE_USER, new.request_id, resource="user", existing=partial(repo.get_user, conn),
                create=partial(repo.insert_user, conn, new.email, password_hash, new.first_name, new.last_name,
                               new.role))

    async def get_user(self, user_id: uuid.UUID) -> User:
        async with self.db.transaction(readonly=True) as conn:
            user = await repo.get_user(conn, user_id)
        return found(user, "user")

    async def list_users(self, principal: Principal, page_size: int, page_token: str) -> Page[User]:
        page = self.pager.request(principal.organization_id, query=("users", "created_at,id"), page_token=page_token,
                                  requested_size=page_size, key_types=_TIME_ID)
        async with self.db.transaction(readonly=True) as conn:
            users = await repo.list_users(conn, page)
        return self.pager.page(page, users, key=lambda user: (user.create_time, user.id))

    async def update_user(self, principal: Principal, request: domain.UpdateUser) -> User:
        """Admins are locked first when the change can take one away, so two admins demoting
        each other at once leave one. With an etag, a stale read is ABORTED."""
        update = domain.validate_user_update(request)
        async with self.db.transaction() as conn:
            admins = await repo.lock_active_admins(conn) if update.demotes else []
            user = found(await repo.get_user(conn, update.id, for_update=True), "user")
            check_etag(update.etag, user.etag)
            domain.check_changeable(user)
            if update.demotes:
                domain.check_keeps_an_admin(admins, update.id)
            updated = await repo.update_user(conn, update.id, update.changes)
            if update.changes.get("is_active") is False:
                await repo.revoke_user_tokens(conn, update.id)
        return updated

    async def change_password(self, principal: Principal, old_password: str, new_password: str) -> None:
        user_id = principal.user_id
        if user_id is None:
            raise PermissionDenied("only users have passwords", reason="NOT_A_USER")
        async with self.db.transaction(readonly=True) as conn:
            credentials = found(await repo.get_credentials(conn, user_id), "user")
        old_password_ok = await domain.verify_password(credentials.password_hash, old_password)
        domain.validate_password_change(old_password_ok, new_password, credentials.user.email)
        new_hash = await domain.hash_password(new_password)
        async with self.db.transaction() as conn:
            await repo.set_password_hash(conn, user_id, new_hash)
            await repo.revoke_user_tokens(conn, user_id)
