"""Microsoft upstreams: Entra ID (access-token validation, msal tokens) and Dataverse (records, notes).

Like ``service.providers``: no web code, one HTTP session per upstream per process, explicit timeouts, and only
the errors of :mod:`service.microsoft.errors` leave the package. Modules:

* :mod:`~service.microsoft.config` - the settings (``ENTRA_*``, ``DATAVERSE_*``), validated at startup;
* :mod:`~service.microsoft.entra` - validates incoming Entra ID access tokens (PyJWT, JWKS per tenant);
* :mod:`~service.microsoft.identity` - Dataverse tokens from msal (as the app, or on behalf of the user);
* :mod:`~service.microsoft.dataverse` - the Dataverse Web API client;
* :mod:`~service.microsoft.factory` - builds them from Settings (live, or the sandbox simulators).
"""
