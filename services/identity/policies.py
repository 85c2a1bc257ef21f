"""Who may call each identity method (enforced by the interceptor; see libs/authz.py).

Sign-up, login, refresh, logout, the public keys and the service-token exchange are public:
the caller has no access token yet (they authenticate with what the request carries).
Admins manage the organization and its users; every user may read them. Admins read the
audit log.
"""

from libs.authz import ADMIN, ANY_USER, PUBLIC, SERVICES

POLICIES = {
    "soulkg.identity.v1.AuthService": {
        "SignUp": PUBLIC,
        "Login": PUBLIC,
        "Refresh": PUBLIC,
        "Logout": PUBLIC,
        "GetPublicKeys": PUBLIC,
        "IssueServiceToken": PUBLIC,
    },
    "soulkg.identity.v1.OrganizationService": {
        # Services read the organization's settings (its working language, for one).
        "GetOrganization": ANY_USER | SERVICES("webhook", "messaging", "agents"),
        "UpdateOrganization": ADMIN,
    },
    "soulkg.identity.v1.UserService": {
        "CreateUser": ADMIN,
        "GetUser": ANY_USER | SERVICES("messaging"),
        "ListUsers": ANY_USER,
        "UpdateUser": ADMIN,
        "ChangePassword": ANY_USER,
    },
    "soulkg.identity.v1.AuditService": {
        "ListAuditEvents": ADMIN,
    },
}
