"""Tenancy: who is calling (verified token → Principal in a contextvar) and the database
transaction that runs under that caller's organization with row-level security."""

from libs.tenancy.context import Principal, current_principal, require_principal
from libs.tenancy.tokens import TokenSigner, TokenVerifier

__all__ = ["Principal", "TokenSigner", "TokenVerifier", "current_principal", "require_principal"]
