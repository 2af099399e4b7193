"""Build the Microsoft clients from Settings: live (``ENTRA_*``/``DATAVERSE_URL``) or the sandbox simulators.

Sandbox: with the platform in sandbox mode and no Microsoft settings, the service signs in against the Entra ID
simulator and writes notes to the Dataverse simulator, with the sandbox directory's well-known app
(``service.sandbox.entra.demo``). gunicorn starts the simulators once and passes ``SANDBOX_ENTRA_URL``,
``SANDBOX_DATAVERSE_URL`` and ``SANDBOX_CA_BUNDLE``; without them (tests, ``create_app()`` alone) they are
started in this process on first use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from service.config import Settings
from service.microsoft.dataverse import DataverseClient, DataverseConfig
from service.microsoft.entra import EntraConfig, EntraTokenValidator
from service.microsoft.identity import IdentityConfig, MsalIdentity

log = logging.getLogger(__name__)


@dataclass
class MicrosoftServices:
    """What a worker uses. ``validator`` is None when Entra ID connections are off, ``dataverse`` (and
    ``identity``) when the timeline write-back is off."""

    validator: EntraTokenValidator | None = None
    identity: MsalIdentity | None = None
    dataverse: DataverseClient | None = None
    timeline_budget_seconds: float = 15.0
    mode: str = "off"  # off | live | sandbox
    #: the in-process sandbox simulators (service.sandbox.microsoft.RunningMicrosoft), when started here
    sandbox: Any = None

    def close(self) -> None:
        if self.dataverse is not None:
            self.dataverse.close()
        if self.sandbox is not None:
            self.sandbox.stop()


def uses_sandbox(settings: Settings) -> bool:
    return settings.microsoft.mode(settings.sandbox) == "sandbox"


def build_microsoft(settings: Settings) -> MicrosoftServices:
    ms = settings.microsoft
    timeouts = {"connect_timeout": settings.upstream_connect_timeout, "read_timeout": settings.upstream_read_timeout}
    if uses_sandbox(settings):
        from service.sandbox.entra import demo

        running = None
        entra_url, dataverse_url, ca = ms.sandbox_entra_url, ms.sandbox_dataverse_url, ms.sandbox_ca_bundle
        if not (entra_url and dataverse_url):
            from service.sandbox.microsoft import start_in_process

            running = start_in_process()
            entra_url, dataverse_url, ca = running.entra_url, running.dataverse_url, running.ca_path
            log.info("sandbox Entra ID and Dataverse simulators started in this process",
                     extra={"entraUrl": entra_url, "dataverseUrl": dataverse_url})
        entra = EntraConfig(tenants=(demo.TENANT_ID,), audiences=(demo.API_APP_ID_URI, demo.API_CLIENT_ID),
                            required_scope=demo.API_SCOPE, required_role=demo.API_ROLE, authority_host=entra_url,
                            leeway_seconds=ms.token_leeway_seconds, jwks_cache_seconds=ms.jwks_cache_seconds,
                            jwks_refresh_cooldown_seconds=ms.jwks_refresh_cooldown_seconds, ca_bundle=ca or None)
        identity = MsalIdentity(IdentityConfig(authority_host=entra_url, tenant_id=demo.TENANT_ID,
                                               client_id=demo.API_CLIENT_ID, credential=demo.API_CLIENT_SECRET,
                                               ca_bundle=ca or None, **timeouts))
        dataverse = DataverseClient(DataverseConfig(url=dataverse_url, ca_bundle=ca or None, **timeouts))
        return MicrosoftServices(validator=EntraTokenValidator(entra), identity=identity, dataverse=dataverse,
                                 timeline_budget_seconds=ms.timeline_budget_seconds, mode="sandbox", sandbox=running)
    if not ms.configured:
        return MicrosoftServices(mode="off")
    ca = ms.ca_bundle or None
    validator = EntraTokenValidator(EntraConfig(
        tenants=ms.tenants, audiences=ms.audiences, required_scope=ms.required_scope,
        required_role=ms.required_role, authority_host=ms.authority_host, leeway_seconds=ms.token_leeway_seconds,
        jwks_cache_seconds=ms.jwks_cache_seconds, jwks_refresh_cooldown_seconds=ms.jwks_refresh_cooldown_seconds,
        ca_bundle=ca))
    identity = dataverse = None
    if ms.dataverse_configured:
        identity = MsalIdentity(IdentityConfig(authority_host=ms.authority_host, tenant_id=ms.tenant_id,
                                               client_id=ms.client_id, credential=ms.client_credential(),
                                               ca_bundle=ca, **timeouts))
        dataverse = DataverseClient(DataverseConfig(url=ms.dataverse_url, ca_bundle=ca, **timeouts))
    return MicrosoftServices(validator=validator, identity=identity, dataverse=dataverse,
                             timeline_budget_seconds=ms.timeline_budget_seconds, mode="live")
