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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"


class MicrosoftConfigError(ValueError):
    """A Microsoft setting is missing or invalid; the message names the variable."""


class MicrosoftEnvSchema(Schema):
    """The raw variables (field names are the environment variable names)."""

    ENTRA_TENANT_ID = fields.String(load_default="")
    ENTRA_ALLOWED_TENANTS = fields.String(load_default="")
    ENTRA_CLIENT_ID = fields.String(load_default="")
    ENTRA_APP_ID_URI = fields.String(load_default="")
    ENTRA_CLIENT_SECRET = fields.String(load_default="")
    ENTRA_CLIENT_CERTIFICATE_PATH = fields.String(load_default="")
    ENTRA_REQUIRED_SCOPE = fields.String(load_default="access_as_user",
                                         validate=validate.Regexp(r"^[\w.\-]{1,120}$"))
    ENTRA_REQUIRED_ROLE = fields.String(load_default="Actions.Invoke", validate=validate.Regexp(r"^[\w.\-]{1,120}$"))
    ENTRA_AUTHORITY_HOST = fields.String(load_default=DEFAULT_AUTHORITY_HOST)
    ENTRA_TOKEN_LEEWAY_SECONDS = fields.Integer(load_default=60, validate=validate.Range(min=0, max=300))
    ENTRA_JWKS_CACHE_SECONDS = fields.Integer(load_default=3600, validate=validate.Range(min=60, max=86400))
    ENTRA_JWKS_REFRESH_COOLDOWN_SECONDS = fields.Float(load_default=30.0, validate=validate.Range(min=0, max=3600))
    MICROSOFT_CA_BUNDLE = fields.String(load_default="")
    DATAVERSE_URL = fields.String(load_default="")
    DATAVERSE_TIMELINE_BUDGET_SECONDS = fields.Float(load_default=15.0, validate=validate.Range(min=1, max=60))
    SANDBOX_ENTRA_URL = fields.String(load_default="")
    SANDBOX_DATAVERSE_URL = fields.String(load_default="")
    SANDBOX_CA_BUNDLE = fields.String(load_default="")
    SANDBOX_STATE_DIR = fields.String(load_default="var/sandbox")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def _https(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise MicrosoftConfigError(f"{name}: must be an https URL like https://host (got {value!r}).")
    return value.rstrip("/")


@dataclass(frozen=True)
class MicrosoftSettings:
    tenant_id: str = ""
    allowed_tenants: tuple[str, ...] = ()
    client_id: str = ""
    app_id_uri: str = ""
    client_secret: str = field(default="", repr=False)
    client_certificate_path: str = ""
    required_scope: str = "access_as_user"
    required_role: str = "Actions.Invoke"
    authority_host: str = DEFAULT_AUTHORITY_HOST
    token_leeway_seconds: int = 60
    jwks_cache_seconds: int = 3600
    jwks_refresh_cooldown_seconds: float = 30.0
    ca_bundle: str = ""
    dataverse_url: str = ""
    timeline_budget_seconds: float = 15.0
    #: sandbox only: the simulators started by gunicorn (empty: started in the worker when needed)
    sandbox_entra_url: str = ""
    sandbox_dataverse_url: str = ""
    sandbox_ca_bundle: str = ""
    #: sandbox only: where gunicorn's Microsoft simulators keep their CA and URLs (microsoft.json)
    sandbox_state_dir: str = "var/sandbox"

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

    # -- loading --------------------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "MicrosoftSettings":
        raw = {k: v for k, v in env.items() if k in MicrosoftEnvSchema._declared_fields and v != ""}
        try:
            d = MicrosoftEnvSchema().load(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{name}: {' '.join(map(str, msgs))}" for name, msgs in sorted(exc.messages.items()))
            raise MicrosoftConfigError(problems) from None
        settings = cls(
            tenant_id=d["ENTRA_TENANT_ID"].strip(), allowed_tenants=_csv(d["ENTRA_ALLOWED_TENANTS"]),
            client_id=d["ENTRA_CLIENT_ID"].strip(), app_id_uri=d["ENTRA_APP_ID_URI"].strip(),
            client_secret=d["ENTRA_CLIENT_SECRET"], client_certificate_path=d["ENTRA_CLIENT_CERTIFICATE_PATH"],
            required_scope=d["ENTRA_REQUIRED_SCOPE"], required_role=d["ENTRA_REQUIRED_ROLE"],
            authority_host=d["ENTRA_AUTHORITY_HOST"], token_leeway_seconds=d["ENTRA_TOKEN_LEEWAY_SECONDS"],
            jwks_cache_seconds=d["ENTRA_JWKS_CACHE_SECONDS"],
            jwks_refresh_cooldown_seconds=d["ENTRA_JWKS_REFRESH_COOLDOWN_SECONDS"],
            ca_bundle=d["MICROSOFT_CA_BUNDLE"], dataverse_url=d["DATAVERSE_URL"].strip().rstrip("/"),
            timeline_budget_seconds=d["DATAVERSE_TIMELINE_BUDGET_SECONDS"],
            sandbox_entra_url=d["SANDBOX_ENTRA_URL"], sandbox_dataverse_url=d["SANDBOX_DATAVERSE_URL"],
            sandbox_ca_bundle=d["SANDBOX_CA_BUNDLE"], sandbox_state_dir=d["SANDBOX_STATE_DIR"],
        )
        settings.validate()
        return settings

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
