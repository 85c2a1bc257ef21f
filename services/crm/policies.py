"""Who may call each crm method (enforced by the interceptor; see libs/authz.py).

Any user of the organization works with its clients. Internal services act for one
organization with a service token: `webhook`/`messaging` create clients from inbound
messages, `agents` read clients and their funnels (ListClientStatusChanges), record AI status
changes and mirror experiment assignments.
"""

from libs.authz import ANY_USER, SERVICES

_INTERNAL = SERVICES("webhook", "messaging", "agents")

POLICIES = {
    "soulkg.crm.v1.ClientService": {
        "CreateClient": ANY_USER | _INTERNAL,
        "GetClient": ANY_USER | _INTERNAL,
        "ListClients": ANY_USER | _INTERNAL,
        "UpdateClient": ANY_USER | _INTERNAL,
        "DeleteClient": ANY_USER,
        "ChangeClientStatus": ANY_USER | _INTERNAL,
        "ListClientStatusHistory": ANY_USER | _INTERNAL,
        "ListClientStatusChanges": ANY_USER | _INTERNAL,
        "FindClientByPhone": ANY_USER | _INTERNAL,
        "GetOrCreateClientByPhone": ANY_USER | _INTERNAL,
    },
}
