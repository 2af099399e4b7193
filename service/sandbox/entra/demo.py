"""The sandbox directory: one tenant, the service's app registration, the connector's client and one user.

Well-known, non-secret values (like the platforms' sandbox credentials in ``service.sandbox.launch``): sandbox
mode configures the service with them, and the simulators accept them.
"""

from __future__ import annotations

#: the sandbox tenant (directory) id
TENANT_ID = "5a4db0c0-0000-4000-8000-00000000a001"
#: another tenant the simulator knows but the service does not allow (tests of the tenant allow-list)
OTHER_TENANT_ID = "5a4db0c0-0000-4000-8000-00000000b002"

#: the service's own app registration (the API the connector calls; also the Dataverse client)
API_CLIENT_ID = "5a4db0c0-0000-4000-8000-0000000000a1"
API_APP_ID_URI = "api://marketing-actions-sandbox"
API_CLIENT_SECRET = "sandbox-entra-client-secret"  # noqa: S105 - well-known sandbox value, not a secret
#: its service principal's object id (the ``oid`` of its app-only tokens)
API_SERVICE_PRINCIPAL_ID = "5a4db0c0-0000-4000-8000-0000000000a2"
#: the delegated permission (scope) it exposes to the connector, and the app role it defines
API_SCOPE = "access_as_user"
API_ROLE = "Actions.Invoke"

#: the Power Platform connector's client (the app the user signs in to)
CONNECTOR_CLIENT_ID = "5a4db0c0-0000-4000-8000-0000000000c1"

#: the sandbox maker (a work account in the sandbox tenant)
USER_OBJECT_ID = "5a4db0c0-0000-4000-8000-000000000101"
USER_NAME = "Sandbox Maker"
USER_PRINCIPAL_NAME = "maker@sandbox.invalid"
