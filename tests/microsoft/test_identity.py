"""Dataverse tokens through msal against the Entra ID simulator: caching, single flight, OBO, credentials, TLS."""

from __future__ import annotations

import threading

import jwt
import pytest

from service.microsoft.errors import TokenAcquisitionError
from service.microsoft.identity import REFRESH_MARGIN, IdentityConfig, MsalIdentity
from service.sandbox.entra import AppRegistration, demo
from service.sandbox.tls import self_signed_client_certificate


def identity(ms, **changes) -> MsalIdentity:
    values = dict(authority_host=ms.entra_url, tenant_id=demo.TENANT_ID, client_id=demo.API_CLIENT_ID,
                  credential=demo.API_CLIENT_SECRET, ca_bundle=ms.ca_path, connect_timeout=2, read_timeout=5)
    values.update(changes)
    clock = values.pop("clock", None)
    return MsalIdentity(IdentityConfig(**values), **({"clock": clock} if clock else {}))


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_app_token_is_requested_once_and_served_from_the_cache(ms):
    ident = identity(ms)
    tokens = {ident.app_token(ms.dataverse_url) for _ in range(25)}
    assert len(tokens) == 1
    assert ms.entra.token_requests("client_credentials") == 1
    token = tokens.pop()
    assert claims(token)["aud"] == ms.dataverse_url and claims(token)["appid"] == demo.API_CLIENT_ID


def test_concurrent_cold_calls_ask_entra_once(ms):
    ident = identity(ms)
    barrier = threading.Barrier(12)
    results: list[str] = []

    def worker():
        barrier.wait()
        results.append(ident.app_token(ms.dataverse_url))

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 12 and len(set(results)) == 1
    assert ms.entra.token_requests("client_credentials") == 1


def test_on_behalf_of_is_cached_per_user_until_near_expiry(ms):
    now = [1000.0]
    ident = identity(ms, clock=lambda: now[0])
    assertion = ms.entra.user_token()
    first = ident.user_token(assertion, tenant_id=demo.TENANT_ID, object_id=demo.USER_OBJECT_ID,
                             resource=ms.dataverse_url)
    for _ in range(10):
        assert ident.user_token(assertion, tenant_id=demo.TENANT_ID, object_id=demo.USER_OBJECT_ID,
                                resource=ms.dataverse_url) == first
    assert ms.entra.token_requests("obo") == 1
    c = claims(first)
    assert (c["oid"], c["aud"], c["scp"]) == (demo.USER_OBJECT_ID, ms.dataverse_url, "user_impersonation")
    now[0] += ms.entra.token_lifetime - REFRESH_MARGIN + 1  # inside the refresh margin: ask again
    ident.user_token(assertion, tenant_id=demo.TENANT_ID, object_id=demo.USER_OBJECT_ID, resource=ms.dataverse_url)
    assert ms.entra.token_requests("obo") == 2
    assert ms.entra.token_requests("client_credentials") == 0  # OBO never falls back to the app


def test_on_behalf_of_needs_consent_and_a_token_for_this_app(ms):
    ident = identity(ms)
    with pytest.raises(TokenAcquisitionError) as info:
        ident.user_token(ms.entra.user_token(), tenant_id=demo.TENANT_ID, object_id=demo.USER_OBJECT_ID,
                         resource="https://not-consented.crm.dynamics.com")
    assert info.value.code == "DATAVERSE_CONSENT_REQUIRED" and not info.value.transient
    other_app_token = ms.entra.user_token(audience="api://someone-else")
    with pytest.raises(TokenAcquisitionError) as info:
        ident.user_token(other_app_token, tenant_id=demo.TENANT_ID, object_id="someone",
                         resource=ms.dataverse_url)
    assert info.value.code == "DATAVERSE_OBO_FAILED" and "AADSTS50013" in info.value.message
    assert other_app_token not in info.value.message


def test_wrong_secret_is_a_configuration_error_without_the_secret(ms):
    ident = identity(ms, credential="wrong-secret-value")
    with pytest.raises(TokenAcquisitionError) as info:
        ident.app_token(ms.dataverse_url)
    assert info.value.code == "DATAVERSE_APP_CREDENTIALS_INVALID" and not info.value.transient
    assert "wrong-secret-value" not in str(info.value)


def test_certificate_credential(ms):
    key_pem, cert_pem = self_signed_client_certificate()
    ms.entra.register_app(AppRegistration(client_id="5a4db0c0-0000-4000-8000-0000000000d1", certificates=[cert_pem]))
    ident = identity(ms, client_id="5a4db0c0-0000-4000-8000-0000000000d1",
                     credential={"private_key": key_pem, "public_certificate": cert_pem})
    assert claims(ident.app_token(ms.dataverse_url))["appid"] == "5a4db0c0-0000-4000-8000-0000000000d1"
    other_key, _ = self_signed_client_certificate()  # a key that does not belong to the uploaded certificate
    forged = identity(ms, client_id="5a4db0c0-0000-4000-8000-0000000000d1",
                      credential={"private_key": other_key, "public_certificate": cert_pem})
    with pytest.raises(TokenAcquisitionError) as info:
        forged.app_token(ms.dataverse_url)
    assert info.value.code == "DATAVERSE_APP_CREDENTIALS_INVALID"


def test_tls_is_verified_against_the_configured_ca_only(ms):
    """Without the sandbox CA the simulator's certificate is not trusted: verification is never switched off
    (and REQUESTS_CA_BUNDLE in the environment does not replace the configured bundle)."""
    with pytest.raises(TokenAcquisitionError) as info:
        identity(ms, ca_bundle=None).app_token(ms.dataverse_url)
    assert info.value.code == "ENTRA_UNAVAILABLE" and info.value.transient
    assert ms.entra.token_requests() == 0
