"""Settings of the Microsoft side: Entra ID sign-in (token validation, msal) and Dataverse write-back.

Read from the environment together with :class:`service.config.Settings` (``Settings.microsoft``) and
validated at startup; every variable is listed in ``.env.example``. One app registration serves both: it is
the API the connector signs in to (its client id / app id URI is the tokens' audience) and the confidential
client that asks Entra ID for Dataverse tokens (client secret or certificate).

* ``ENTRA_CLIENT_ID`` + ``ENTRA_TENANT_ID`` switch Entra ID connections on (bearer tokens accepted).
* ``DATAVERSE_URL`` switches the timeline write-back on (needs the client id, tenant and a credential).
* Sandbox: with the platform in sandbox mode and neither of the above set, the service uses the in-repo
  Entra ID and Dataverse simulators (``SANDBOX_ENTRA_URL`` / ``SANDBOX_DATAVERSE_URL`` / ``SANDBOX_CA_BUNDLE``
  when gunicorn started them, else started in the worker).

Secrets (client secret, certificate key) are held with ``repr=False`` and never logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from service.settings_schema import comma_separated, setting

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
_NAME = r"^[\w.\-]{1,120}$"
_NAME_ALLOWED = "letters, digits, _ . and - (1 to 120 characters)"


class MicrosoftConfigError(ValueError):
    """A Microsoft setting is missing or invalid; the message names the variable."""


def _https(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise MicrosoftConfigError(f"{name}: must be an https URL like https://host (got {value!r}).")
    return value.rstrip("/")


def _url(text: str) -> str:
    return text.strip().rstrip("/")


@dataclass(frozen=True)
class MicrosoftSettings:
    """Declared once each (:mod:`service.settings_schema`); read by :meth:`service.config.Settings.from_env`."""

    tenant_id: str = setting(
        "ENTRA_TENANT_ID", "", parse=str.strip,
        section="Microsoft Entra ID connections and Dataverse timeline notes (docs/entra-id.md)",
        doc="The service's app registration: Directory (tenant) ID and Application (client) ID. Setting "
            "ENTRA_CLIENT_ID switches Entra ID connections on (Authorization: Bearer tokens are accepted next to "
            "API keys).")
    client_id: str = setting("ENTRA_CLIENT_ID", "", parse=str.strip)
    allowed_tenants: tuple[str, ...] = setting(
        "ENTRA_ALLOWED_TENANTS", (), parse=comma_separated,
        doc="Other tenants whose users may call (comma-separated tenant ids); the app's own tenant is always "
            "allowed.")
    app_id_uri: str = setting(
        "ENTRA_APP_ID_URI", "", parse=str.strip,
        doc="Accepted token audience besides the client id. Empty: api://<ENTRA_CLIENT_ID>.")
    client_secret: str = setting(
        "ENTRA_CLIENT_SECRET", "", secret=True,
        doc="The app's credential for Dataverse tokens (msal): a client secret, OR a PEM file with the "
            "certificate and its private key. Secrets: set them in the platform's secret store, never in a "
            "committed file.")
    client_certificate_path: str = setting("ENTRA_CLIENT_CERTIFICATE_PATH", "")
    required_scope: str = setting(
        "ENTRA_REQUIRED_SCOPE", "access_as_user", pattern=_NAME, allowed=_NAME_ALLOWED,
        doc="What a token must grant: the delegated scope (users) or the app role (applications).")
    required_role: str = setting("ENTRA_REQUIRED_ROLE", "Actions.Invoke", pattern=_NAME, allowed=_NAME_ALLOWED)
    authority_host: str = setting(
        "ENTRA_AUTHORITY_HOST", DEFAULT_AUTHORITY_HOST,
        doc="Where Entra ID lives (tokens' JWKS at <host>/<tenant>/discovery/v2.0/keys; msal authority "
            "<host>/<tenant>).")
    token_leeway_seconds: int = setting(
        "ENTRA_TOKEN_LEEWAY_SECONDS", 60, range=(0, 300), doc="Clock skew allowed on exp/nbf, in seconds.")
    jwks_cache_seconds: int = setting(
        "ENTRA_JWKS_CACHE_SECONDS", 3600, range=(60, 86400),
        doc="How long the signing keys are cached, and the least time between two refreshes forced by an unknown "
            "key id.")
    jwks_refresh_cooldown_seconds: float = setting("ENTRA_JWKS_REFRESH_COOLDOWN_SECONDS", 30.0, range=(0, 3600))
    ca_bundle: str = setting(
        "MICROSOFT_CA_BUNDLE", "",
        doc="CA bundle (PEM) for Entra ID and Dataverse calls. Empty: the default trust store.")
    dataverse_url: str = setting(
        "DATAVERSE_URL", "", parse=_url,
        doc="Your Dataverse environment, e.g. https://contoso.crm4.dynamics.com. Setting it switches timeline "
            "notes on (needs ENTRA_TENANT_ID, ENTRA_CLIENT_ID and a credential; the app must be an application "
            "user in Dataverse).")
    timeline_budget_seconds: float = setting(
        "DATAVERSE_TIMELINE_BUDGET_SECONDS", 15.0, range=(1, 60),
        doc="The most time a note may take (retries after Dataverse 429/5xx included) before it is reported as "
            "failed.")
    #: sandbox only: the simulators started by gunicorn (empty: started in the worker when needed)
    sandbox_entra_url: str = setting(
        "SANDBOX_ENTRA_URL", "",
        doc="Sandbox only: the Entra ID and Dataverse simulators gunicorn.conf.py started, and their CA (it sets "
            "them).")
    sandbox_dataverse_url: str = setting("SANDBOX_DATAVERSE_URL", "")
    sandbox_ca_bundle: str = setting("SANDBOX_CA_BUNDLE", "")
    sandbox_state_dir: str = setting(
        "SANDBOX_STATE_DIR", "var/sandbox",
        doc="Sandbox only: where the Microsoft simulators keep their CA and microsoft.json (read by "
            "`python -m service.sandbox.entra token`).")

    # -- derived --------------------------------------------------------------------------------------------
    @property
    def entra_configured(self) -> bool:
        return bool(self.client_id)

    @property
    def dataverse_configured(self) -> bool:
        return bool(self.dataverse_url)

    @property
    def configured(self) -> bool:
        return self.entra_configured or self.dataverse_configured

    def mode(self, platform_sandbox: bool) -> str:
        """``sandbox`` (the in-repo simulators), ``live`` (Entra ID and/or Dataverse configured) or ``off``."""
        if self.configured:
            return "live"
        return "sandbox" if platform_sandbox else "off"

    @property
    def tenants(self) -> tuple[str, ...]:
        """Tenants whose tokens are accepted: the app's own tenant plus ENTRA_ALLOWED_TENANTS (lower case)."""
        out: list[str] = []
        for t in (self.tenant_id, *self.allowed_tenants):
            if t and t.lower() not in out:
                out.append(t.lower())
        return tuple(out)

    @property
    def audiences(self) -> tuple[str, ...]:
        """Accepted ``aud`` values: the app id URI (v1 tokens ask for it as resource) and the client id (v2)."""
        uri = self.app_id_uri or (f"api://{self.client_id}" if self.client_id else "")
        return tuple(a for a in (uri, self.client_id) if a)

    def client_credential(self) -> str | dict[str, str]:
        """What msal takes as ``client_credential``: the secret, or ``{private_key, public_certificate}``."""
        if self.client_certificate_path:
            key_pem, cert_pem = load_certificate(self.client_certificate_path, "ENTRA_CLIENT_CERTIFICATE_PATH")
            return {"private_key": key_pem, "public_certificate": cert_pem}
        return self.client_secret

    def validate(self) -> None:
        """Cross-field rules; raises MicrosoftConfigError naming the variable. No network."""
        for name, value in (("ENTRA_TENANT_ID", self.tenant_id), *(("ENTRA_ALLOWED_TENANTS", t)
                                                                  for t in self.allowed_tenants)):
            if value and not GUID.match(value):
                raise MicrosoftConfigError(f"{name}: must be a directory (tenant) id, a GUID like "
                                           f"72f988bf-86f1-41af-91ab-2d7cd011db47 (got {value!r}).")
        if self.client_id and not GUID.match(self.client_id):
            raise MicrosoftConfigError("ENTRA_CLIENT_ID: must be the app registration's Application (client) ID, "
                                       "a GUID.")
        _https("ENTRA_AUTHORITY_HOST", self.authority_host)
        if self.entra_configured and not self.tenant_id:
            raise MicrosoftConfigError("ENTRA_TENANT_ID: required when ENTRA_CLIENT_ID is set (the tenant of the "
                                       "app registration).")
        if self.allowed_tenants and not self.entra_configured:
            raise MicrosoftConfigError("ENTRA_ALLOWED_TENANTS: only meaningful with ENTRA_CLIENT_ID set.")
        if self.client_secret and self.client_certificate_path:
            raise MicrosoftConfigError("ENTRA_CLIENT_SECRET: set either the client secret or "
                                       "ENTRA_CLIENT_CERTIFICATE_PATH, not both.")
        if self.client_certificate_path:
            load_certificate(self.client_certificate_path, "ENTRA_CLIENT_CERTIFICATE_PATH")
        if self.ca_bundle and not Path(self.ca_bundle).is_file():
            raise MicrosoftConfigError(f"MICROSOFT_CA_BUNDLE: no such file {self.ca_bundle!r}.")
        if self.dataverse_url:
            _https("DATAVERSE_URL", self.dataverse_url)
            if not self.entra_configured:
                raise MicrosoftConfigError("ENTRA_CLIENT_ID: required when DATAVERSE_URL is set (the app "
                                           "registration that signs in to Dataverse), with ENTRA_TENANT_ID.")
            if not (self.client_secret or self.client_certificate_path):
                raise MicrosoftConfigError("ENTRA_CLIENT_SECRET: required when DATAVERSE_URL is set (or "
                                           "ENTRA_CLIENT_CERTIFICATE_PATH).")
        for name, value in (("SANDBOX_ENTRA_URL", self.sandbox_entra_url),
                            ("SANDBOX_DATAVERSE_URL", self.sandbox_dataverse_url)):
            if value:
                _https(name, value)
        if self.sandbox_ca_bundle and not Path(self.sandbox_ca_bundle).is_file():
            raise MicrosoftConfigError(f"SANDBOX_CA_BUNDLE: no such file {self.sandbox_ca_bundle!r}.")

    def with_(self, **changes: Any) -> "MicrosoftSettings":
        from dataclasses import replace

        return replace(self, **changes)


def load_certificate(path: str, name: str) -> tuple[str, str]:
    """``(private_key_pem, certificate_pem)`` from one PEM file holding both. Raises MicrosoftConfigError."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        data = Path(path).read_bytes()
    except OSError:
        raise MicrosoftConfigError(f"{name}: cannot read {path!r}.") from None
    try:
        cert = x509.load_pem_x509_certificate(data)
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise MicrosoftConfigError(f"{name}: {path!r} must hold the certificate and its unencrypted private key "
                                   "(PEM).") from None
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
