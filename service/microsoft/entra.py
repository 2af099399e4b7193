"""Validation of Microsoft Entra ID access tokens (PyJWT), as the connector's Entra ID connection sends them.

Rules, in order (each failure is a :class:`TokenRejected` with a stable reason ``code``; nothing of the token
is echoed):

1. a JWS with header ``alg: RS256`` (``none``, HS256 and every other algorithm: ``TOKEN_ALGORITHM_NOT_ALLOWED``);
2. ``tid`` in the tenant allow-list (``TOKEN_TENANT_NOT_ALLOWED``) - checked before any key is fetched, so a
   stranger's token never makes us call out;
3. the signing key ``kid`` in that tenant's JWKS (``{authority}/{tid}/discovery/v2.0/keys``; cached for
   ``ENTRA_JWKS_CACHE_SECONDS``, refreshed once on an unknown ``kid`` at most every
   ``ENTRA_JWKS_REFRESH_COOLDOWN_SECONDS``): ``TOKEN_KEY_UNKNOWN``; a bad signature: ``TOKEN_SIGNATURE_INVALID``;
4. ``iss`` exactly ``https://sts.windows.net/{tid}/`` (v1) or ``https://login.microsoftonline.com/{tid}/v2.0``
   (v2) for the token's own ``tid`` (``TOKEN_ISSUER_INVALID``);
5. ``aud`` our app id URI or client id (``TOKEN_AUDIENCE_INVALID``);
6. ``exp``/``nbf`` with ``ENTRA_TOKEN_LEEWAY_SECONDS`` (``TOKEN_EXPIRED``, ``TOKEN_NOT_YET_VALID``); ``oid``,
   ``tid``, ``iat`` present (``TOKEN_CLAIM_MISSING``);
7. the delegated scope ``ENTRA_REQUIRED_SCOPE`` in ``scp`` (a user) or the app role ``ENTRA_REQUIRED_ROLE`` in
   ``roles`` (an app): ``TOKEN_SCOPE_MISSING``.

The caller is ``aad:<tenant id>:<object id>`` (:attr:`EntraCaller.caller_id`), what the job ledger records.
A JWKS that cannot be fetched is :class:`KeysUnavailable` (our problem, transient), not a rejection.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import jwt

from service.microsoft.config import GUID
from service.microsoft.errors import KeysUnavailable, TokenRejected

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256",)


@dataclass(frozen=True)
class EntraConfig:
    tenants: tuple[str, ...]
    audiences: tuple[str, ...]
    required_scope: str
    required_role: str
    authority_host: str
    leeway_seconds: int = 60
    jwks_cache_seconds: int = 3600
    jwks_refresh_cooldown_seconds: float = 30.0
    ca_bundle: str | None = None
    timeout_seconds: float = 10.0

    def jwks_uri(self, tenant_id: str) -> str:
        return f"{self.authority_host.rstrip('/')}/{tenant_id}/discovery/v2.0/keys"


@dataclass(frozen=True)
class EntraCaller:
    """Who called, from a validated token."""

    tenant_id: str
    object_id: str
    #: ``user`` (delegated token with ``scp``) or ``app`` (app-only token with ``roles``)
    kind: str
    app_id: str | None = None

    @property
    def caller_id(self) -> str:
        return f"aad:{self.tenant_id}:{self.object_id}"


def _reject(code: str, message: str) -> TokenRejected:
    return TokenRejected(message, code=code)


class EntraTokenValidator:
    """One per process; thread-safe. ``validate(token) -> EntraCaller`` or raises TokenRejected/KeysUnavailable."""

    def __init__(self, config: EntraConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._clients: dict[str, jwt.PyJWKClient] = {}
        self._ssl_context = (ssl.create_default_context(cafile=config.ca_bundle) if config.ca_bundle
                             else ssl.create_default_context())

    def _jwks(self, tenant_id: str) -> jwt.PyJWKClient:
        with self._lock:
            client = self._clients.get(tenant_id)
            if client is None:  # at most one per allowed tenant
                client = jwt.PyJWKClient(
                    self.config.jwks_uri(tenant_id), cache_keys=False, cache_jwk_set=True,
                    lifespan=self.config.jwks_cache_seconds, timeout=self.config.timeout_seconds,
                    ssl_context=self._ssl_context, cooldown_duration=self.config.jwks_refresh_cooldown_seconds,
                    headers={"User-Agent": "marketing-actions"})
                self._clients[tenant_id] = client
            return client

    def validate(self, token: str) -> EntraCaller:
        cfg = self.config
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise _reject("TOKEN_MALFORMED", "The bearer token is not a well-formed JWT.") from None
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise _reject("TOKEN_ALGORITHM_NOT_ALLOWED", "The bearer token is not signed with RS256.")
        tid = unverified.get("tid")
        if not isinstance(tid, str) or not GUID.match(tid):
            raise _reject("TOKEN_CLAIM_MISSING", "The bearer token has no valid tenant id (tid).")
        tid = tid.lower()
        if tid not in cfg.tenants:
            raise _reject("TOKEN_TENANT_NOT_ALLOWED", "Tokens of this Microsoft Entra ID tenant are not accepted "
                          "by this service.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _reject("TOKEN_KEY_UNKNOWN", "The bearer token does not name its signing key (kid).")
        try:
            key = self._jwks(tid).get_signing_key(kid)
        except jwt.PyJWKClientConnectionError:
            log.warning("the signing keys of tenant %s could not be fetched", tid)
            raise KeysUnavailable("The Microsoft Entra ID signing keys could not be fetched; try again shortly.") \
                from None
        except jwt.PyJWKClientError:
            raise _reject("TOKEN_KEY_UNKNOWN", "The bearer token is signed with a key that Microsoft Entra ID "
                          "does not publish for this tenant.") from None
        except jwt.PyJWKSetError:  # the endpoint answered, but with no usable key
            raise KeysUnavailable("The Microsoft Entra ID signing keys could not be read; try again shortly.") \
                from None
        issuers = [f"https://sts.windows.net/{tid}/", f"https://login.microsoftonline.com/{tid}/v2.0"]
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=list(ALLOWED_ALGORITHMS), audience=list(cfg.audiences), issuer=issuers,
                leeway=cfg.leeway_seconds,
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "tid", "oid"]})
        except jwt.ExpiredSignatureError:
            raise _reject("TOKEN_EXPIRED", "The bearer token has expired; sign in again.") from None
        except jwt.ImmatureSignatureError:
            raise _reject("TOKEN_NOT_YET_VALID", "The bearer token is not valid yet (nbf).") from None
        except jwt.InvalidAudienceError:
            raise _reject("TOKEN_AUDIENCE_INVALID", "The bearer token was issued for another application "
                          "(audience).") from None
        except jwt.InvalidIssuerError:
            raise _reject("TOKEN_ISSUER_INVALID", "The bearer token's issuer is not Microsoft Entra ID for its "
                          "tenant.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _reject("TOKEN_CLAIM_MISSING", f"The bearer token lacks the '{exc.claim}' claim.") from None
        except jwt.InvalidSignatureError:
            raise _reject("TOKEN_SIGNATURE_INVALID", "The bearer token's signature is not valid.") from None
        except jwt.InvalidTokenError:
            raise _reject("TOKEN_MALFORMED", "The bearer token is not valid.") from None
        if str(claims.get("tid", "")).lower() != tid:  # pragma: no cover - same token, decoded twice
            raise _reject("TOKEN_TENANT_NOT_ALLOWED", "The bearer token's tenant changed.")
        oid = claims.get("oid")
        if not isinstance(oid, str) or not GUID.match(oid):
            raise _reject("TOKEN_CLAIM_MISSING", "The bearer token has no valid object id (oid).")
        scopes = str(claims.get("scp") or "").split()
        roles = claims.get("roles") if isinstance(claims.get("roles"), list) else []
        app_id = claims.get("appid") or claims.get("azp")
        if "scp" in claims and cfg.required_scope in scopes:
            return EntraCaller(tenant_id=tid, object_id=oid.lower(), kind="user", app_id=app_id)
        if "scp" not in claims and cfg.required_role in roles:
            return EntraCaller(tenant_id=tid, object_id=oid.lower(), kind="app", app_id=app_id)
        raise _reject("TOKEN_SCOPE_MISSING", f"The bearer token lacks the permission this API requires (scope "
                      f"'{cfg.required_scope}' for users, app role '{cfg.required_role}' for applications).")
