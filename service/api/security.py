"""API key check for the ``X-API-Key`` header (what the Power Platform connection sends)."""

from __future__ import annotations

import hmac

from service.privacy import api_key_id
from service.runtime import current_runtime


def check_api_key(apikey: str, required_scopes=None, request=None) -> dict | None:
    """Connexion ``x-apikeyInfoFunc``: compare in constant time against every configured key."""
    presented = (apikey or "").encode()
    ok = False
    for candidate in current_runtime().settings.accepted_api_keys:
        # evaluate every key, so timing does not reveal which one (or whether any) matched
        ok |= hmac.compare_digest(presented, candidate.encode())
    if not ok:
        return None
    # handlers get this as ``user``: the caller's identity, recorded with every job and scoping GET /jobs; never
    # the key itself. An Entra ID connection's caller is ``aad:<tenant>:<object id>`` the same way.
    return {"sub": caller_for_api_key(apikey)}


def caller_for_api_key(apikey: str) -> str:
    return "key:" + api_key_id(apikey)
