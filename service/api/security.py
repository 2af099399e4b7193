"""API key check for the ``X-API-Key`` header (what the Power Platform connection sends)."""

from __future__ import annotations

import hashlib
import hmac

from service.runtime import current_runtime


def key_id(api_key: str) -> str:
    """A stable, non-reversible id of a key for logs and the job ledger (never the key itself)."""
    return "key_" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


def check_api_key(apikey: str, required_scopes=None, request=None) -> dict | None:
    """Connexion ``x-apikeyInfoFunc``: compare in constant time against every configured key."""
    presented = (apikey or "").encode()
    ok = False
    for candidate in current_runtime().settings.accepted_api_keys:
        # evaluate every key, so timing does not reveal which one (or whether any) matched
        ok |= hmac.compare_digest(presented, candidate.encode())
    if not ok:
        return None
    return {"sub": key_id(apikey)}
