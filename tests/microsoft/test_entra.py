"""Entra ID access-token validation against the Entra ID simulator's JWKS (real HTTPS, real PyJWT)."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from service.microsoft.entra import EntraConfig, EntraTokenValidator
from service.microsoft.errors import KeysUnavailable, TokenRejected
from service.sandbox.entra import demo

TID = demo.TENANT_ID


def validator(ms, **changes) -> EntraTokenValidator:
    values = dict(tenants=(TID,), audiences=(demo.API_APP_ID_URI, demo.API_CLIENT_ID),
                  required_scope=demo.API_SCOPE, required_role=demo.API_ROLE, authority_host=ms.entra_url,
                  leeway_seconds=30, jwks_refresh_cooldown_seconds=0.0, ca_bundle=ms.ca_path, timeout_seconds=5)
    values.update(changes)
    return EntraTokenValidator(EntraConfig(**values))


def jwks_fetches(ms) -> int:
    return ms.entra.stats()["counters"].get("jwks", 0)


def test_user_tokens_v1_and_v2_give_the_caller(ms):
    v = validator(ms)
    caller = v.validate(ms.entra.user_token())
    assert (caller.kind, caller.tenant_id, caller.object_id) == ("user", TID, demo.USER_OBJECT_ID)
    assert caller.caller_id == f"aad:{TID}:{demo.USER_OBJECT_ID}"
    v2 = ms.entra.user_token(version=2, audience=demo.API_CLIENT_ID)  # v2 tokens carry the client id as aud
    assert v.validate(v2).object_id == demo.USER_OBJECT_ID
    assert jwks_fetches(ms) == 1  # the key set is cached


def test_app_token_with_the_app_role_is_an_app_caller(ms):
    token = ms.entra.issue_token(audience=demo.API_APP_ID_URI, roles=[demo.API_ROLE], user=False,
                                 object_id=demo.API_SERVICE_PRINCIPAL_ID)
    caller = validator(ms).validate(token)
    assert caller.kind == "app" and caller.object_id == demo.API_SERVICE_PRINCIPAL_ID


def _forged(ms) -> dict[str, str]:
    """One token per way a token must be refused, keyed by the reason code the service answers."""
    sim, now = ms.entra, int(time.time())
    claims = jwt.decode(sim.user_token(), options={"verify_signature": False})
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "TOKEN_ALGORITHM_NOT_ALLOWED/none": jwt.encode(claims, None, algorithm="none"),
        "TOKEN_ALGORITHM_NOT_ALLOWED/HS256": jwt.encode(claims, "k" * 32, algorithm="HS256",
                                                       headers={"kid": sim.current_kid}),
        "TOKEN_KEY_UNKNOWN": jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "not-published"}),
        "TOKEN_SIGNATURE_INVALID": jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": sim.current_kid}),
        "TOKEN_TENANT_NOT_ALLOWED": sim.user_token(tenant_id=demo.OTHER_TENANT_ID),
        "TOKEN_AUDIENCE_INVALID": sim.user_token(audience="api://someone-else"),
        "TOKEN_EXPIRED": sim.user_token(expires_in=-300),
        "TOKEN_NOT_YET_VALID": sim.user_token(not_before=now + 600),
        "TOKEN_SCOPE_MISSING": sim.user_token(scope="User.Read"),
        "TOKEN_SCOPE_MISSING/app without role": sim.issue_token(audience=demo.API_APP_ID_URI, roles=["Other"],
                                                                user=False),
        "TOKEN_ISSUER_INVALID": sim.user_token(issuer=f"https://sts.windows.net/{demo.OTHER_TENANT_ID}/"),
        "TOKEN_CLAIM_MISSING": sim.user_token(extra={"oid": None}),
        "TOKEN_MALFORMED": "xq7w9garbage.zz9kq.kk2vb",
    }


def test_every_forged_token_is_rejected_with_its_reason(ms):
    v = validator(ms)
    for case, token in _forged(ms).items():
        with pytest.raises(TokenRejected) as info:
            v.validate(token)
        assert info.value.code == case.split("/")[0], case
        assert token not in info.value.message


def test_a_strangers_token_never_makes_us_fetch_keys(ms):
    with pytest.raises(TokenRejected):
        validator(ms).validate(ms.entra.user_token(tenant_id=demo.OTHER_TENANT_ID))
    assert jwks_fetches(ms) == 0


def test_rotated_key_is_fetched_once_then_cached(ms):
    v = validator(ms)
    v.validate(ms.entra.user_token())
    assert jwks_fetches(ms) == 1
    ms.entra.rotate_keys()
    new = ms.entra.user_token()  # signed with the new key
    assert v.validate(new).object_id == demo.USER_OBJECT_ID
    v.validate(ms.entra.user_token())
    assert jwks_fetches(ms) == 2  # one refresh for the unknown kid, then the cache again
    old_key_still_published = ms.entra.issue_token(audience=demo.API_APP_ID_URI, scopes=demo.API_SCOPE,
                                                   kid=ms.entra.stats()["kids"][0])
    v.validate(old_key_still_published)
    assert jwks_fetches(ms) == 2


def test_unknown_kid_refreshes_once_and_the_cooldown_limits_refreshes(ms):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = jwt.decode(ms.entra.user_token(), options={"verify_signature": False})
    forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "random-kid"})
    v = validator(ms, jwks_refresh_cooldown_seconds=3600)
    v.validate(ms.entra.user_token())
    assert jwks_fetches(ms) == 1
    for _ in range(3):
        with pytest.raises(TokenRejected):
            v.validate(forged)
    assert jwks_fetches(ms) == 1  # within the cooldown a random kid cannot make us call Entra ID
    v0 = validator(ms)  # cooldown 0: each unknown kid gets exactly one refresh
    with pytest.raises(TokenRejected):
        v0.validate(forged)
    assert jwks_fetches(ms) == 3  # the first fetch of v0 and its one refresh


def test_unreachable_keys_are_our_problem_not_a_rejection(ms):
    v = validator(ms, authority_host="https://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(KeysUnavailable):
        v.validate(ms.entra.user_token())
