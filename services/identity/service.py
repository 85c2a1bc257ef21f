"""identity's use cases: sign-up, sessions (login, refresh rotation, logout), service
tokens, organizations and users. Each runs in one TenantDatabase transaction."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from libs.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from libs.pagination import PageTokenCodec, page_size
from libs.tenancy.context import PRINCIPAL_SERVICE, Principal
from libs.tenancy.database import NO_ORGANIZATION, TenantDatabase
from libs.tenancy.service_auth import ASSERTION_AUDIENCE
from libs.tenancy.tokens import ALGORITHM, TokenSigner, load_public_keys, public_key_pem
from libs.validation import normalize_email, optional_text
from services.identity import domain
from services.identity import repository as repo

REFRESH_TOKEN_TTL = timedelta(days=30)
SERVICE_TOKEN_TTL_SECONDS = 300
SERVICE_ASSERTION_MAX_AGE_SECONDS = 300
LOGIN_FAILED = "invalid organization, email or password"
REFRESH_FAILED = "refresh token is invalid, expired or revoked"


@dataclass
class Session:
    access_token: str
    access_expires_at: int
    refresh_token: str
    user: asyncpg.Record | None = None
    organization: asyncpg.Record | None = None


class IdentityService:
    def __init__(self, db: TenantDatabase, signer: TokenSigner, keys_dir: Path,
                 page_tokens: PageTokenCodec) -> None:
        self.db = db
        self.signer = signer
        self.keys_dir = keys_dir
        self.page_tokens = page_tokens

    # --- sessions ------------------------------------------------------------------------

    async def _open_session(self, conn: asyncpg.Connection, org_id: uuid.UUID, user: asyncpg.Record,
                            family_id: uuid.UUID | None = None) -> Session:
        secret = secrets.token_urlsafe(32)
        await repo.insert_refresh_token(conn, org_id, user["id"], family_id or uuid.uuid4(), secret,
                                        datetime.now(UTC) + REFRESH_TOKEN_TTL)
        access, exp = self.signer.issue(organization_id=org_id, subject=str(user["id"]), role=user["role"])
        return Session(access, exp, f"{org_id}.{secret}", user=user)

    async def sign_up(self, *, organization_name: str, organization_slug: str, email: str, password: str,
                      first_name: str, last_name: str) -> Session:
        violations = []
        checks = [lambda: domain.check_organization_name(organization_name),
                  lambda: domain.normalize_slug(organization_slug), lambda: normalize_email(email)]
        results = []
        for check in checks:
            try:
                results.append(check())
            except InvalidArgument as exc:
                violations.extend(exc.violations)
                results.append(None)
        name, slug, email_normalized = results
        if email_normalized:
            try:
                domain.check_password(password, email_normalized)
            except InvalidArgument as exc:
                violations.extend(exc.violations)
        if violations:
            raise InvalidArgument("invalid sign-up request", violations)
        first = optional_text(first_name, "first_name", domain.NAME_MAX)
        last = optional_text(last_name, "last_name", domain.NAME_MAX)
        password_hash = await domain.hash_password(password)
        org_id = uuid.uuid4()
        try:
            async with self.db.transaction(org_id) as conn:
                organization = await repo.create_organization(conn, org_id, name, slug)
                user = await repo.insert_user(conn, org_id, email_normalized, password_hash, first, last,
                                              domain.ROLE_ADMIN)
                session = await self._open_session(conn, org_id, user)
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"organization slug '{slug}' is taken", reason="SLUG_TAKEN",
                                metadata={"slug": slug}) from None
        session.organization = organization
        return session

    async def login(self, *, organization_slug: str, email: str, password: str) -> Session:
        """Every failure is the same UNAUTHENTICATED after the same argon2 work."""
        slug = organization_slug.strip().lower()
        email = email.strip().lower()
        async with self.db.transaction(NO_ORGANIZATION, readonly=True) as conn:
            org_id = await repo.organization_id_by_slug(conn, slug)
        user = None
        if org_id is not None:
            async with self.db.transaction(org_id, readonly=True) as conn:
                user = await repo.get_user_by_email(conn, email)
        password_ok = await domain.verify_password(user["password_hash"] if user else None, password)
        if not (password_ok and user["is_active"]):
            raise Unauthenticated(LOGIN_FAILED, reason="LOGIN_FAILED")
        changes: dict = {"last_login_at": datetime.now(UTC)}
        if domain.needs_rehash(user["password_hash"]):
            changes["password_hash"] = await domain.hash_password(password)
        async with self.db.transaction(org_id) as conn:
            user = await repo.update_user(conn, user["id"], changes)
            return await self._open_session(conn, org_id, user)

    @staticmethod
    def _parse_refresh_token(token: str) -> tuple[uuid.UUID, str]:
        org, _, secret = token.partition(".")
        try:
            return uuid.UUID(org), secret
        except ValueError:
            raise InvalidArgument.field("refresh_token", "is not a refresh token") from None

    async def refresh(self, refresh_token: str) -> Session:
        """Rotation: a refresh token works once. Presenting a spent one again means it was
        stolen (or replayed): the whole family is revoked, so the thief's copy dies too."""
        org_id, secret = self._parse_refresh_token(refresh_token)
        async with self.db.transaction(org_id) as conn:
            token = await repo.claim_refresh_token(conn, secret)
            if token is None:
                raise Unauthenticated(REFRESH_FAILED, reason="INVALID_REFRESH_TOKEN")
            unspent = token["used_at"] is None and token["revoked_at"] is None
            user = await repo.get_user(conn, token["user_id"]) if unspent else None
            if unspent and token["expires_at"] > datetime.now(UTC) and user is not None and user["is_active"]:
                await repo.mark_refresh_token_used(conn, token["id"])
                return await self._open_session(conn, org_id, user, token["family_id"])
            # Reuse, expiry or a deactivated user: the session is over. Commit the revocation
            # before answering, so it sticks.
            await repo.revoke_family(conn, token["family_id"])
        raise Unauthenticated(REFRESH_FAILED, reason="INVALID_REFRESH_TOKEN")

    async def logout(self, refresh_token: str) -> None:
        """Ends the session (the token's family). Unknown tokens are fine: nothing to end."""
        org_id, secret = self._parse_refresh_token(refresh_token)
        async with self.db.transaction(org_id) as conn:
            token = await repo.claim_refresh_token(conn, secret)
            if token is not None:
                await repo.revoke_family(conn, token["family_id"])

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
        try:
            org_id = uuid.UUID(organization_id)
        except ValueError:
            raise InvalidArgument.field("organization_id", "must be a UUID") from None
        async with self.db.transaction(org_id, readonly=True) as conn:
            if await repo.get_organization(conn, org_id) is None:
                raise NotFound("organization not found")
        return self.signer.issue(organization_id=org_id, subject=f"service:{service_name}",
                                 kind=PRINCIPAL_SERVICE, ttl_seconds=SERVICE_TOKEN_TTL_SECONDS)

    # --- organizations ------------------------------------------------------------------------

    async def get_organization(self, principal: Principal) -> asyncpg.Record:
        async with self.db.transaction(readonly=True) as conn:
            org = await repo.get_organization(conn, principal.organization_id)
        if org is None:
            raise NotFound("organization not found")
        return org

    async def update_organization(self, principal: Principal, changes: dict) -> asyncpg.Record:
        async with self.db.transaction() as conn:
            org = await repo.update_organization(conn, principal.organization_id, changes) if changes \
                else await repo.get_organization(conn, principal.organization_id)
        if org is None:
            raise NotFound("organization not found")
        return org

    # --- users --------------------------------------------------------------------------------

    async def create_user(self, principal: Principal, *, email: str, password: str, first_name: str,
                          last_name: str, role: str) -> asyncpg.Record:
        email = normalize_email(email, "user.email")
        domain.check_password(password, email)
        first = optional_text(first_name, "user.first_name", domain.NAME_MAX)
        last = optional_text(last_name, "user.last_name", domain.NAME_MAX)
        password_hash = await domain.hash_password(password)
        try:
            async with self.db.transaction() as conn:
                return await repo.insert_user(conn, principal.organization_id, email, password_hash, first, last,
                                              role)
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("a user with this email exists in the organization", reason="EMAIL_TAKEN") from None

    async def get_user(self, user_id: uuid.UUID) -> asyncpg.Record:
        async with self.db.transaction(readonly=True) as conn:
            user = await repo.get_user(conn, user_id)
        if user is None:
            raise NotFound("user not found")
        return user

    async def list_users(self, principal: Principal, requested_size: int, page_token: str):
        size = page_size(requested_size)
        query = self.page_tokens.fingerprint("users", "created_at,id")
        after = self.page_tokens.decode_time_id(page_token, principal.organization_id, query)
        async with self.db.transaction(readonly=True) as conn:
            rows = await repo.list_users(conn, size + 1, after)
        return self.page_tokens.time_id_page(rows, size, principal.organization_id, query, "created_at")

    async def update_user(self, principal: Principal, user_id: uuid.UUID, changes: dict) -> asyncpg.Record:
        async with self.db.transaction() as conn:
            demoting = changes.get("role", domain.ROLE_ADMIN) != domain.ROLE_ADMIN or changes.get("is_active") is False
            if demoting:
                admins = await repo.lock_active_admins(conn)
            user = await repo.get_user(conn, user_id, for_update=True)
            if user is None:
                raise NotFound("user not found")
            if user["role"] == domain.ROLE_SUPER_ADMIN:
                raise PermissionDenied("a platform super admin cannot be changed here", reason="SUPER_ADMIN")
            if demoting and admins == [user_id]:
                raise FailedPrecondition("the organization must keep at least one active admin",
                                         reason="LAST_ADMIN")
            updated = await repo.update_user(conn, user_id, changes) if changes else user
            if changes.get("is_active") is False:
                await repo.revoke_user_tokens(conn, user_id)
        return updated

    async def change_password(self, principal: Principal, old_password: str, new_password: str) -> None:
        user_id = principal.user_id
        if user_id is None:
            raise PermissionDenied("only users have passwords", reason="NOT_A_USER")
        user = await self.get_user(user_id)
        if not await domain.verify_password(user["password_hash"], old_password):
            raise InvalidArgument.field("old_password", "does not match the current password")
        domain.check_password(new_password, user["email"], "new_password")
        new_hash = await domain.hash_password(new_password)
        async with self.db.transaction() as conn:
            await repo.update_user(conn, user_id, {"password_hash": new_hash})
            await repo.revoke_user_tokens(conn, user_id)
