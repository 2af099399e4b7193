"""Callers: the ``X-API-Key`` header (API-key connections) or a Microsoft Entra ID bearer token (Entra ID
connections). Both are declared in openapi.yaml; Connexion tries them in turn.

What a handler gets as ``user`` is the caller id the job ledger records: ``privacy.api_key_id(key)`` for an
API key, ``aad:<tenant id>:<object id>`` for an Entra ID token. Neither the key nor the token is ever kept.
"""

from __future__ import annotations

import hmac
from typing import Any

from connexion.exceptions import OAuthProblem

from service.api import fairness
from service.microsoft.errors import KeysUnavailable, TokenRejected
from service.privacy import api_key_id
from service.runtime import current_runtime


class TokenProblem(OAuthProblem):
    """401 for a bearer token we do not accept: a stable ``code`` (the reason) and a Bearer challenge."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail=detail)
        self.ext = {"code": code}
        self.headers = {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{code}"'}


class KeysProblem(OAuthProblem):
    """The tenant's signing keys could not be fetched: our problem, so 503 + Retry-After (retried)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail)
        self.status = 503
        self.title = "Service Unavailable"
        self.ext = {"code": "ENTRA_KEYS_UNAVAILABLE"}
        self.headers = {"Retry-After": "5"}


def check_api_key(apikey: str, required_scopes=None, request=None) -> dict | None:
    """Connexion ``x-apikeyInfoFunc``: compare in constant time against every configured key."""
    presented = (apikey or "").encode()
    ok = False
    for candidate in current_runtime().settings.accepted_api_keys:
        # evaluate every key, so timing does not reveal which one (or whether any) matched
        ok |= hmac.compare_digest(presented, candidate.encode())
    rt = current_runtime()
    if rt.settings.hosted and rt.settings.api_keys and request is not None:
        client = request.client.host if getattr(request, "client", None) else "unknown"
        fairness.check_api_key(api_key_id(apikey or ""), ok, client)  # a throttled client's guesses: 429
    if not ok:
        return None
    # handlers get this as ``user``: the caller's identity, recorded with every job and scoping GET /jobs; never
    # the key itself. An Entra ID connection's caller is ``aad:<tenant>:<object id>`` the same way.
    return {"sub": caller_for_api_key(apikey)}


def caller_for_api_key(apikey: str) -> str:
    return "key:" + api_key_id(apikey)


def check_entra_token(token: str, required_scopes=None, request=None) -> dict[str, Any]:
    """Connexion ``x-tokenInfoFunc`` of the Entra ID scheme: validate (``service.microsoft.entra``) or 401.

    The required scope or app role is checked by the validator (it is configurable), so the scheme's own
    scope list stays empty.
    """
    validator = current_runtime().microsoft.validator
    if validator is None:
        raise TokenProblem("ENTRA_ID_NOT_CONFIGURED", "This service does not accept Microsoft Entra ID tokens "
                           "(ENTRA_CLIENT_ID is not set).")
    try:
        caller = validator.validate(token.strip())
    except TokenRejected as exc:
        raise TokenProblem(exc.code, exc.message) from None
    except KeysUnavailable as exc:
        raise KeysProblem(exc.message) from None
    return {"sub": caller.caller_id, "kind": caller.kind, "tid": caller.tenant_id, "oid": caller.object_id,
            "scope": ""}
