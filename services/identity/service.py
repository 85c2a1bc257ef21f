"""identity's use cases: sign-up, sessions (login, refresh rotation, logout), service
tokens, organizations, users and the audit log. Each validates its request with the
domain's rules, then runs in one TenantDatabase transaction.

Limits (README "Brute-force limits"): each limited use case counts its attempt with the
limiter (repository.limit_attempt) in its first transaction, before any password work, and
a refused attempt ends there: one index read, no argon2. A refusal is raised only after
that transaction commits (a refusal may have just started a lock). Locks this process has
been told about are refused before any database work at all (domain.LockCache). Security-relevant
changes write their audit event (libs/audit.py) in the change's own transaction.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from libs import audit
from libs.errors import InvalidArgument, PermissionDenied, Unauthenticated
from libs.idempotency import create_once
from libs.persistence import KeysetPager, Page, check_etag, found
from libs.settings import AuthLimits
from libs.tenancy.context import PRINCIPAL_SERVICE, Principal, client_address
from libs.tenancy.database import NO_ORGANIZATION, TenantDatabase
from libs.tenancy.peer import address_group
from libs.tenancy.service_auth import ASSERTION_AUDIENCE
from libs.tenancy.tokens import ALGORITHM, TokenSigner, load_public_keys, public_key_pem
from services.identity import domain
from services.identity import repository as repo
from services.identity.domain import AuditEvent, LimitVerdict, Organization, User

log = logging.getLogger("soulkg.identity")

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


def _address_checks(scope: str, limit) -> list[tuple[str, bytes, object]]:
    """The per-address check of `scope`, when the call has an address (not over a unix socket)."""
    address = client_address()
    return [] if address is None else [(scope, domain.limit_key(scope, address_group(address)), limit)]


class IdentityService:
    def __init__(self, db: TenantDatabase, signer: TokenSigner, keys_dir: Path, pager: KeysetPager,
                 limits: AuthLimits | None = None) -> None:
        self.db = db
        self.signer = signer
        self.keys_dir = keys_dir
        self.pager = pager
        self.limits = limits or AuthLimits()
        self.locks = domain.LockCache(self.limits.lock_cache_seconds)

    # --- limits ---------------------------------------------------------------------------------

    def _refuse_if_locked(self, checks) -> None:
        """Refused at once, with no database work, when this process knows a key is locked."""
        verdict = self.locks.refusal(checks, time.monotonic())
        if verdict is not None:
            raise domain.too_many_attempts(verdict)

    async def _limit(self, conn, checks) -> LimitVerdict:
        """Counts the attempt (repository.limit_attempt), unless a key is known to be locked."""
        verdict = self.locks.refusal(checks, time.monotonic())
        if verdict is None:
            verdict = await repo.limit_attempt(conn, checks)
            self.locks.remember(verdict, time.monotonic())
        return verdict

    # --- sessions ------------------------------------------------------------------------

    async def _open_session(self, conn, org_id: uuid.UUID, user: User, family_id: uuid.UUID | None = None) -> Session:
        secret = secrets.token_urlsafe(32)
        await repo.insert_refresh_token(conn, user.id, family_id or uuid.uuid4(), secret,
                                        datetime.now(UTC) + REFRESH_TOKEN_TTL)
        access, exp = self.signer.issue(organization_id=org_id, subject=str(user.id), role=user.role)
        return Session(access, exp, f"{org_id}.{secret}", user=user)

    async def sign_up(self, request: domain.SignUp) -> Session:
        new = domain.validate_sign_up(request)
        checks = _address_checks(domain.SIGN_UP_ADDRESS, self.limits.sign_up_address)
        self._refuse_if_locked(checks)
        async with self.db.transaction(NO_ORGANIZATION) as conn:
            verdict = await self._limit(conn, checks)
        if verdict.refused:
            raise domain.too_many_attempts(verdict)
        password_hash = await domain.hash_password(new.password)
        org_id = uuid.uuid4()
        async with self.db.transaction(org_id) as conn:
            organization = await repo.create_organization(conn, org_id, new.name, new.slug)
            user = await repo.insert_user(conn, new.email, password_hash, new.first_name, new.last_name,
                                          domain.ROLE_ADMIN)
            actor = audit.Actor.user(user.id)
            await audit.record(conn, "organization.created", target_type="organization", target_id=org_id,
                               details={"slug": new.slug}, actor=actor)
            await audit.record(conn, "user.created", target_type="user", target_id=user.id,
                               details={"email": user.email, "role": user.role}, actor=actor)
            session = await self._open_session(conn, org_id, user)
        session.organization = organization
        return session

    async def login(self, request: domain.Login) -> Session:
        """Limited per account and per client address before any password work; past the
        limiter, every failure is the same UNAUTHENTICATED after the same argon2 work."""
        domain.validate_login(request)
        slug = domain.login_slug(request.organization_slug)
        email = domain.login_email(request.email)
        account_key = domain.login_account_key(slug, email, request.email)
        address_checks = _address_checks(domain.LOGIN_ADDRESS, self.limits.login_address)
        checks = [(domain.LOGIN_ACCOUNT, account_key, self.limits.login_account), *address_checks]
        self._refuse_if_locked(checks)
        org_id = credentials = None
        async with self.db.transaction(NO_ORGANIZATION) as conn:
            verdict = await self._limit(conn, checks)
            # A refused attempt stops here; the one that starts an account's lock is audited.
            if not verdict.refused or (verdict.locked_now and verdict.scope == domain.LOGIN_ACCOUNT):
                org_id = await repo.enter_organization_by_slug(conn, slug)
            if org_id is not None and email is not None and not verdict.refused:
                credentials = await repo.get_credentials_by_email(conn, email)
        if verdict.refused:
            if org_id is not None:
                await self._audit_login(org_id, email, "auth.login_locked",
                                        {"retry_after_seconds": round(verdict.retry_after.total_seconds())},
                                        look_up=True)
            raise domain.too_many_attempts(verdict)
        password_ok = await domain.verify_password(credentials.password_hash if credentials else None,
                                                   request.password)
        if not (password_ok and credentials.user.is_active):
            if org_id is None:  # no tenant to audit for: the log line (with the address) is all
                log.info("login failed: no such organization", extra={"fields": {"slug": slug[:63]}})
            else:
                await self._audit_login(org_id, email, "auth.login_failed",
                                        {"reason": "inactive" if password_ok else "credentials"},
                                        user_id=credentials.user.id if credentials else None)
            raise Unauthenticated(LOGIN_FAILED, reason="LOGIN_FAILED")
        new_hash = None
        if domain.needs_rehash(credentials.password_hash):
            new_hash = await domain.hash_password(request.password)
        async with self.db.transaction(org_id) as conn:
            user = await repo.record_login(conn, credentials.user.id, datetime.now(UTC), new_hash)
            session = await self._open_session(conn, org_id, user)
            await audit.record(conn, "auth.login_succeeded", target_type="user", target_id=user.id,
                               actor=audit.Actor.user(user.id))
            # Last, so the limiter's rows stay locked for the commit only.
            await repo.limit_settle(conn, clear=[account_key], refund=[key for _, key, _ in address_checks])
        return session

    async def _audit_login(self, org_id: uuid.UUID, email: str | None, action: str, details: dict, *,
                           user_id: uuid.UUID | None = None, look_up: bool = False) -> None:
        """A failed or refused login of a known organization: by nobody (not authenticated),
        about the user the email names (when there is one)."""
        async with self.db.transaction(org_id) as conn:
            if look_up and email is not None:
                credentials = await repo.get_credentials_by_email(conn, email)
                user_id = credentials.user.id if credentials else None
            await audit.record(conn, action, target_type="user", target_id=user_id,
                               details={"email": email, **details}, actor=audit.ANONYMOUS)

    async def refresh(self, refresh_token: str) -> Session:
        """Rotation: a refresh token works once. Presenting a spent one again means it was
        stolen (or replayed): the whole family is revoked, so the thief's copy dies too.
        Limited per client address (failures) and per token family (every refresh)."""
        org_id, secret = domain.parse_refresh_token(refresh_token)
        address_checks = _address_checks(domain.REFRESH_ADDRESS, self.limits.refresh_address)
        self._refuse_if_locked(address_checks)
        verdict = LimitVerdict(timedelta(0))
        async with self.db.transaction(org_id) as conn:
            token = await repo.claim_refresh_token(conn, secret)
            family_checks = [] if token is None else [
                (domain.REFRESH_FAMILY, domain.limit_key(domain.REFRESH_FAMILY, token.family_id),
                 self.limits.refresh_family)]
            verdict = await self._limit(conn, [*address_checks, *family_checks])
            if token is not None and not verdict.refused:
                user = await repo.get_user(conn, token.user_id) if not token.spent else None
                if domain.refresh_allowed(token, user, datetime.now(UTC)):
                    await repo.mark_refresh_token_used(conn, token.id)
                    session = await self._open_session(conn, org_id, user, token.family_id)
                    await repo.limit_settle(conn, refund=[key for _, key, _ in address_checks])
                    return session
                # Reuse, expiry or a deactivated user: the session is over. Commit the
                # revocation before answering, so it sticks.
                await repo.revoke_family(conn, token.family_id)
                if token.used_at is not None:
                    await audit.record(conn, "auth.refresh_reused", target_type="user", target_id=token.user_id,
                                       details={"family_id": str(token.family_id)}, actor=audit.ANONYMOUS)
        if verdict.refused:
            raise domain.too_many_attempts(verdict)
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
        domain.validate_service_token_request(organization_id, service_name, assertion)
        denied = Unauthenticated("service assertion is invalid", reason="INVALID_SERVICE_ASSERTION")
        key = self._service_key(service_name)
        if key is None:
            raise denied
        try:
            claims = jwt.decode(assertion, key, algorithms=[ALGORITHM], audience=ASSERTION_AUDIENCE,
                                issuer=service_name, leeway=10,
                                options={"require": ["exp", "iat", "iss", "aud", "org", "jti"]})
        except jwt.InvalidTokenError:
            raise denied from None
        jti = claims["jti"]
        if (claims["org"] != organization_id or claims["exp"] - claims["iat"] > SERVICE_ASSERTION_MAX_AGE_SECONDS
                or not isinstance(jti, str) or not 0 < len(jti) <= 200):
            raise denied
        org_id = domain.parse_organization_id(organization_id)
        replayed = False
        checks = [(domain.SERVICE_TOKEN, domain.limit_key(domain.SERVICE_TOKEN, service_name, org_id),
                   self.limits.service_token)]
        self._refuse_if_locked(checks)
        async with self.db.transaction(org_id) as conn:
            found(await repo.get_organization(conn), "organization")
            verdict = await self._limit(conn, checks)
            if not verdict.refused:
                # Kept until the assertion expires (plus the leeway it was verified with).
                expires_at = datetime.fromtimestamp(claims["exp"] + 10, UTC)
                replayed = not await repo.remember_assertion(conn, service_name, jti, expires_at)
                if not replayed:
                    token, exp = self.signer.issue(organization_id=org_id, subject=f"service:{service_name}",
                                                   kind=PRINCIPAL_SERVICE, ttl_seconds=SERVICE_TOKEN_TTL_SECONDS)
                    await audit.record(conn, "service_token.issued", target_type="service", target_id=service_name,
                                       details={"jti": jti, "expire_time": datetime.fromtimestamp(exp, UTC)},
                                       actor=audit.Actor(audit.ACTOR_SERVICE, service_name))
                    return token, exp
        if verdict.refused:
            raise domain.too_many_attempts(verdict)
        raise Unauthenticated("this service assertion was already exchanged", reason="ASSERTION_REPLAYED")

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
            organization = found(await repo.update_organization(conn, update.changes), "organization")
            await audit.record(conn, "organization.updated", target_type="organization", target_id=organization.id,
                               details={"fields": list(update.changes)})
        return organization

    # --- users --------------------------------------------------------------------------------

    async def create_user(self, principal: Principal, request: domain.CreateUser) -> User:
        """A retry with the same request id returns the user the first call created."""
        new = domain.validate_new_user(request)
        password_hash = await domain.hash_password(new.password)
        async with self.db.transaction() as conn:
            async def insert() -> User:
                user = await repo.insert_user(conn, new.email, password_hash, new.first_name, new.last_name,
                                              new.role)
                await audit.record(conn, "user.created", target_type="user", target_id=user.id,
                                   details={"email": user.email, "role": user.role})
                return user
            return await create_once(conn, CREATE_USER, new.request_id, create=insert,
                                     existing=partial(repo.get_user, conn), resource="user")

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
            for action, details in domain.user_update_events(user, update.changes):
                await audit.record(conn, action, target_type="user", target_id=update.id, details=details)
        return updated

    async def change_password(self, principal: Principal, old_password: str, new_password: str) -> None:
        """Limited per user (attempts that do not succeed) before the old password's check."""
        user_id = principal.user_id
        if user_id is None:
            raise PermissionDenied("only users have passwords", reason="NOT_A_USER")
        domain.check_old_password(old_password)
        key = domain.limit_key(domain.CHANGE_PASSWORD_USER, user_id)
        checks = [(domain.CHANGE_PASSWORD_USER, key, self.limits.change_password_user)]
        self._refuse_if_locked(checks)
        async with self.db.transaction() as conn:
            verdict = await self._limit(conn, checks)
            credentials = None if verdict.refused else found(await repo.get_credentials(conn, user_id), "user")
        if verdict.refused:
            raise domain.too_many_attempts(verdict)
        old_password_ok = await domain.verify_password(credentials.password_hash, old_password)
        try:
            domain.validate_password_change(old_password_ok, new_password, credentials.user.email)
        except InvalidArgument:
            if old_password_ok:  # a weak new password is no guess of the old one
                async with self.db.transaction() as conn:
                    await repo.limit_settle(conn, clear=[key])
            raise
        new_hash = await domain.hash_password(new_password)
        async with self.db.transaction() as conn:
            await repo.set_password_hash(conn, user_id, new_hash)
            await repo.revoke_user_tokens(conn, user_id)
            await audit.record(conn, "user.password_changed", target_type="user", target_id=user_id)
            await repo.limit_settle(conn, clear=[key])

    # --- the audit log ------------------------------------------------------------------------

    async def list_audit_events(self, principal: Principal, page_size: int, page_token: str,
                                filter_text: str) -> Page[AuditEvent]:
        query = repo.compile_audit_query(filter_text)
        page = self.pager.request(principal.organization_id,
                                  query=("audit_events", " ".join(filter_text.split())), page_token=page_token,
                                  requested_size=page_size, key_types=_TIME_ID)
        async with self.db.transaction(readonly=True) as conn:
            events = await repo.list_audit_events(conn, query, page)
        return self.pager.page(page, events, key=lambda event: (event.event_time, event.id))
