"""identity: sign-up, login, tokens, organizations, users and roles (soulkg.identity.v1)."""
