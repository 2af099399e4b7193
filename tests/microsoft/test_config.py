"""Microsoft settings: validated at startup, errors name the variable, secrets stay out of reprs."""

from __future__ import annotations

import pytest

from service.config import ConfigError, Settings
from service.sandbox.tls import self_signed_client_certificate

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "5a4db0c0-0000-4000-8000-0000000000a1"
LIVE = {"SPOTLER_CONSUMER_KEY": "ck", "SPOTLER_CONSUMER_SECRET": "cs", "LEDGER_HASH_KEY": "x" * 40,
        "TRIGGER_STATE_SECRET": "t" * 40}


@pytest.mark.parametrize("env, variable", [
    ({"ENTRA_TENANT_ID": "contoso"}, "ENTRA_TENANT_ID"),
    ({"ENTRA_CLIENT_ID": "my-app", "ENTRA_TENANT_ID": TENANT}, "ENTRA_CLIENT_ID"),
    ({"ENTRA_CLIENT_ID": CLIENT}, "ENTRA_TENANT_ID"),
    ({"ENTRA_AUTHORITY_HOST": "http://login.example.com"}, "ENTRA_AUTHORITY_HOST"),
    ({"ENTRA_TOKEN_LEEWAY_SECONDS": "900"}, "ENTRA_TOKEN_LEEWAY_SECONDS"),
    ({"ENTRA_REQUIRED_SCOPE": "bad scope"}, "ENTRA_REQUIRED_SCOPE"),
    ({"DATAVERSE_URL": "https://contoso.crm4.dynamics.com"}, "ENTRA_CLIENT_ID"),
    ({"DATAVERSE_URL": "contoso.crm4.dynamics.com", "ENTRA_CLIENT_ID": CLIENT, "ENTRA_TENANT_ID": TENANT,
      "ENTRA_CLIENT_SECRET": "s"}, "DATAVERSE_URL"),
    ({"DATAVERSE_URL": "https://contoso.crm4.dynamics.com", "ENTRA_CLIENT_ID": CLIENT, "ENTRA_TENANT_ID": TENANT},
     "ENTRA_CLIENT_SECRET"),
    ({"ENTRA_CLIENT_ID": CLIENT, "ENTRA_TENANT_ID": TENANT, "ENTRA_CLIENT_CERTIFICATE_PATH": "/nonexistent.pem"},
     "ENTRA_CLIENT_CERTIFICATE_PATH"),
    ({"MICROSOFT_CA_BUNDLE": "/nonexistent/ca.pem"}, "MICROSOFT_CA_BUNDLE"),
    ({"DATAVERSE_TIMELINE_BUDGET_SECONDS": "0"}, "DATAVERSE_TIMELINE_BUDGET_SECONDS"),
])
def test_invalid_microsoft_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_entra_and_dataverse_configured(tmp_path):
    key_pem, cert_pem = self_signed_client_certificate()
    pem = tmp_path / "app.pem"
    pem.write_text(cert_pem + key_pem)
    s = Settings.from_env({**LIVE, "ENTRA_TENANT_ID": TENANT.upper(), "ENTRA_CLIENT_ID": CLIENT,
                           "ENTRA_ALLOWED_TENANTS": "5a4db0c0-0000-4000-8000-00000000b002",
                           "ENTRA_CLIENT_CERTIFICATE_PATH": str(pem),
                           "DATAVERSE_URL": "https://contoso.crm4.dynamics.com/"})
    ms = s.microsoft
    assert s.mode == "live" and not s.api_keys  # Entra ID connections replace the API key requirement
    assert ms.tenants == (TENANT, "5a4db0c0-0000-4000-8000-00000000b002")
    assert ms.audiences == (f"api://{CLIENT}", CLIENT)
    assert ms.dataverse_url == "https://contoso.crm4.dynamics.com"
    credential = ms.client_credential()
    assert credential["public_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in credential["private_key"]


def test_the_secret_is_not_in_the_settings_repr():
    s = Settings.from_env({"ENTRA_TENANT_ID": TENANT, "ENTRA_CLIENT_ID": CLIENT,
                           "ENTRA_CLIENT_SECRET": "super-secret-value-123"})
    assert "super-secret-value-123" not in repr(s)


def test_live_mode_without_api_keys_needs_entra_id():
    with pytest.raises(ConfigError, match="API_KEYS"):
        Settings.from_env(LIVE)
